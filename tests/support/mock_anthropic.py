#!/usr/bin/env python3
"""A scripted Anthropic Messages API on loopback, for driving the real Claude Code CLI offline.

    python3 mock_anthropic.py --port-file F --script S.json --log L [--max-seconds 300]

Binds 127.0.0.1 on a free port, writes the port to F (atomically), and serves
until killed, until --max-seconds have passed, or after --max-requests requests.

The script (JSON):

    {"conversations": [
        {"marker": "agent-1",
         "turns": [
            {"bash": "git commit -am done", "description": "Commit"},
            {"text": "All done."}
         ]},
        {"marker": "agent-2", "turns": [{"error": 529}]}
     ],
     "default_text": "OK."}

A request belongs to the conversation whose marker occurs (as a whole word) in
the text of its first user message, outside the CLI's <system-reminder> blocks; its turn is the number of `tool_result`
blocks in the request's messages, so the server keeps no state and a retried
request gets the same answer. A turn is one of:

    {"bash": CMD}                 a `tool_use` of the Bash tool
    {"tool": NAME, "input": {..}} a `tool_use` of any tool
    {"text": TEXT}                a final text answer (end_turn)
    {"error": STATUS}             an HTTP error (429 rate limit, 529 overloaded, 500 ...)

A conversation may add "resumed": {"marker": M, "turns": [...]}: once a later
user message of the same session (a resumed session's new prompt) contains M,
the request is answered from those turns instead, its turn being the number of
`tool_result` blocks after that message.

Any turn may add "fail_times": N (and "fail_status", default 429): its first N
requests get that error instead, then it answers as scripted. This is the one
piece of state the server keeps, for testing retries of a rate-limited agent.

Past its last turn a conversation answers with its last text turn, or "Done.".
Requests that offer no tools (titles, summaries) and requests that match no
marker get `default_text`. `/v1/messages/count_tokens` answers a token count.
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

USAGE_IN = {
    "input_tokens": 1200,
    "cache_creation_input_tokens": 300,
    "cache_read_input_tokens": 2000,
}
OUTPUT_TOKENS = 85

ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
ERROR_MESSAGES = {
    429: "Number of request tokens has exceeded your per-minute rate limit",
    529: "Overloaded",
}


class Mock:
    def __init__(self, script, log_path, max_requests):
        self.script = script
        self.log_path = log_path
        self.max_requests = max_requests
        self.count = 0
        self.lock = threading.Lock()
        self.ids = 0
        self.failures = {}

    def should_fail(self, key, times):
        """Whether this request is one of the first `times` for `key`."""
        with self.lock:
            n = self.failures.get(key, 0)
            self.failures[key] = n + 1
            return n < times

    def next_id(self):
        with self.lock:
            self.ids += 1
            return self.ids

    def log(self, entry):
        with self.lock:
            self.count += 1
            entry["n"] = self.count
            entry["time"] = time.time()
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")
            return self.count


def text_of(content):
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if isinstance(block, dict):
            if block.get("type") == "text":
                parts.append(block.get("text", ""))
            elif block.get("type") == "tool_result":
                parts.append(text_of(block.get("content")))
    return "\n".join(parts)


def first_user_text(body):
    for m in body.get("messages", []):
        if m.get("role") == "user":
            return text_of(m.get("content"))
    return ""


def count_tool_results(body):
    n = 0
    for m in body.get("messages", []):
        content = m.get("content")
        if isinstance(content, list):
            n += sum(1 for b in content if isinstance(b, dict) and b.get("type") == "tool_result")
    return n


def resumed_at(body, marker):
    """The index of the last user message after the first whose text has `marker`."""
    found = None
    users = 0
    for i, m in enumerate(body.get("messages", [])):
        if m.get("role") != "user":
            continue
        users += 1
        text = re.sub(r"<system-reminder>.*?</system-reminder>", "", text_of(m.get("content")), flags=re.S)
        if users > 1 and marker and re.search(r"(?<![\w-])" + re.escape(marker) + r"(?![\w-])", text):
            found = i
    return found


def find_conversation(script, text):
    # The CLI prepends context (CLAUDE.md, dates) in <system-reminder> blocks: only
    # the prompt itself counts.
    return find_marker(script, re.sub(r"<system-reminder>.*?</system-reminder>", "", text, flags=re.S))


def find_marker(script, text):
    for conv in script.get("conversations", []):
        marker = conv.get("marker", "")
        if marker and re.search(r"(?<![\w-])" + re.escape(marker) + r"(?![\w-])", text):
            return conv
    return None


def choose(mock, body):
    """(turn, why) for one /v1/messages request."""
    script = mock.script
    default = {"text": script.get("default_text", "OK.")}
    tool_names = [t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)]
    if not tool_names:
        return default, "no tools offered (side request)"
    conv = find_conversation(script, first_user_text(body))
    if conv is None:
        return default, "no marker matched"
    turns = conv.get("turns", [])
    i = count_tool_results(body)
    resumed = conv.get("resumed")
    if resumed:
        later = resumed_at(body, resumed.get("marker", ""))
        if later is not None:
            conv = dict(resumed, marker="%s/%s" % (conv.get("marker"), resumed.get("marker")))
            turns = resumed.get("turns", [])
            i = count_tool_results({"messages": body.get("messages", [])[later:]})
    if i < len(turns):
        turn, why = turns[i], "conversation %s turn %d" % (conv.get("marker"), i)
        times = int(turn.get("fail_times", 0))
        if times and mock.should_fail((conv.get("marker"), i), times):
            return {"error": turn.get("fail_status", 429)}, why + " (injected failure)"
        return turn, why
    texts = [t for t in turns if "text" in t]
    last = texts[-1] if texts else {"text": "Done."}
    return last, "conversation %s past its turns" % conv.get("marker")


def sse(event, data):
    return ("event: %s\ndata: %s\n\n" % (event, json.dumps(data))).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-anthropic/1"

    def log_message(self, fmt, *args):  # quiet: everything goes to the JSON log
        pass

    def read_body(self):
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            return {"_unparsed": raw.decode("utf-8", "replace")}

    def send_json(self, status, obj, headers=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", "req_mock_%d" % self.server.mock.next_id())
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        mock = self.server.mock
        mock.log({"method": "GET", "path": self.path})
        self.send_json(404, {"type": "error", "error": {"type": "not_found_error", "message": "not found"}})

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def do_POST(self):
        mock = self.server.mock
        body = self.read_body()
        path = self.path.split("?", 1)[0]
        entry = {
            "method": "POST",
            "path": self.path,
            "model": body.get("model"),
            "stream": body.get("stream"),
            "tools": [t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)],
            "system": text_of(body.get("system"))[:300] if body.get("system") else None,
            "first_user": first_user_text(body)[:300],
            "tool_results": count_tool_results(body),
            "messages": len(body.get("messages", [])),
            "headers": {k: v for k, v in self.headers.items()
                        if k.lower() not in ("x-api-key", "authorization")},
        }
        if path.endswith("/count_tokens"):
            entry["answer"] = "count_tokens"
            mock.log(entry)
            self.send_json(200, {"input_tokens": 1234})
            return
        if not path.endswith("/v1/messages"):
            entry["answer"] = "404"
            mock.log(entry)
            self.send_json(404, {"type": "error", "error": {"type": "not_found_error", "message": "not found"}})
            return
        turn, why = choose(mock, body)
        entry["answer"] = turn
        entry["why"] = why
        n = mock.log(entry)
        if "error" in turn:
            status = int(turn["error"])
            kind = ERRORS.get(status, "api_error")
            message = turn.get("message") or ERROR_MESSAGES.get(status, kind)
            headers = {"retry-after": "0"} if status == 429 else {}
            self.send_json(status, {"type": "error", "error": {"type": kind, "message": message}}, headers)
        else:
            self.stream_message(body, turn, n)
        if mock.max_requests and n >= mock.max_requests:
            threading.Thread(target=self.server.shutdown, daemon=True).start()

    def stream_message(self, body, turn, n):
        model = body.get("model") or "claude-mock"
        msg_id = "msg_mock_%04d" % n
        if "bash" in turn or "tool" in turn:
            name = turn.get("tool", "Bash")
            tool_input = turn.get("input") or {
                "command": turn["bash"],
                "description": turn.get("description", "Run a command"),
            }
            block = {"type": "tool_use", "id": "toolu_mock_%04d" % n, "name": name, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(tool_input)}
            stop_reason = "tool_use"
        else:
            block = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": turn.get("text", "")}
            stop_reason = "end_turn"
        events = [
            sse("message_start", {"type": "message_start", "message": {
                "id": msg_id, "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": None, "stop_sequence": None,
                "usage": dict(USAGE_IN, output_tokens=1)}}),
            sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}),
            sse("ping", {"type": "ping"}),
            sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
            sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
            sse("message_delta", {"type": "message_delta",
                                  "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                  "usage": dict(USAGE_IN, output_tokens=OUTPUT_TOKENS)}),
            sse("message_stop", {"type": "message_stop"}),
        ]
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("request-id", "req_mock_%04d" % n)
        self.send_header("connection", "close")
        self.end_headers()
        for e in events:
            self.wfile.write(e)
        self.wfile.flush()
        self.close_connection = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--script", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--max-seconds", type=float, default=300)
    ap.add_argument("--max-requests", type=int, default=0)
    args = ap.parse_args()

    with open(args.script, encoding="utf-8") as f:
        script = json.load(f)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.mock = Mock(script, args.log, args.max_requests)
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
