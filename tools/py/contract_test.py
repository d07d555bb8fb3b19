#!/usr/bin/env python3
"""The contract test: schemathesis holds the running local stack to openapi.json.

Run by tools/test.sh after the end-to-end tests, with the stack still up. It issues
credentials of a high rate limit (the demo's allow 30 requests a minute), finds or makes a
few real items so that path parameters reach something besides 404, and runs schemathesis
twice over the committed document:

- as the demo connector (connector token): the operations a partner calls;
- as the workspace owner (personal access token): every operation, with a scratch
  connector standing in for `{id}` under /v1/connectors so that disabling or deleting it
  harms nothing.

Checks: no server error, and every answer's status, content type, headers and body as the
document says. Exits non-zero on any failure, after a summary per run (operations, test cases,
requests by status class, failures by check, wall time).

    contract_test.py --base-url URL --admin koppel-admin --demo demo.json --out DIR
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
]

# Requests per minute for the run's own credentials: far above what one worker sends.
RATE_LIMIT = "100000"

# How often a path parameter takes a real id rather than a generated one (which is 404).
REAL_ID_PROBABILITY = 0.8

# Fixtures a parameter always takes: with an id seen in an answer instead (schemathesis
# reuses them), `DELETE /v1/tokens/{id}` or a user's token revocation could revoke the
# run's own credential, and `PATCH /v1/users/{id}` take the owner's API access away.
PINNED = {"spare_token", "user", "user_token"}

# The operations a connector calls, by path: what the partner sees. Everything else is
# the organisation's own administration (personal tokens only).
CONNECTOR_PATHS = (
    r"^/v1/me$",
    r"^/v1/cases",
    r"^/app/api2csv$",
    r"^/v1/ws/",
    r"^/api/v1/",
    r"^/v1/webhook-event-types$",
    r"^/v1/otp",
    # A connector manages its own webhook subscriptions and their deliveries.
    r"^/v1/connectors/\{id\}/subscriptions",
)

# Which fixture a path parameter takes, by path: the first rule whose pattern matches the
# path template decides; `connector` is the run's own connector.
PARAM_RULES: list[tuple[str, dict[str, str]]] = [
    (r"^/v1/ws/\{workspaceId\}/DataSubjectRequests/", {"workspaceId": "workspace", "id": "dsr"}),
    (r"^/v1/ws/\{workspaceId\}/", {"workspaceId": "workspace"}),
    (r"^/v1/cases/\{id\}", {"id": "case"}),
    (r"^/v1/saved-searches/\{id\}", {"id": "saved_search"}),
    (r"^/v1/tokens/\{id\}", {"id": "spare_token"}),
    (r"^/v1/otp/tokens/\{id\}", {"id": "otp_token"}),
    (r"^/v1/users/\{id\}", {"id": "user", "tokenId": "user_token"}),
    (r"^/api/v1/endpoints/\{id\}", {"id": "endpoint"}),
    (r"^/api/v1/mandates/\{mandate_token\}", {"mandate_token": "mandate"}),
    (r"^/api/v1/service-versions/\{id\}", {"id": "service_version"}),
    (
        r"^/v1/connectors/\{id\}",
        {
            "id": "connector",
            "credentialId": "credential",
            "subscriptionId": "subscription",
            "deliveryId": "delivery",
            "fingerprint": "certificate",
        },
    ),
]


@dataclass
class Run:
    """One schemathesis run: a credential, the operations it covers, its real ids."""

    name: str
    authorization: str
    # Path regexes of the operations it covers (empty: all).
    paths: tuple[str, ...]
    fixtures: dict[str, list[str]] = field(default_factory=dict)


def path_params(path: str) -> list[str]:
    return re.findall(r"\{([^}]+)\}", path)


def bindings(path: str) -> dict[str, str]:
    """The fixture each path parameter of `path` takes (none for unknown ones)."""
    for pattern, by_param in PARAM_RULES:
        if re.search(pattern, path):
            return {p: by_param[p] for p in path_params(path) if p in by_param}
    return {}


def covered(paths: tuple[str, ...], path: str) -> bool:
    return not paths or any(re.search(p, path) for p in paths)


def toml_str(s: str) -> str:
    # A TOML basic string: JSON's escapes are valid TOML escapes.
    return json.dumps(s, ensure_ascii=True)


def render_config(run: Run, document: dict, max_examples: int, seed: int) -> str:
    """schemathesis.toml for `run`: its credential, bounded examples, and for each path
    with parameters the real ids they may take (a dictionary per fixture)."""
    lines = [
        "# Written by tools/py/contract_test.py for one run; not edited by hand.",
        "workers = 1",
        f"seed = {seed}",
        "request-timeout = 30.0",
        f"headers = {{ Authorization = {toml_str(run.authorization)} }}",
        "[generation]",
        f"max-examples = {max_examples}",
        # The stack keeps what the run creates: no state from a previous run to replay.
        "database = \"none\"",
        # Only the run's credential: generated `API-Key`/`JWT` headers beside it make every
        # request an ambiguous credential (401) that never reaches the route.
        "with-security-parameters = false",
    ]
    bound_paths = {}
    for path in sorted(document["paths"]):
        bound = {p: f for p, f in bindings(path).items() if run.fixtures.get(f)}
        if bound and covered(run.paths, path):
            bound_paths[path] = bound
    for name in sorted({f for b in bound_paths.values() for f in b.values()}):
        values = ", ".join(toml_str(v) for v in run.fixtures[name])
        lines += [f"[dictionaries.{name}]", f"values = [{values}]"]
    for path, bound in bound_paths.items():
        params = ", ".join(
            f'"path.{p}" = {{ dictionary = "{f}", probability = {1.0 if f in PINNED else REAL_ID_PROBABILITY} }}'
            for p, f in sorted(bound.items())
        )
        lines += ["[[operations]]", f"include-path = {toml_str(path)}", f"parameters = {{ {params} }}"]
    return "\n".join(lines) + "\n"


@dataclass
class Summary:
    operations: int = 0
    cases: int = 0
    by_class: collections.Counter = field(default_factory=collections.Counter)
    failures: collections.Counter = field(default_factory=collections.Counter)
    # `METHOD path` → check → set of statuses that failed it.
    failed: dict = field(default_factory=dict)
    reached_2xx: set = field(default_factory=set)
    labels: set = field(default_factory=set)


def summarize(events: list[dict]) -> Summary:
    """Counts from schemathesis's NDJSON events: the operations tested, the test cases,
    the answers by status class, and each failed check once per test case."""
    s = Summary()
    for e in events:
        f = e.get("ScenarioFinished")
        if not f:
            continue
        rec = f.get("recorder") or {}
        label = rec.get("label", "")
        if not rec.get("cases"):
            continue
        s.labels.add(label.split(" -> ")[0])
        s.cases += len(rec["cases"])
        for case_id, inter in (rec.get("interactions") or {}).items():
            status = ((inter or {}).get("response") or {}).get("status_code")
            if status is None:
                s.by_class["no answer"] += 1
                continue
            s.by_class[f"{status // 100}xx"] += 1
            if 200 <= status < 300:
                s.reached_2xx.add(label)
        for case_id, checks in (rec.get("checks") or {}).items():
            for c in checks:
                if c.get("status") != "failure":
                    continue
                s.failures[c["name"]] += 1
                status = ((rec.get("interactions") or {}).get(case_id) or {}).get("response", {}) or {}
                s.failed.setdefault(label, {}).setdefault(c["name"], set()).add(status.get("status_code"))
    # Stateful scenarios are labelled by their links, not one operation.
    s.operations = len({x for x in s.labels if re.match(r"^[A-Z]+ /", x)})
    return s


def report(name: str, s: Summary, seconds: float) -> str:
    classes = ", ".join(f"{k}: {v}" for k, v in sorted(s.by_class.items()))
    fails = ", ".join(f"{k}: {v}" for k, v in sorted(s.failures.items())) or "none"
    out = [
        f"schemathesis [{name}]: {s.operations} operations, {s.cases} test cases in {seconds:.0f} s; "
        f"answers {classes}; {len(s.reached_2xx)} operations answered 2xx; failures: {fails}"
    ]
    for label in sorted(s.failed):
        for check, statuses in sorted(s.failed[label].items()):
            codes = ", ".join(str(c) for c in sorted(x for x in statuses if x is not None))
            out.append(f"  {label}: {check} ({codes})")
    return "\n".join(out)


# --- I/O: the stack, koppel-admin and schemathesis -------------------------------------


class Stack:
    def __init__(self, base_url: str, admin: str):
        self.base_url = base_url.rstrip("/")
        self.admin_bin = admin

    def admin(self, *args: str) -> dict:
        out = subprocess.run([self.admin_bin, "--json", *args], check=True, capture_output=True, text=True)
        return json.loads(out.stdout)

    def call(self, auth: str, method: str, path: str, body: dict | None = None) -> tuple[int, object]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Authorization", auth)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        try:
            return status, json.loads(raw or b"null")
        except ValueError:
            return status, None

    def ids(self, auth: str, path: str, key: str = "id") -> list[str]:
        status, body = self.call(auth, "GET", path)
        if status != 200 or not isinstance(body, dict):
            return []
        return [str(i[key]) for i in body.get("items", []) if isinstance(i, dict) and key in i][:20]


def credential_id(secret: str) -> str:
    """`kpl_pat_<id>_<secret>` → `<id>`."""
    parts = secret.split("_")
    return parts[2] if len(parts) >= 4 else ""


def prepare(stack: Stack, demo: dict) -> list[Run]:
    ws = demo["workspace_id"]
    owner = demo["users"]["owner"]["id"]
    reader = demo["users"]["reader"]
    con = demo["connector"]["id"]
    pat = stack.admin(
        "credential", "issue-pat", "--workspace", ws, "--user", owner,
        "--name", "schemathesis", "--rate-limit", RATE_LIMIT,
    )["secret"]
    token = stack.admin(
        "credential", "issue-token", "--workspace", ws, "--connector", con,
        "--name", "schemathesis", "--rate-limit", RATE_LIMIT,
    )["secret"]
    # Revoked by `DELETE /v1/tokens/{id}` rather than the run's own.
    spare = stack.admin("credential", "issue-pat", "--workspace", ws, "--user", owner, "--name", "schemathesis spare")["id"]
    scratch = stack.admin(
        "connector", "create", "--workspace", ws, "--description", "schemathesis scratch",
        "--acting-user", owner, "--access-level", "handle",
        *[a for s in demo["connector"]["scopes"] for a in ("--scope", s)],
    )["id"]
    stack.admin("credential", "issue-key", "--workspace", ws, "--connector", scratch, "--name", "schemathesis")
    as_pat, as_con = f"Bearer {pat}", f"Bearer {token}"

    hook = {"url": "https://127.0.0.1:9/koppel-schemathesis", "event_types": ["case.updated"]}
    for auth, c in ((as_con, con), (as_pat, scratch)):
        status, body = stack.call(auth, "POST", f"/v1/connectors/{c}/subscriptions", hook)
        if status < 300 and isinstance(body, dict) and "id" in body:
            stack.call(auth, "POST", f"/v1/connectors/{c}/subscriptions/{body['id']}/ping")
    dsr_path = f"/v1/ws/{ws}/DataSubjectRequests"
    if not stack.ids(as_con, dsr_path + "?size=1"):
        stack.call(as_con, "POST", dsr_path, {"purposes": ["Access"]})

    def connector_fixtures(auth: str, c: str) -> dict[str, list[str]]:
        subs = stack.ids(auth, f"/v1/connectors/{c}/subscriptions")
        deliveries = [d for s in subs[:3] for d in stack.ids(auth, f"/v1/connectors/{c}/subscriptions/{s}/deliveries")]
        return {
            "connector": [c],
            "credential": stack.ids(as_pat, f"/v1/connectors/{c}/credentials"),
            "subscription": subs,
            "delivery": deliveries,
            "certificate": stack.ids(auth, f"/v1/connectors/{c}/certificates", "fingerprint"),
        }

    common = {
        "workspace": [ws],
        "case": stack.ids(as_con, "/v1/cases?limit=20"),
        "dsr": stack.ids(as_con, dsr_path + "?size=20"),
        "endpoint": stack.ids(as_con, "/api/v1/endpoints"),
        "mandate": stack.ids(as_con, "/api/v1/mandates", "mandate_token"),
        "service_version": stack.ids(as_pat, "/api/v1/service-versions"),
        "saved_search": stack.ids(as_pat, "/v1/saved-searches"),
        "spare_token": [spare],
        "user": [reader["id"]],
        "user_token": [credential_id(reader["pat"])],
        "otp_token": stack.ids(as_con, "/v1/otp/tokens"),
    }
    return [
        Run("connector", as_con, CONNECTOR_PATHS, {**common, **connector_fixtures(as_con, con)}),
        Run("owner", as_pat, (), {**common, **connector_fixtures(as_pat, scratch)}),
    ]


def run_schemathesis(st: str, run: Run, document_path: str, base_url: str, out: str, max_examples: int, seed: int) -> tuple[Summary, float, int]:
    with open(document_path) as f:
        document = json.load(f)
    run_dir = os.path.join(out, run.name)
    os.makedirs(run_dir, exist_ok=True)
    for old in glob.glob(os.path.join(run_dir, "*.ndjson")):
        os.remove(old)
    config = os.path.join(run_dir, "schemathesis.toml")
    with open(config, "w") as f:
        f.write(render_config(run, document, max_examples, seed))
    ndjson = os.path.join(run_dir, "events.ndjson")
    cmd = [st, "--config-file", config, "--no-color", "run", document_path, "--url", base_url,
           "--checks", ",".join(CHECKS), "--report", "ndjson,junit", "--report-dir", run_dir,
           "--report-ndjson-path", ndjson, "--report-junit-path", os.path.join(run_dir, "junit.xml")]
    if run.paths:
        # The option takes one pattern (given twice, the last wins): an alternation.
        cmd += ["--include-path-regex", "|".join(f"(?:{p})" for p in run.paths)]
    started = time.monotonic()
    with open(os.path.join(run_dir, "output.txt"), "w") as log:
        # In the run's folder: schemathesis keeps a cache folder where it runs.
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=run_dir).returncode
    seconds = time.monotonic() - started
    events = []
    if os.path.exists(ndjson):
        with open(ndjson) as f:
            events = [json.loads(line) for line in f if line.strip()]
    return summarize(events), seconds, rc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--admin", required=True, help="the koppel-admin binary (its environment points at the stack)")
    ap.add_argument("--demo", required=True, help="the demo workspace's JSON (koppel-admin demo --out)")
    ap.add_argument("--out", required=True, type=os.path.abspath, help="folder for configs, reports and schemathesis's output")
    ap.add_argument("--results", help="append `schemathesis: pass N` / `schemathesis: fail N` (operations per run) here")
    ap.add_argument("--document", type=os.path.abspath, default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "openapi.json"))
    ap.add_argument("--schemathesis", default=os.path.join(os.path.dirname(sys.executable), "st"))
    ap.add_argument("--max-examples", type=int, default=int(os.environ.get("KOPPEL_SCHEMATHESIS_EXAMPLES", "10")))
    # Fixed by default so a CI failure can be replayed; another seed explores further.
    ap.add_argument("--seed", type=int, default=int(os.environ.get("KOPPEL_SCHEMATHESIS_SEED", "13")))
    args = ap.parse_args()

    with open(args.demo) as f:
        demo = json.load(f)
    stack = Stack(args.base_url, args.admin)
    started = time.monotonic()
    runs = prepare(stack, demo)
    ok = True
    passed = failed = 0
    for run in runs:
        s, seconds, rc = run_schemathesis(args.schemathesis, run, args.document, args.base_url, args.out, args.max_examples, args.seed)
        print(report(run.name, s, seconds))
        bad = {label for label in s.failed if re.match(r"^[A-Z]+ /", label)}
        passed += s.operations - len(bad)
        failed += len(bad)
        if rc != 0 or s.failures or s.cases == 0:
            ok = False
            failed += 0 if bad else 1
            print(f"  see {os.path.join(args.out, run.name, 'output.txt')} (exit {rc})")
    print(f"schemathesis: {'passed' if ok else 'FAILED'} in {time.monotonic() - started:.0f} s (seed {args.seed})")
    if args.results:
        with open(args.results, "a") as f:
            f.write(f"schemathesis: pass {passed}\nschemathesis: fail {failed}\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
