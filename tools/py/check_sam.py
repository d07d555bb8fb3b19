"""Translates template.yaml with AWS's own SAM translator (offline) and checks the result.

cfn-lint reads the SAM template as written; what CloudFormation deploys is the translation,
and some mistakes only show there (a `ResponseTransferMode` SAM does not know translates to
a plain buffered integration without a word). So this runs the translator `sam validate`
and CloudFormation use, and checks what comes out:

- every route of a streaming function (its runtime always answers in the streaming format)
  is a response-streaming integration, and every other route is not;
- every `Api` event of template.yaml is a path and method of the translated API;
- the authorizer is on every route except the public ones (the API's own documentation,
  PUBLIC_ROUTES), whose events say `Authorizer: NONE`; no other route may say so;
- least privilege: no function policy allows a wildcard action or resource, no managed
  policy beyond logs and traces, and the authorizer never scans, batch-writes or deletes;
- every `KOPPEL_*` setting of the functions is a stack output (koppel-admin reads them);
- every function logs JSON to its own log group, Lambda's platform lines at the
  `PlatformLogLevel` parameter and every application line passed on (Koppel filters its own);
- mutual TLS (seed 003): translated with the custom-domain parameters set, the stack has a
  domain with `MutualTlsAuthentication` on the given truststore (and its object version)
  and `SecurityPolicy: TLS_1_2`, mapped to the API, the API's execute-api endpoint is
  disabled (it has no mTLS, so it would bypass the check) and `ApiUrl` is the domain; with the parameters left empty there is no domain
  and execute-api stays on.

Usage: python check_sam.py [template.yaml] [--out translated.json]
Exits 1 naming every problem found; --out writes the translation (for cfn-lint).
"""

import copy
import json
import logging
import os
import re
import sys

from cfnlint.decode import cfn_yaml
from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform

# The translator's usage metrics go nowhere here; their "unpublished" warning is noise.
logging.getLogger("samtranslator.metrics").setLevel(logging.ERROR)

# Functions whose Lambda runtime streams (`lambda_http::run_with_streaming_response`).
STREAMING_FUNCTIONS = {"CasesFunction"}
AUTHORIZER_FUNCTION = "AuthorizeFunction"
# What a SAM-made role carries anyway: writing its own logs and traces.
ALLOWED_MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
}
AUTHORIZER_FORBIDDEN = {
    "dynamodb:Scan",
    "dynamodb:BatchWriteItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
}
# Shapes samtranslator writes (model/eventsources/push.py, swagger/swagger.py).
STREAMING_URI = "/2021-11-15/functions/${%s.Arn}/response-streaming-invocations"
BUFFERED_URI = "/2015-03-31/functions/${%s.Arn}/invocations"
# Served without a credential: the OpenAPI document and the /docs page with its assets
# (the tokens function). Any other route without the authorizer is a mistake.
PUBLIC_ROUTES = {
    ("TokensFunction", "/openapi.json", "get"),
    ("TokensFunction", "/docs", "get"),
    ("TokensFunction", "/docs/assets/docs.js", "get"),
    ("TokensFunction", "/docs/assets/docs.css", "get"),
}
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "x-amazon-apigateway-any-method"}


class OfflinePolicies(ManagedPolicyLoader):
    """Managed policy names resolve to their ARNs without asking IAM (as `sam validate`
    does with credentials): only the names the template uses need to be known."""

    def __init__(self):
        pass

    def load(self):
        names = ["AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess", "AWSLambdaSQSQueueExecutionRole"]
        return {n: f"arn:aws:iam::aws:policy/{n}" for n in names}


def load(path):
    """The template with long-form intrinsics, as CloudFormation receives it."""
    return json.loads(json.dumps(cfn_yaml.load(path)))


def translate(template, parameters=None):
    t = copy.deepcopy(template)
    # `sam build` replaces local code with an S3 location; the translator insists on one.
    for r in t.get("Resources", {}).values():
        if r.get("Type") == "AWS::Serverless::Function":
            r.setdefault("Properties", {})["CodeUri"] = "s3://bucket/key"
    # The translator fills AWS::Region in; no request leaves the machine.
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
    return transform(t, dict(parameters or {}), OfflinePolicies())


def declared_routes(template):
    """(function, path, method, authorized) of every `Api` event."""
    out = []
    for fid, r in template["Resources"].items():
        if r.get("Type") != "AWS::Serverless::Function":
            continue
        for ev in (r.get("Properties", {}).get("Events") or {}).values():
            if ev.get("Type") != "Api":
                continue
            p = ev.get("Properties", {})
            authorized = (p.get("Auth") or {}).get("Authorizer") != "NONE"
            out.append((fid, p["Path"], p["Method"].lower(), authorized))
    return out


def integration_uri(op):
    uri = op.get("x-amazon-apigateway-integration", {}).get("uri", {})
    return uri.get("Fn::Sub", "") if isinstance(uri, dict) else str(uri)


def check_routes(template, translated, problems):
    apis = [r for r in translated["Resources"].values() if r["Type"] == "AWS::ApiGateway::RestApi"]
    if len(apis) != 1:
        problems.append(f"expected one translated REST API, found {len(apis)}")
        return
    paths = apis[0]["Properties"]["Body"]["paths"]
    declared = declared_routes(template)
    if not declared:
        problems.append("template.yaml declares no Api events")
    for fid, path, method, authorized in declared:
        where = f"{method.upper()} {path} ({fid})"
        op = paths.get(path, {}).get(method)
        if op is None:
            problems.append(f"{where}: not in the translated API")
            continue
        integ = op.get("x-amazon-apigateway-integration", {})
        uri = integration_uri(op)
        if fid in STREAMING_FUNCTIONS:
            if STREAMING_URI % fid not in uri or integ.get("responseTransferMode") != "STREAM":
                problems.append(
                    f"{where}: not a response-streaming integration (uri {uri!r}, "
                    f"responseTransferMode {integ.get('responseTransferMode')!r}); "
                    "its event needs ResponseTransferMode: RESPONSE_STREAM"
                )
        elif BUFFERED_URI % fid not in uri or "responseTransferMode" in integ:
            problems.append(f"{where}: expected a buffered integration of {fid}, got {uri!r}")
        security = [name for s in op.get("security", []) for name in s]
        if authorized and security != ["KoppelAuthorizer"]:
            problems.append(f"{where}: authorizer KoppelAuthorizer not attached (security {security})")
        if not authorized and (fid, path, method) not in PUBLIC_ROUTES:
            problems.append(f"{where}: Authorizer: NONE, but only the documentation routes are public")
        if not authorized and "KoppelAuthorizer" in security:
            problems.append(f"{where}: a public route, yet the authorizer is attached")
        if authorized and (fid, path, method) in PUBLIC_ROUTES:
            problems.append(f"{where}: a documentation route behind the authorizer (needs Auth: {{Authorizer: NONE}})")
    known = {(p, m) for _, p, m, _ in declared}
    for path, item in paths.items():
        for method in item:
            if method in HTTP_METHODS and (path, method) not in known:
                problems.append(f"{method.upper()} {path}: in the translated API but no Api event declares it")


def as_list(v):
    return v if isinstance(v, list) else [v]


def has_wildcard(v):
    """A `*` in a literal, or in the text of a Fn::Sub (`${Table.Arn}/index/*`)."""
    if isinstance(v, str):
        return "*" in v
    if isinstance(v, dict) and "Fn::Sub" in v:
        sub = v["Fn::Sub"]
        return has_wildcard(sub if isinstance(sub, str) else sub[0])
    return False


def function_roles(translated):
    """(function id, role id) of every Lambda function."""
    for fid, r in translated["Resources"].items():
        if r["Type"] != "AWS::Lambda::Function":
            continue
        role = r["Properties"].get("Role", {})
        att = role.get("Fn::GetAtt") if isinstance(role, dict) else None
        yield fid, (att[0] if att else None)


def check_policies(translated, problems):
    res = translated["Resources"]
    for fid, role_id in function_roles(translated):
        if role_id is None or role_id not in res:
            problems.append(f"{fid}: its role is not a role of this stack")
            continue
        props = res[role_id]["Properties"]
        for arn in props.get("ManagedPolicyArns", []):
            text = arn.get("Fn::Sub", "").replace("${AWS::Partition}", "aws") if isinstance(arn, dict) else arn
            if text not in ALLOWED_MANAGED_POLICIES:
                problems.append(f"{fid}: managed policy {text or arn} (write what it needs inline)")
        actions = set()
        for pol in props.get("Policies", []):
            for st in as_list(pol["PolicyDocument"].get("Statement", [])):
                name = pol["PolicyName"]
                if st.get("Effect") != "Allow":
                    continue
                if "NotAction" in st or "NotResource" in st:
                    problems.append(f"{fid}: {name} uses NotAction/NotResource")
                for a in as_list(st.get("Action", [])):
                    actions.add(a)
                    if "*" in a:
                        problems.append(f"{fid}: {name} allows the wildcard action {a}")
                for r in as_list(st.get("Resource", [])):
                    if has_wildcard(r):
                        problems.append(f"{fid}: {name} allows {', '.join(as_list(st['Action']))} on the wildcard resource {json.dumps(r)}")
        if fid == AUTHORIZER_FUNCTION:
            for a in sorted(actions & AUTHORIZER_FORBIDDEN):
                problems.append(f"{fid}: the authorizer is allowed {a}")


def check_logging(translated, problems):
    for fid, r in translated["Resources"].items():
        if r.get("Type") != "AWS::Lambda::Function":
            continue
        cfg = r["Properties"].get("LoggingConfig") or {}
        if cfg.get("LogFormat") != "JSON":
            problems.append(f"{fid}: LogFormat is {cfg.get('LogFormat')!r}, not JSON (no level filtering)")
        if cfg.get("SystemLogLevel") != {"Ref": "PlatformLogLevel"}:
            problems.append(f"{fid}: SystemLogLevel is {cfg.get('SystemLogLevel')!r}, not the PlatformLogLevel parameter")
        if cfg.get("ApplicationLogLevel") != "TRACE":
            problems.append(f"{fid}: ApplicationLogLevel {cfg.get('ApplicationLogLevel')!r} would drop lines RUST_LOG lets through")
        if "LogGroup" not in cfg:
            problems.append(f"{fid}: no log group of its own (retention would be unbounded)")


def check_outputs(template, problems):
    env = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    outputs = {o.get("Description") for o in template.get("Outputs", {}).values()}
    for k in env:
        if k.startswith("KOPPEL_") and k not in outputs:
            problems.append(f"setting {k}: no stack output has it as its Description (koppel-admin reads it)")


# A deployment with the custom domain and mutual TLS on.
MTLS_PARAMETERS = {
    "CustomDomainName": "api.koppel.example.nl",
    "CustomDomainCertificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/0000",
    "MutualTlsTruststoreUri": "s3://koppel-truststore/pkioverheid.pem",
    "MutualTlsTruststoreVersion": "3sL4kqtJlcpXroDTDmJ-rmSpXd3dIbrH",
}


def evaluate(v, params, conditions):
    """`v` with `Ref` to parameters, `Fn::If` and the condition functions worked out, as
    CloudFormation would for these parameter values (anything else is kept as is)."""
    if isinstance(v, list):
        return [evaluate(x, params, conditions) for x in v]
    if not isinstance(v, dict):
        return v
    if len(v) == 1:
        (k, arg), = v.items()
        if k == "Ref" and arg in params:
            return params[arg]
        if k == "Condition":
            return condition(arg, params, conditions)
        if k == "Fn::If":
            name, yes, no = arg
            return evaluate(yes if condition(name, params, conditions) else no, params, conditions)
        if k == "Fn::Equals":
            a, b = evaluate(arg, params, conditions)
            return a == b
        if k == "Fn::Not":
            return not evaluate(arg[0], params, conditions)
        if k == "Fn::And":
            return all(evaluate(arg, params, conditions))
        if k == "Fn::Or":
            return any(evaluate(arg, params, conditions))
        if k == "Fn::Sub" and isinstance(arg, str):
            return re.sub(r"\$\{([^}]+)\}", lambda m: params.get(m.group(1), m.group(0)), arg)
    return {k: evaluate(x, params, conditions) for k, x in v.items()}


def condition(name, params, conditions):
    return bool(evaluate(conditions[name], params, conditions))


def deployed(template, parameters, section="Resources"):
    """The translated resources (or outputs) CloudFormation would create with `parameters`
    (over the defaults), their properties evaluated."""
    params = {k: str(p.get("Default", "")) for k, p in template.get("Parameters", {}).items()}
    params.update(parameters)
    translated = translate(template, parameters)
    conditions = translated.get("Conditions", {})
    return {
        rid: evaluate(r, params, conditions)
        for rid, r in translated.get(section, {}).items()
        if "Condition" not in r or condition(r["Condition"], params, conditions)
    }


def execute_api_disabled(api):
    props = api["Properties"]
    body = props.get("Body", {}).get("x-amazon-apigateway-endpoint-configuration", {})
    return props.get("DisableExecuteApiEndpoint", body.get("disableExecuteApiEndpoint")) is True


def check_mutual_tls(template, problems):
    on = deployed(template, MTLS_PARAMETERS)
    domains = {rid: r for rid, r in on.items() if r["Type"] == "AWS::ApiGateway::DomainName"}
    apis = {rid: r for rid, r in on.items() if r["Type"] == "AWS::ApiGateway::RestApi"}
    mapped = {
        (r["Properties"].get("DomainName", {}).get("Ref"), r["Properties"].get("RestApiId", {}).get("Ref"))
        for r in on.values()
        if r["Type"] in ("AWS::ApiGateway::BasePathMapping", "AWS::ApiGateway::BasePathMappingV2")
    }
    if not domains:
        problems.append("mutual TLS: with the custom-domain parameters set, no AWS::ApiGateway::DomainName")
    for rid, d in domains.items():
        p = d["Properties"]
        truststore = (p.get("MutualTlsAuthentication") or {}).get("TruststoreUri")
        if truststore != MTLS_PARAMETERS["MutualTlsTruststoreUri"]:
            problems.append(f"mutual TLS: domain {rid} has no MutualTlsAuthentication on the truststore parameter (got {truststore!r})")
        version = (p.get("MutualTlsAuthentication") or {}).get("TruststoreVersion")
        if version != MTLS_PARAMETERS["MutualTlsTruststoreVersion"]:
            problems.append(f"mutual TLS: domain {rid}'s truststore version is not the parameter's (got {version!r}): new roots would never be read")
        if p.get("SecurityPolicy") != "TLS_1_2":
            problems.append(f"mutual TLS: domain {rid} has SecurityPolicy {p.get('SecurityPolicy')!r}, not TLS_1_2")
        if not any((rid, api) in mapped for api in apis):
            problems.append(f"mutual TLS: domain {rid} is not mapped to the API")
    for rid, api in apis.items():
        if not execute_api_disabled(api):
            problems.append(f"mutual TLS: with the custom domain on, {rid}'s execute-api endpoint is not disabled (it bypasses the certificate check)")
    url = deployed(template, MTLS_PARAMETERS, "Outputs").get("ApiUrl", {}).get("Value")
    if url != f"https://{MTLS_PARAMETERS['CustomDomainName']}":
        problems.append(f"mutual TLS: the ApiUrl output is {url!r}, not the custom domain (execute-api is off)")
    off = deployed(template, {})
    if any(r["Type"] == "AWS::ApiGateway::DomainName" for r in off.values()):
        problems.append("mutual TLS: with the custom-domain parameters empty, a domain is still created")
    for rid, api in off.items():
        if api["Type"] == "AWS::ApiGateway::RestApi" and execute_api_disabled(api):
            problems.append(f"mutual TLS: without a custom domain, {rid}'s execute-api endpoint is disabled (nothing would serve the API)")


def check(template, translated):
    problems = []
    check_routes(template, translated, problems)
    check_policies(translated, problems)
    check_logging(translated, problems)
    check_outputs(template, problems)
    check_mutual_tls(template, problems)
    return problems


def main(argv):
    args = argv[1:]
    out = None
    if "--out" in args:
        i = args.index("--out")
        out = args[i + 1]
        del args[i : i + 2]
    path = args[0] if args else "template.yaml"
    template = load(path)
    translated = translate(template)
    if out:
        with open(out, "w") as f:
            json.dump(translated, f, indent=1)
    problems = check(template, translated)
    for p in problems:
        print(f"check_sam: {path}: {p}", file=sys.stderr)
    if problems:
        print(f"check_sam: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"check_sam: {path} translates; routes, streaming, authorizer, policies, logging, outputs and mutual TLS are as required")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
