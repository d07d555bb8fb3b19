"""Counts what each request type costs on the local stack: AWS calls (by the recording
proxy, tools/py/recording_proxy.py), serial stages (calls that overlap in time are one
stage), DynamoDB capacity, items read, duration and log bytes; then the cost of 1M such
requests at AWS list prices. Run by tools/bench.sh.
"""

import argparse
import base64
import json
import math
import os
import re
import sys
import statistics
import time
import urllib.error
import urllib.request
import uuid

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

POLLING = {"ReceiveMessage", "DeleteMessage", "DeleteMessageBatch", "ChangeMessageVisibility"}
RUNS = 7  # the first is a warm-up (secrets, connections) and not counted

# List prices (us-east-1, on demand), in dollars.
PRICE = {
    "api_gateway_rest_per_m": 3.50,
    "lambda_request_per_m": 0.20,
    "lambda_gb_s_arm64": 0.0000133334,
    "dynamodb_rru_per_m": 0.125,
    "dynamodb_wru_per_m": 0.625,
    "sqs_request_per_m": 0.40,
    "logs_ingest_per_gb": 0.50,
}
# Lambda writes START, END and REPORT lines per invocation besides the function's own, unless
# template.yaml's PlatformLogLevel is WARN.
PLATFORM_LOG_BYTES = 3 * 340
# What CloudWatch bills per log event beyond its text, and the timestamp Lambda adds to a JSON
# line without one.
LOG_EVENT_OVERHEAD = 26 + 40
AUTHORIZER_MB, FUNCTION_MB = 512, 256  # template.yaml MemorySize (authorizer, Globals)
# The cost is counted over this many requests in a row: the authorizer claims rate-limit
# tokens in runs, so its writes only show as a share over many requests.
SERIES = 300
# DynamoDB's latency from Lambda in the same region, for the modelled duration: the local
# emulator (Python, behind the recording proxy) is several times slower than DynamoDB.
DYNAMODB_STAGE_MS = 5.0


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def es256(demo_jwt, claims):
    key = serialization.load_pem_private_key(demo_jwt["private_key_pem"].encode(), None)
    header = {"alg": "ES256", "kid": demo_jwt["kid"], "typ": "JWT"}
    signing = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    r, s = decode_dss_signature(key.sign(signing.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


class Bench:
    def __init__(self, base, demo, proxy, gateway_log):
        self.base, self.demo, self.proxy, self.gateway_log = base, demo, proxy, gateway_log

    def calls(self):
        with urllib.request.urlopen(f"{self.proxy}/__calls") as r:
            return json.load(r)

    def send(self, method, path, headers, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.base}{path}", data=data, method=method, headers=headers)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def jwt(self):
        j, now = self.demo["jwt"], int(time.time())
        return es256(j, {"iss": j["iss"], "aud": j["aud"], "iat": now, "exp": now + 300,
                         "jti": str(uuid.uuid4()), "sub": "bench"})

    def request_logs(self, start):
        """The lines the request added to the gateway's log: (the local gateway's own line,
        the functions' lines)."""
        with open(self.gateway_log, "rb") as f:
            f.seek(start)
            lines = [l for l in f.read().splitlines() if l.strip()]
        gateway, functions = None, []
        for raw in lines:
            try:
                line = json.loads(raw)
            except ValueError:
                functions.append(raw)
                continue
            if line.get("fields", {}).get("message") == "gateway":
                gateway = line["fields"]
            else:
                functions.append(raw)
        return gateway, functions

    def one(self, make, settle):
        """One request (`make()` gives method, path, headers, body) and what it cost: its
        calls, units, stages, each invocation's billed duration and the functions' log
        lines, after `settle` seconds for the last log line."""
        method, path, headers, body = make()
        self.calls()
        log_before = os.path.getsize(self.gateway_log)
        t = time.monotonic()
        status, _, _ = self.send(method, path, headers, body)
        ms = (time.monotonic() - t) * 1000
        time.sleep(settle)
        calls = self.calls()
        dynamo = [c for c in calls if c["op"].startswith("DynamoDB_")]
        gateway, lines = self.request_logs(log_before)
        done = [json.loads(l) for l in lines if b'"done"' in l]
        return {
            "status": status,
            "dynamodb": len(dynamo),
            "stages": stages(dynamo),
            # The local stack's queue pollers (Lambda's event source mappings in AWS) are
            # not the request's.
            "other": sorted(o for o in (c["op"].split(".")[-1] for c in calls
                                        if not c["op"].startswith("DynamoDB_")) if o not in POLLING),
            "rru": sum(c["rru"] for c in dynamo),
            "wru": sum(c["wru"] for c in dynamo),
            "writes": sum(1 for c in dynamo if c["wru"]),
            "items": sum(c.get("items", 0) for c in dynamo),
            "ms": ms,
            # Lambda bills each invocation's duration rounded up to the millisecond.
            "authorizer_ms": math.ceil((gateway or {}).get("authorizer_ms") or 0),
            "function_ms": math.ceil(float(done[-1]["fields"]["ms"])) if done else 0,
            "log": sum(len(l) + 1 for l in lines),
            "lines": len(lines),
        }

    def series(self, make, n=SERIES):
        """Per-request means over `n` requests in a row: DynamoDB units, each invocation's
        billed duration and the functions' log bytes and lines."""
        rows = [self.one(make, settle=0.02) for _ in range(n)]
        keys = ("rru", "wru", "authorizer_ms", "function_ms", "log", "lines", "writes", "stages")
        mean = {k: sum(r[k] for r in rows) / n for k in keys}
        mean["status"] = ",".join(str(s) for s in sorted({r["status"] for r in rows}))
        mean["n"] = n
        return mean

    def measure(self, name, make):
        """Medians over RUNS requests, the first (a warm-up) left out."""
        rows = [self.one(make, settle=0.05) for _ in range(RUNS)][1:]
        med = {k: statistics.median(r[k] for r in rows) for k in ("dynamodb", "stages", "rru", "wru", "items", "ms", "log")}
        med["other"] = max((r["other"] for r in rows), key=len)
        med["name"], med["status"] = name, ",".join(str(s) for s in sorted({r["status"] for r in rows}))
        return med


def stages(calls):
    """Calls that overlap in time run concurrently: one stage."""
    n, end = 0, None
    for c in sorted(calls, key=lambda c: c["t0"]):
        if end is None or c["t0"] >= end:
            n += 1
            end = c["t1"]
        else:
            end = max(end, c["t1"])
    return n


def platform_log_level():
    """template.yaml's default PlatformLogLevel."""
    text = open(os.path.join(os.path.dirname(__file__), "..", "..", "template.yaml")).read()
    m = re.search(r"^  PlatformLogLevel:\n(?:    .*\n)*?    Default: (\w+)", text, re.M)
    return m.group(1) if m else "INFO"


def duration(ms, mb):
    """1M invocations of `ms` each at `mb` MB, in dollars."""
    return ms / 1000 * mb / 1024 * 1e6 * PRICE["lambda_gb_s_arm64"]


def cost_per_million(row):
    """Koppel's own share of 1M such requests (API Gateway's request fee apart), from a
    series' per-request means."""
    platform = 0 if platform_log_level() == "WARN" else 2 * PLATFORM_LOG_BYTES
    log_bytes = row["log"] + row["lines"] * LOG_EVENT_OVERHEAD + platform
    return {
        "DynamoDB reads": row["rru"] * PRICE["dynamodb_rru_per_m"],
        "DynamoDB writes (rate-limit claims)": row["wru"] * PRICE["dynamodb_wru_per_m"],
        "Lambda requests (authorizer + function)": 2 * PRICE["lambda_request_per_m"],
        "Lambda duration (authorizer)": duration(row["authorizer_ms"], AUTHORIZER_MB),
        "Lambda duration (function)": duration(row["function_ms"], FUNCTION_MB),
        "CloudWatch Logs": log_bytes * 1e6 / 1e9 * PRICE["logs_ingest_per_gb"],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--demo", required=True)
    ap.add_argument("--proxy", required=True)
    ap.add_argument("--profile", default="debug")
    ap.add_argument("--rate-limit", default="?", help="the stack's DefaultRateLimit, as printed")
    ap.add_argument("--init-figures", help="bench_init.py's --json-out: warm CPU for the modelled duration")
    a = ap.parse_args()
    demo = json.load(open(a.demo))
    b = Bench(a.base_url, demo, a.proxy, os.path.join(os.path.dirname(a.demo), "gateway.log"))
    con, users, ws = demo["connector"], demo["users"], demo["workspace_id"]
    key = {"API-Interface-Id": con["id"], "API-Key": con["api_key"]}
    token = {"Authorization": f"Bearer {con['token']}"}
    pat = {"Authorization": f"Bearer {users['owner']['pat']}"}
    status, _, body = b.send("GET", "/v1/cases?limit=1", token)
    case_id = json.loads(body)["items"][0]["id"]
    status, _, body = b.send("POST", "/v1/cases", pat, {"case_type": "Bench", "subject": "bench"})
    own_case = json.loads(body)["id"]

    def patch():
        _, headers, _ = b.send("GET", f"/v1/cases/{own_case}", pat)
        etag = {k.lower(): v for k, v in headers.items()}["etag"]
        return "PATCH", f"/v1/cases/{own_case}", {**pat, "If-Match": etag}, {"subject": f"bench {uuid.uuid4()}"}

    osr = demo["osr"]
    day = iter(range(1, 10_000))
    # The demo's endpoint is open-ended: it would overlap every new one (409). End it tomorrow.
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
    status, _, body = b.send("PUT", f"/api/v1/endpoints/{osr['endpoint_id']}", {"JWT": b.jwt()}, {
        "mandate_token": osr["mandate_token"], "administration_id": osr["administration_id"],
        "service_version_namespace": osr["namespace"], "url": "https://leverancier.example/koppelpunt",
        "attributes": "LAS", "end_date": tomorrow,
    })
    if status != 200:
        sys.exit(f"bench: ending the demo endpoint answered {status}: {body}")

    def endpoint():
        d = next(day)
        start = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400 * (400 + 2 * d)))
        end = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400 * (401 + 2 * d)))
        return "POST", "/api/v1/endpoints", {"JWT": b.jwt()}, {
            "mandate_token": osr["mandate_token"], "administration_id": osr["administration_id"],
            "service_version_namespace": osr["namespace"], "url": "https://t2.nl", "attributes": "LAS",
            "start_date": start, "end_date": end,
        }

    rows = [
        b.measure("GET /v1/me, API key", lambda: ("GET", "/v1/me", key, None)),
        b.measure("GET /v1/me, connector token", lambda: ("GET", "/v1/me", token, None)),
        b.measure("GET /v1/me, PAT", lambda: ("GET", "/v1/me", pat, None)),
        b.measure("GET /v1/me, JWT", lambda: ("GET", "/v1/me", {"JWT": b.jwt()}, None)),
        b.measure("GET /v1/cases/{id}", lambda: ("GET", f"/v1/cases/{case_id}", token, None)),
        b.measure("GET /v1/cases?limit=5", lambda: ("GET", "/v1/cases?limit=5", token, None)),
        b.measure("POST /v1/cases", lambda: ("POST", "/v1/cases", pat, {"case_type": "Bench", "subject": "b"})),
        b.measure("PATCH /v1/cases/{id}", patch),
        b.measure("GET DSR list, size=50", lambda: ("GET", f"/v1/ws/{ws}/DataSubjectRequests?size=50", token, None)),
        b.measure("POST /api/v1/endpoints", endpoint),
    ]
    # PATCH's own GET for the ETag is counted apart: only the PATCH is in its row.
    print(f"\nAWS calls per request (median of {RUNS - 1}, {a.profile} build, local emulator)\n")
    print(f"{'request':32} {'status':>6} {'DDB':>4} {'stages':>6} {'RRU':>5} {'WRU':>5} {'items':>5} {'ms':>7} {'log B':>6}  other")
    for r in rows:
        print(f"{r['name']:32} {r['status']:>6} {r['dynamodb']:>4.0f} {r['stages']:>6.0f} {r['rru']:>5.1f} "
              f"{r['wru']:>5.1f} {r['items']:>5.0f} {r['ms']:>7.1f} {r['log']:>6.0f}  {' '.join(r['other'])}")
    me = b.series(lambda: ("GET", "/v1/me", token, None))
    print(f"\nCost of 1M authorized GET /v1/me (connector token) at list prices, Koppel's own share "
          f"(API Gateway's ${PRICE['api_gateway_rest_per_m']:.2f} apart), from {me['n']} requests in a row "
          f"(status {me['status']}; limit {a.rate_limit}/min; "
          f"{me['writes']:.3f} writes, {me['rru']:.2f} RRU a request; authorizer {me['authorizer_ms']:.1f} ms "
          f"at {AUTHORIZER_MB} MB, function {me['function_ms']:.1f} ms at {FUNCTION_MB} MB, billed; "
          f"{me['log']:.0f} B in {me['lines']:.2f} log lines a request; platform lines at {platform_log_level()}):")
    lines = cost_per_million(me)
    modelled = None
    if a.init_figures:
        cpu = json.load(open(a.init_figures))
        # Each invocation billed as its own CPU (measured warm, bench_init.py) plus, for the
        # authorizer, which makes every DynamoDB call of this request, each serial stage at
        # DynamoDB's in-region latency; rounded up to the millisecond as Lambda bills.
        modelled = dict(me, authorizer_ms=math.ceil(cpu["authorize"]["warm_cpu_us"] / 1000 + me["stages"] * DYNAMODB_STAGE_MS),
                        function_ms=math.ceil(cpu["tokens"]["warm_cpu_us"] / 1000))
        print(f"  (second column: durations modelled as warm CPU + {me['stages']:.2f} DynamoDB stages × "
              f"{DYNAMODB_STAGE_MS:.0f} ms: authorizer {modelled['authorizer_ms']} ms, function {modelled['function_ms']} ms)")
    other = cost_per_million(modelled) if modelled else {}
    for k, v in lines.items():
        print(f"  {k:42} ${v:7.3f}" + (f"  ${other[k]:7.3f}" if other else ""))
    print(f"  {'total':42} ${sum(lines.values()):7.3f}" + (f"  ${sum(other.values()):7.3f}" if other else ""))


if __name__ == "__main__":
    main()
