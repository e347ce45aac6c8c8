#!/usr/bin/env bash
# Latency from `po-status set` to the change in po-serve's page, in the same
# run as its baseline, on a release build:
#
#   1. baseline: the matching `po-watch --events` line (the same change source);
#   2. po-serve's event stream: the `parts` event carrying the new phase,
#      read from a raw socket;
#   3. the page: the new phase in the DOM of the board in headless Chromium
#      (a MutationObserver in the page notes when it first appears).
#
#   bench/serve-latency.sh            # N=100 updates each
#   N=300 bench/serve-latency.sh
#
# Each update is one real `po-status set FILE --phase step-<i>` process; the
# clock starts just before it is spawned, so every figure includes po-status
# itself (process start, lock, write, fsync, rename: about 5 ms). Updates are
# sequential, a random 0-100 ms apart. Needs python3 and chromium
# (apt-get install chromium); without chromium step 3 is left out.
set -euo pipefail

cd "$(dirname "$0")/.."
N="${N:-100}"
cargo build --release --quiet --bin po-serve --bin po-watch --bin po-status
BIN="${CARGO_TARGET_DIR:-target}/release"
CHROMIUM="${PO_CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"

python3 - "$BIN" "$N" "$CHROMIUM" <<'PY'
import fcntl, json, os, random, socket, statistics, subprocess, sys, tempfile, threading, time, queue

bin_dir, n, chromium = sys.argv[1], int(sys.argv[2]), sys.argv[3]
serve, watch, status = (os.path.join(bin_dir, b) for b in ("po-serve", "po-watch", "po-status"))

tmp = tempfile.mkdtemp(prefix="po-serve-bench-")
root = os.path.join(tmp, "runtime")
orch = os.path.join(root, "parallel", "bench")
os.makedirs(orch)
path = os.path.join(orch, "agent-1.status.json")
with open(path, "w") as f:
    json.dump({"agent_id": "agent-1", "status": "in_progress", "title": "Benchmark task",
               "start_time": "2026-01-01T00:00:00Z", "progress_percentage": 0}, f)
# Hold the task's liveness lock, as a runner would, so it is not orphaned.
live = open(os.path.join(orch, "agent-1.live.lock"), "w")
fcntl.flock(live, fcntl.LOCK_EX)
env = dict(os.environ, PO_RUNTIME_DIR=root)
for k in ("PO_WATCH_POLL", "PO_SERVE_TOKEN"):
    env.pop(k, None)

def p(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]

def measure(label, arrived):
    """Run n updates; `arrived(phase)` blocks until the change is seen and
    returns when (time.time(), seconds), or None to take the moment it returned."""
    total = []
    for i in range(n):
        phase = f"{label}-step-{i}"
        time.sleep(random.uniform(0, 0.1))
        t0 = time.time()
        subprocess.run([status, "set", path, "--phase", phase, "--progress", str(i % 101)],
                       check=True, env=env)
        seen = arrived(phase)
        total.append(((seen if seen is not None else time.time()) - t0) * 1000)
    print(f"{label:<34} median {statistics.median(total):7.2f} ms   p99 {p(total, .99):7.2f} ms")
    return statistics.median(total)

load = open("/proc/loadavg").read().split()[:3]
print(f"po-status set -> change seen, {n} updates each "
      f"({os.cpu_count()} CPUs, load average {' '.join(load)})")

# 1. Baseline: po-watch --events.
w = subprocess.Popen([watch, "bench", "--events", "--utc"], stdout=subprocess.PIPE, env=env,
                     text=True, bufsize=1)
w.stdout.readline()
def watch_line(phase):
    while f"{phase} (" not in w.stdout.readline():
        pass
base = measure("po-watch --events (baseline)", watch_line)
w.terminate(); w.wait()

# 2. po-serve's event stream, on a raw socket.
s = subprocess.Popen([serve, "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE,
                     stderr=subprocess.DEVNULL, env=env, text=True)
addr = s.stdout.readline().strip().removeprefix("http://").rstrip("/")
host, port = addr.rsplit(":", 1)
sock = socket.create_connection((host, int(port)))
sock.sendall(b"GET /events/o/bench HTTP/1.1\r\nHost: localhost\r\n\r\n")
events = queue.Queue()
def pump():
    buf = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except OSError:
            return
        if not chunk:
            return
        buf += chunk
        while b"\n\n" in buf:
            ev, buf = buf.split(b"\n\n", 1)
            events.put((time.time(), ev.decode("utf-8", "replace")))
threading.Thread(target=pump, daemon=True).start()
def sse_event(phase):
    while True:
        t, ev = events.get(timeout=60)
        if phase in ev:
            return t
sse = measure("po-serve event stream", sse_event)
sock.close()

# 3. The page in headless Chromium, driven over the DevTools pipe.
dom = None
if chromium and os.path.exists(chromium):
    def hi(fd):
        moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(fd)
        return moved
    cmd_r, cmd_w = map(hi, os.pipe())
    out_r, out_w = map(hi, os.pipe())
    def child():
        os.dup2(cmd_r, 3)
        os.dup2(out_w, 4)
    profile = tempfile.mkdtemp(prefix="po-serve-bench-chromium-")
    chrome = subprocess.Popen(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--remote-debugging-pipe", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-extensions",
         "--no-first-run", "--no-default-browser-check", f"--user-data-dir={profile}",
         "about:blank"],
        preexec_fn=child, pass_fds=(3, 4), stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(cmd_r); os.close(out_w)
    to, frm = os.fdopen(cmd_w, "wb", buffering=0), os.fdopen(out_r, "rb")
    ids = iter(range(1, 1 << 30))
    def call(method, params=None, session=None):
        i = next(ids)
        msg = {"id": i, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        to.write(json.dumps(msg).encode() + b"\0")
        while True:
            raw = b""
            while not raw.endswith(b"\0"):
                chunk = frm.read1(1 << 16)
                if not chunk:
                    raise SystemExit(f"chromium went away during {method}")
                raw += chunk
            for part in raw.split(b"\0")[:-1]:
                m = json.loads(part)
                if m.get("id") == i:
                    if "error" in m:
                        raise SystemExit(f"chromium refused {method}: {m['error']}")
                    return m["result"]
    target = call("Target.createTarget", {"url": "about:blank"})["targetId"]
    sess = call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    def ev(expr):
        r = call("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                                      "awaitPromise": True}, sess)
        return r["result"].get("value")
    call("Page.navigate", {"url": f"http://{addr}/o/bench"}, sess)
    deadline = time.time() + 60
    while ev("document.getElementById('live')?.classList.contains('off') === false") is not True:
        if time.time() > deadline:
            raise SystemExit("the page never went live")
        time.sleep(0.02)
    # Note when each phase first appears in the DOM.
    ev("""window.__seen = {};
          new MutationObserver(() => {
            const el = document.querySelector('#t-agent-1 .phase span');
            if (el && !(el.textContent in window.__seen))
              window.__seen[el.textContent] = performance.timeOrigin + performance.now();
          }).observe(document.body, {subtree: true, childList: true, characterData: true});
          true""")
    def in_dom(phase):
        while True:
            t = ev(f"window.__seen[{json.dumps(phase)}] ?? null")
            if t is not None:
                return t / 1000
            time.sleep(0.001)
    dom = measure("the board's DOM in chromium", in_dom)
    chrome.terminate(); chrome.wait()
else:
    print("the board's DOM in chromium         skipped: no chromium (apt-get install chromium)")
s.terminate(); s.wait()
live.close()

print(f"event stream / baseline: {sse / base:.2f}x"
      + (f";  DOM / baseline: {dom / base:.2f}x" if dom else ""))
if dom:
    print(f"aim: a po-status set in the DOM within 50 ms (median) -> {'met' if dom <= 50 else 'NOT met'}")
PY
