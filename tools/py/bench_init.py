"""Cold start, warm CPU, memory and size of every function binary, against a hello-world
`lambda_runtime` binary built in the same run with the same profile (tools/hello).

Plays Lambda's Runtime API on loopback (the three routes a function calls: next,
response, error) and starts each binary as Lambda would, fresh for every run:
- init: from the process start to its first `GET /next` (what Lambda bills as Init);
- first invoke: from the first event handed over to its response (a real request of the
  function's, so it includes the first DynamoDB connection);
- warm CPU: CPU time (every thread, /proc/<pid>/task/*/schedstat) per invocation over
  `--warm` more invocations of the same event, for the authorizer and GET /v1/me;
- peak RSS (VmHWM) after those, and each binary's size on disk (stripped by the profile).
Run by tools/bench.sh with the local stack's environment (KOPPEL_*, AWS_*) exported.
"""

import argparse
import glob
import http.server
import json
import os
import queue
import shlex
import statistics
import subprocess
import threading
import time
import uuid

API = "/2018-06-01/runtime"


class RuntimeApi(http.server.ThreadingHTTPServer):
    """One function instance's Runtime API: hands out the queued events, records answers."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a function killed at the end of its run drops its connection

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.events = queue.Queue()
        self.first_next = None
        self.answers = queue.Queue()  # (request id, status, body, time answered)
        self.handed = {}  # request id -> time handed over


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            # A streamed response (cases): chunks until the empty one, then trailers.
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def reply(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        s = self.server
        if self.path != f"{API}/invocation/next":
            return self.reply(404)
        if s.first_next is None:
            s.first_next = time.monotonic()
        event = s.events.get()
        if event is None:  # the run is over: the process is killed while it waits
            time.sleep(30)
            return
        rid = str(uuid.uuid4())
        s.handed[rid] = time.monotonic()
        self.reply(200, json.dumps(event).encode(), {
            "Content-Type": "application/json",
            "Lambda-Runtime-Aws-Request-Id": rid,
            "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + 10_000),
            "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:eu-west-1:123456789012:function:bench",
            "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000;Sampled=0",
        })

    def do_POST(self):
        parts = self.path.split("/")
        body = self.body()
        now = time.monotonic()
        if self.path.endswith("/response") or self.path.endswith("/error"):
            self.server.answers.put((parts[-2], parts[-1], body, now))
        elif self.path.endswith("/init/error"):
            self.server.answers.put((None, "init-error", body, now))
        self.reply(202)


def cpu_ns(pid):
    total = 0
    for f in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            total += int(open(f).read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that just ended
    return total


def peak_rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def function_env(koppel_local, params, binary):
    """The function's environment as template.yaml resolves it (koppel-local env)."""
    if os.path.basename(binary) == "hello":
        return {}
    logical = "".join(p.capitalize() for p in os.path.basename(binary).split("-")) + "Function"
    out = subprocess.run([koppel_local, *params, "env", "--function", logical],
                         check=True, capture_output=True, text=True).stdout
    env = {}
    for line in out.splitlines():
        words = shlex.split(line)
        if words[:1] == ["export"] and "=" in words[1]:
            k, v = words[1].split("=", 1)
            env[k] = v
    return env


ENV = {}


def run_once(binary, event, warm=0):
    """Starts `binary` fresh, hands it `event` 1 + `warm` times: its figures."""
    api = RuntimeApi()
    threading.Thread(target=api.serve_forever, daemon=True).start()
    env = {**os.environ, **ENV.get(binary, {}), "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{api.server_address[1]}",
           "AWS_LAMBDA_FUNCTION_NAME": os.path.basename(binary), "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
           "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "RUST_LOG": "warn"}
    for _ in range(1 + warm):
        api.events.put(event)
    api.events.put(None)
    started = time.monotonic()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        out = {}
        try:
            rid, kind, body, at = api.answers.get(timeout=30)
        except queue.Empty:
            proc.kill()
            raise SystemExit(f"{binary}: no answer within 30 s: {proc.stderr.read()[-2000:]!r}")
        if kind != "response":
            raise SystemExit(f"{binary}: {kind}: {body[:500]!r}")
        out["init_ms"] = (api.first_next - started) * 1000
        out["first_ms"] = (at - api.handed[rid]) * 1000
        out["answer"] = body
        if warm:
            cpu0 = cpu_ns(proc.pid)
            for _ in range(warm):
                _, kind, body, _ = api.answers.get(timeout=30)
                if kind != "response":
                    raise SystemExit(f"{binary}: {kind}: {body[:500]!r}")
            out["warm_cpu_us"] = (cpu_ns(proc.pid) - cpu0) / warm / 1000
            out["rss_kb"] = peak_rss_kb(proc.pid)
        return out
    finally:
        proc.kill()
        proc.wait()
        api.shutdown()
        api.server_close()


def authorizer_event(token):
    return {
        "type": "REQUEST", "methodArn": "arn:aws:execute-api:eu-west-1:123456789012:api/v1/GET/v1/me",
        "resource": "/v1/me", "path": "/v1/me", "httpMethod": "GET",
        "headers": {"Authorization": f"Bearer {token}"},
        "multiValueHeaders": {"Authorization": [f"Bearer {token}"]},
        "queryStringParameters": {}, "multiValueQueryStringParameters": {}, "pathParameters": {},
        "requestContext": {"requestId": str(uuid.uuid4()), "resourcePath": "/v1/me", "httpMethod": "GET",
                           "stage": "v1", "apiId": "bench", "identity": {"sourceIp": "127.0.0.1"}},
    }


def proxy_event(resource, path, context, path_params=None, query=None):
    """An API Gateway REST (v1) event as the authorizer's `context` lets it through."""
    return {
        "resource": resource, "path": path, "httpMethod": "GET",
        "headers": {"Accept": "application/json"}, "multiValueHeaders": {"Accept": ["application/json"]},
        "queryStringParameters": query, "multiValueQueryStringParameters":
            {k: [v] for k, v in (query or {}).items()} or None,
        "pathParameters": path_params, "stageVariables": None, "body": None, "isBase64Encoded": False,
        "requestContext": {"requestId": str(uuid.uuid4()), "resourcePath": resource, "httpMethod": "GET",
                           "path": f"/v1{path}", "stage": "v1", "apiId": "bench", "accountId": "123456789012",
                           "identity": {"sourceIp": "127.0.0.1"}, "authorizer": context},
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--demo", required=True)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--warm", type=int, default=200)
    ap.add_argument("--koppel-local", required=True)
    ap.add_argument("--json-out", help="also write the figures here (tools/bench.sh hands them to the cost model)")
    ap.add_argument("--param", action="append", default=[], help="a template parameter, as koppel-local takes it")
    a = ap.parse_args()
    params = [w for p in a.param for w in ("--param", p)]
    demo = json.load(open(a.demo))
    b = lambda name: os.path.join(a.bin_dir, name)  # noqa: E731

    ENV[b("authorize")] = function_env(a.koppel_local, params, b("authorize"))
    auth_event = authorizer_event(demo["connector"]["token"])
    allowed = json.loads(run_once(b("authorize"), auth_event)["answer"])
    if allowed.get("policyDocument", {}).get("Statement", [{}])[0].get("Effect") != "Allow":
        raise SystemExit(f"bench: the authorizer did not allow the demo token: {allowed}")
    context = dict(allowed["context"], principalId=allowed["principalId"])
    ws = demo["workspace_id"]
    events = {
        "hello": {},
        "authorize": auth_event,
        "tokens": proxy_event("/v1/me", "/v1/me", context),
        "cases": proxy_event("/v1/cases", "/v1/cases", context, query={"limit": "1"}),
        "dsr": proxy_event("/v1/ws/{workspaceId}/DataSubjectRequests", f"/v1/ws/{ws}/DataSubjectRequests",
                           context, {"workspaceId": ws}, {"size": "1"}),
        "connectors": proxy_event("/v1/connectors", "/v1/connectors", context),
        "endpoints": proxy_event("/api/v1/service-versions", "/api/v1/service-versions", context),
        "webhook-dispatch": {"Records": []},
    }
    for name in events:
        ENV[b(name)] = function_env(a.koppel_local, params, b(name))
    warm = {"hello", "authorize", "tokens"}
    rows = {}
    for name, event in events.items():
        runs = [run_once(b(name), event) for _ in range(a.runs)]
        row = {k: statistics.median(r[k] for r in runs) for k in ("init_ms", "first_ms")}
        row["size"] = os.path.getsize(b(name))
        answer = runs[-1]["answer"]
        try:
            row["status"] = json.loads(answer).get("statusCode", "ok")
        except ValueError:
            row["status"] = "streamed"  # the cases function's prelude and body
        if name in warm:
            w = run_once(b(name), event, warm=a.warm)
            row["warm_cpu_us"], row["rss_kb"] = w["warm_cpu_us"], w["rss_kb"]
        rows[name] = row

    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(rows, f, indent=1)
    base = rows["hello"]
    print(f"\nCold start and size (median of {a.runs} fresh processes; Runtime API on loopback, the local "
          f"emulator behind; warm CPU over {a.warm} invocations)\n")
    print(f"{'binary':18} {'MB':>6} {'init ms':>8} {'× hello':>8} {'1st ms':>8} {'status':>8} {'warm CPU µs':>12} {'peak RSS MB':>12}")
    for name, r in rows.items():
        warm_cpu = f"{r['warm_cpu_us']:12.0f}" if "warm_cpu_us" in r else f"{'':12}"
        rss = f"{r['rss_kb'] / 1024:12.1f}" if "rss_kb" in r else f"{'':12}"
        print(f"{name:18} {r['size'] / 1e6:6.2f} {r['init_ms']:8.1f} {r['init_ms'] / base['init_ms']:8.2f} "
              f"{r['first_ms']:8.1f} {str(r['status']):>8} {warm_cpu} {rss}")


if __name__ == "__main__":
    main()
