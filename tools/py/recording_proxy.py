"""A recording proxy in front of the local emulator: forwards every AWS call unchanged and
keeps when it started and ended, which operation it was (`X-Amz-Target`, e.g.
`DynamoDB_20120810.GetItem`) and the capacity it would be billed for. The bench reads and
clears the record with `GET /__calls`.

Usage: python recording_proxy.py --listen PORT --to http://127.0.0.1:EMULATOR_PORT
"""

import argparse
import http.client
import json
import math
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_calls = []
_lock = threading.Lock()
_upstream = threading.local()
_started = time.monotonic()


def size(attrs):
    """DynamoDB's item size: names plus values, roughly (UTF-8 bytes of the JSON form)."""
    return len(json.dumps(attrs, separators=(",", ":")).encode())


def capacity(op, request, response):
    """(read units, write units) the call would be billed, on-demand: a read 1 unit per 4 KB
    strongly consistent or half eventually consistent, a write 1 per 1 KB; transactions
    twice. Conditional writes that fail are billed as well."""
    op = op.rsplit(".", 1)[-1]
    consistent = request.get("ConsistentRead", False)
    per_read = 1.0 if consistent else 0.5
    if op == "GetItem":
        return max(1, math.ceil(size(response.get("Item", {})) / 4096)) * per_read, 0
    if op in ("Query", "Scan"):
        total = sum(size(i) for i in response.get("Items", []))
        return max(1, math.ceil(total / 4096)) * per_read, 0
    if op == "BatchGetItem":
        units = 0
        for table, items in response.get("Responses", {}).items():
            # A batch says ConsistentRead per table, not for the request.
            asked = request.get("RequestItems", {}).get(table, {})
            per = 1.0 if asked.get("ConsistentRead", False) else 0.5
            units += sum(max(1, math.ceil(size(i) / 4096)) * per for i in items)
        return units, 0
    if op == "TransactGetItems":
        return 2 * len(request.get("TransactItems", [])), 0
    if op == "PutItem":
        return 0, max(1, math.ceil(size(request.get("Item", {})) / 1024))
    if op in ("UpdateItem", "DeleteItem"):
        return 0, 1
    if op == "BatchWriteItem":
        return 0, sum(len(v) for v in request.get("RequestItems", {}).values())
    if op == "TransactWriteItems":
        units = 0
        for step in request.get("TransactItems", []):
            (kind, body), = step.items()
            units += 2 * (max(1, math.ceil(size(body.get("Item", {})) / 1024)) if kind == "Put" else 1)
        return 0, units
    return 0, 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = None

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/__calls":
            with _lock:
                body = json.dumps(_calls).encode()
                _calls.clear()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.forward()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = forward = None  # set below

    def _forward(self):
        t0 = time.monotonic() - _started
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        conn = getattr(_upstream, "conn", None)
        if conn is None:
            u = urllib.parse.urlsplit(self.upstream)
            conn = _upstream.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except (http.client.HTTPException, OSError):
            _upstream.conn = None
            raise
        t1 = time.monotonic() - _started
        op = self.headers.get("X-Amz-Target") or f"{self.command} {self.path.split('?')[0]}"
        call = {"op": op, "t0": t0, "t1": t1, "rru": 0, "wru": 0}
        if op.startswith("DynamoDB_"):
            try:
                answer = json.loads(data or b"{}")
                call["rru"], call["wru"] = capacity(op, json.loads(body or b"{}"), answer)
                call["items"] = len(answer.get("Items", []))
            except ValueError:
                pass
        with _lock:
            _calls.append(call)
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


Handler.forward = Handler._forward
for _m in ("do_POST", "do_PUT", "do_DELETE", "do_HEAD", "do_PATCH"):
    setattr(Handler, _m, Handler._forward)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", type=int, required=True)
    ap.add_argument("--to", required=True)
    a = ap.parse_args()
    Handler.upstream = a.to
    server = ThreadingHTTPServer(("127.0.0.1", a.listen), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
