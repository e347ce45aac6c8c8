#!/usr/bin/env python3
"""A scripted OpenAI Responses API and Gemini API on loopback, for driving the
real Codex CLI and Gemini CLI offline.

    python3 mock_models.py --port-file F --script S.json --log L [--max-seconds 300]

Binds 127.0.0.1 on a free port, writes the port to F (atomically), and serves
until killed or until --max-seconds have passed. The script has the shape
mock_anthropic.py reads:

    {"conversations": [
        {"marker": "agent-1",
         "turns": [
            {"bash": "git commit -am done"},
            {"text": "All done."}
         ]},
        {"marker": "agent-2", "turns": [{"error": 500}]}
     ],
     "default_text": "OK."}

A request belongs to the conversation whose marker occurs (as a whole word) in
the text of a user message; its turn is the number of tool results (Responses
`function_call_output` items, Gemini `functionResponse` parts) in the request,
so the server keeps no state and a retried request gets the same answer. A
turn is one of:

    {"bash": CMD}                 a call of the CLI's shell tool
    {"text": TEXT}                a final text answer
    {"error": STATUS}             an HTTP error (429, 500, 400 ...)

Any turn may add "fail_times": N (and "fail_status", default 429): its first N
requests get that error instead, then it answers as scripted.

Served:

    POST …/responses                                Codex (wire_api = "responses"), SSE
    POST …/models/M:streamGenerateContent?alt=sse   Gemini CLI, SSE
    POST …/models/M:generateContent                 Gemini CLI's side requests
    POST …/models/M:countTokens                     a token count

Usage per model call: 3,500 input tokens of which 2,000 cached, 85 output.
Every request and the answer chosen is appended to the log as one JSON line.
"""

import argparse
import json
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mock_anthropic import Mock, find_marker  # noqa: E402

INPUT_TOKENS = 3500
CACHED_TOKENS = 2000
OUTPUT_TOKENS = 85

GEMINI_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def responses_user_texts(body):
    """The texts of the user messages of a Responses request."""
    inp = body.get("input")
    if isinstance(inp, str):
        return [inp]
    texts = []
    for item in inp or []:
        if not isinstance(item, dict) or item.get("role") != "user":
            continue
        content = item.get("content")
        if isinstance(content, str):
            texts.append(content)
            continue
        for part in content or []:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
    return texts


def responses_tool_results(body):
    inp = body.get("input")
    if not isinstance(inp, list):
        return 0
    return sum(1 for i in inp if isinstance(i, dict)
               and i.get("type") in ("function_call_output", "custom_tool_call_output"))


def responses_tools(body):
    names = []
    for t in body.get("tools") or []:
        if isinstance(t, dict):
            names.append(t.get("name") or t.get("type"))
    return names


def gemini_user_texts(body):
    texts = []
    for c in body.get("contents") or []:
        if not isinstance(c, dict) or c.get("role") != "user":
            continue
        for part in c.get("parts") or []:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
    return texts


def gemini_tool_results(body):
    n = 0
    for c in body.get("contents") or []:
        for part in (c or {}).get("parts") or []:
            if isinstance(part, dict) and "functionResponse" in part:
                n += 1
    return n


def gemini_tools(body):
    names = []
    for t in body.get("tools") or []:
        for f in (t or {}).get("functionDeclarations") or []:
            names.append(f.get("name"))
    return names


def choose(mock, texts, tool_results, tools):
    """(turn, why) for one model request."""
    script = mock.script
    default = {"text": script.get("default_text", "OK.")}
    if not tools:
        return default, "no tools offered (side request)"
    conv = None
    for text in texts:
        conv = find_marker(script, text)
        if conv is not None:
            break
    if conv is None:
        return default, "no marker matched"
    turns = conv.get("turns", [])
    i = tool_results
    if i < len(turns):
        turn, why = turns[i], "conversation %s turn %d" % (conv.get("marker"), i)
        times = int(turn.get("fail_times", 0))
        if times and mock.should_fail((conv.get("marker"), i), times):
            return {"error": turn.get("fail_status", 429)}, why + " (injected failure)"
        return turn, why
    texts = [t for t in turns if "text" in t]
    last = texts[-1] if texts else {"text": "Done."}
    return last, "conversation %s past its turns" % conv.get("marker")


def sse(data, event=None):
    head = "event: %s\n" % event if event else ""
    return (head + "data: %s\n\n" % json.dumps(data)).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-models/1"

    def log_message(self, fmt, *args):
        pass

    def read_body(self):
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            return {"_unparsed": raw.decode("utf-8", "replace")[:300]}

    def send_json(self, status, obj, headers=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def start_sse(self):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True

    def do_GET(self):
        self.server.mock.log({"method": "GET", "path": self.path})
        path = self.path.split("?", 1)[0]
        if path.endswith("/models"):
            self.send_json(200, {"object": "list", "data": [], "models": []})
        else:
            self.send_json(404, {"error": {"message": "not found"}})

    def do_POST(self):
        mock = self.server.mock
        body = self.read_body()
        path = self.path.split("?", 1)[0]
        entry = {"method": "POST", "path": self.path, "model": body.get("model"),
                 "headers": {k: v for k, v in self.headers.items()
                             if k.lower() not in ("authorization", "x-goog-api-key")}}
        if path.endswith("/responses"):
            texts, results, tools = (responses_user_texts(body), responses_tool_results(body),
                                     responses_tools(body))
            api = "responses"
        elif ":streamGenerateContent" in path or ":generateContent" in path:
            texts, results, tools = gemini_user_texts(body), gemini_tool_results(body), gemini_tools(body)
            api = "gemini"
        elif ":countTokens" in path:
            entry["answer"] = "countTokens"
            mock.log(entry)
            self.send_json(200, {"totalTokens": 1234})
            return
        else:
            entry["answer"] = "404"
            mock.log(entry)
            self.send_json(404, {"error": {"message": "not found: " + path}})
            return
        turn, why = choose(mock, texts, results, tools)
        entry.update({"tools": tools, "tool_results": results, "first_user": (texts or [""])[-1][:300],
                      "answer": turn, "why": why})
        n = mock.log(entry)
        if "error" in turn:
            status = int(turn["error"])
            message = turn.get("message") or "scripted error %d" % status
            headers = {"retry-after": "0"} if status == 429 else {}
            if api == "gemini":
                err = {"error": {"code": status, "message": message,
                                 "status": GEMINI_STATUS.get(status, "UNKNOWN")}}
            else:
                err = {"error": {"message": message, "type": "server_error" if status >= 500 else
                                 "rate_limit_exceeded" if status == 429 else "invalid_request_error",
                                 "code": None}}
            self.send_json(status, err, headers)
        elif api == "responses":
            self.stream_responses(body, turn, tools, n)
        elif ":streamGenerateContent" in path:
            self.gemini(path, turn, n, stream=True)
        else:
            self.gemini(path, turn, n, stream=False)

    def stream_responses(self, body, turn, tools, n):
        model = body.get("model") or "gpt-mock"
        rid = "resp_mock_%04d" % n
        if "bash" in turn:
            cmd = turn["bash"]
            if "exec_command" in tools:
                name, args = "exec_command", {"cmd": cmd}
            elif "shell_command" in tools:
                name, args = "shell_command", {"command": cmd}
            else:
                name, args = "shell", {"command": ["bash", "-lc", cmd]}
            item = {"type": "function_call", "id": "fc_mock_%04d" % n, "call_id": "call_mock_%04d" % n,
                    "name": name, "arguments": json.dumps(args), "status": "completed"}
        else:
            item = {"type": "message", "id": "msg_mock_%04d" % n, "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": turn.get("text", ""), "annotations": []}]}
        usage = {"input_tokens": INPUT_TOKENS, "input_tokens_details": {"cached_tokens": CACHED_TOKENS},
                 "output_tokens": OUTPUT_TOKENS, "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS}
        resp = {"id": rid, "object": "response", "model": model, "status": "in_progress", "output": []}
        self.start_sse()
        events = [
            sse({"type": "response.created", "response": resp}, "response.created"),
            sse({"type": "response.output_item.added", "output_index": 0, "item": item},
                "response.output_item.added"),
            sse({"type": "response.output_item.done", "output_index": 0, "item": item},
                "response.output_item.done"),
            sse({"type": "response.completed", "response": dict(resp, status="completed", output=[item],
                                                                  usage=usage)}, "response.completed"),
        ]
        for e in events:
            self.wfile.write(e)
        self.wfile.flush()

    def gemini(self, path, turn, n, stream):
        model = path.rsplit("/", 1)[-1].split(":", 1)[0]
        if "bash" in turn:
            part = {"functionCall": {"name": "run_shell_command",
                                     "args": {"command": turn["bash"], "description": "Run a command"}}}
        else:
            part = {"text": turn.get("text", "")}
        chunk = {"candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP",
                                 "index": 0}],
                 "usageMetadata": {"promptTokenCount": INPUT_TOKENS, "cachedContentTokenCount": CACHED_TOKENS,
                                   "candidatesTokenCount": OUTPUT_TOKENS,
                                   "totalTokenCount": INPUT_TOKENS + OUTPUT_TOKENS},
                 "modelVersion": model, "responseId": "mock-%04d" % n}
        if not stream:
            self.send_json(200, chunk)
            return
        self.start_sse()
        self.wfile.write(("data: %s\r\n\r\n" % json.dumps(chunk)).encode())
        self.wfile.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--script", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--max-seconds", type=float, default=300)
    args = ap.parse_args()
    with open(args.script, encoding="utf-8") as f:
        script = json.load(f)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.mock = Mock(script, args.log, 0)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.replace(tmp, args.port_file)
    timer = threading.Timer(args.max_seconds, server.shutdown)
    timer.daemon = True
    timer.start()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
