"""check_sam.py catches each mistake it is there for: every test breaks template.yaml in one
way, translates it as the real check does, and expects that problem to be named.

Usage: python -m unittest tools/py/test_check_sam.py   (from the repository root)
"""

import copy
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import check_sam  # noqa: E402

TEMPLATE = os.path.join(os.path.dirname(__file__), "..", "..", "template.yaml")


class CheckSam(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.template = check_sam.load(TEMPLATE)

    def problems(self, change=None):
        t = copy.deepcopy(self.template)
        if change:
            change(t)
        return check_sam.check(t, check_sam.translate(t))

    def assert_named(self, change, *fragments):
        found = self.problems(change)
        for f in fragments:
            self.assertTrue(any(f in p for p in found), f"{f!r} not in {found}")

    def fn(self, t, name):
        return t["Resources"][name]["Properties"]

    def test_template_as_it_is_passes(self):
        self.assertEqual(self.problems(), [])

    def test_stream_is_not_a_transfer_mode(self):
        def change(t):
            self.fn(t, "CasesFunction")["Events"]["Api2Csv"]["Properties"]["ResponseTransferMode"] = "STREAM"

        self.assert_named(change, "GET /app/api2csv (CasesFunction): not a response-streaming integration")

    def test_a_buffered_function_must_not_stream(self):
        def change(t):
            self.fn(t, "TokensFunction")["Events"]["Me"]["Properties"]["ResponseTransferMode"] = "RESPONSE_STREAM"

        self.assert_named(change, "GET /v1/me (TokensFunction): expected a buffered integration")

    def test_a_route_without_the_authorizer(self):
        def change(t):
            self.fn(t, "TokensFunction")["Events"]["Me"]["Properties"]["Auth"] = {"Authorizer": "NONE"}

        # Only the documentation routes may be public.
        self.assert_named(change, "GET /v1/me (TokensFunction): Authorizer: NONE, but only the documentation routes are public")

        def docs_behind_authorizer(t):
            del self.fn(t, "TokensFunction")["Events"]["Docs"]["Properties"]["Auth"]

        self.assert_named(docs_behind_authorizer, "GET /docs (TokensFunction): a documentation route behind the authorizer")

        def no_default(t):
            del t["Resources"]["KoppelApi"]["Properties"]["Auth"]["DefaultAuthorizer"]
            # `Authorizer: NONE` translates only beside a default authorizer.
            for ev in self.fn(t, "TokensFunction")["Events"].values():
                ev["Properties"].pop("Auth", None)

        self.assert_named(no_default, "GET /v1/me (TokensFunction): authorizer KoppelAuthorizer not attached")

    def test_wildcards_and_broad_policies(self):
        def crud(t):
            self.fn(t, "DsrFunction")["Policies"] = [{"DynamoDBCrudPolicy": {"TableName": {"Ref": "KoppelTable"}}}]

        self.assert_named(crud, "DsrFunction: DsrFunctionRolePolicy0 allows", "wildcard resource")

        def star(t):
            self.fn(t, "EndpointsFunction")["Policies"][0]["Statement"][0]["Action"] = "dynamodb:*"

        self.assert_named(star, "EndpointsFunction: EndpointsFunctionRolePolicy0 allows the wildcard action dynamodb:*")

        def everything(t):
            self.fn(t, "EndpointsFunction")["Policies"][0]["Statement"][0]["Resource"] = "*"

        self.assert_named(everything, 'on the wildcard resource "*"')

        def sam_role(t):
            props = self.fn(t, "WebhookDispatchFunction")
            del props["Role"]

        self.assert_named(sam_role, "WebhookDispatchFunction: managed policy arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole")

    def test_the_authorizer_never_scans_or_batch_writes(self):
        def scan(t):
            st = self.fn(t, "AuthorizeFunction")["Policies"][0]["Statement"][0]
            st["Action"] = st["Action"] + ["dynamodb:Scan", "dynamodb:BatchWriteItem"]

        self.assert_named(scan, "the authorizer is allowed dynamodb:Scan", "the authorizer is allowed dynamodb:BatchWriteItem")

    def test_every_function_logs_json_at_the_platform_level(self):
        def change(t):
            self.fn(t, "TokensFunction")["LoggingConfig"]["LogFormat"] = "Text"
            del t["Globals"]["Function"]["LoggingConfig"]["SystemLogLevel"]

        self.assert_named(change, "TokensFunction: LogFormat is 'Text'", "CasesFunction: SystemLogLevel is None")

    def test_every_setting_is_an_output(self):
        def drop(t):
            del t["Outputs"]["Table"]

        self.assert_named(drop, "setting KOPPEL_TABLE: no stack output")

    def test_the_custom_domain_has_mutual_tls_at_tls_1_2(self):
        def no_mtls(t):
            del self.fn(t, "ApiDomain")["MutualTlsAuthentication"]

        self.assert_named(no_mtls, "domain ApiDomain has no MutualTlsAuthentication on the truststore parameter")

        def old_tls(t):
            self.fn(t, "ApiDomain")["SecurityPolicy"] = "TLS_1_0"

        self.assert_named(old_tls, "domain ApiDomain has SecurityPolicy 'TLS_1_0', not TLS_1_2")

        def unmapped(t):
            del t["Resources"]["ApiDomainMapping"]

        self.assert_named(unmapped, "domain ApiDomain is not mapped to the API")

        def no_domain(t):
            del t["Resources"]["ApiDomainMapping"]
            del t["Resources"]["ApiDomain"]

        self.assert_named(no_domain, "with the custom-domain parameters set, no AWS::ApiGateway::DomainName")

        def always(t):
            t["Resources"]["ApiDomain"].pop("Condition")
            t["Resources"]["ApiDomainMapping"].pop("Condition")

        self.assert_named(always, "with the custom-domain parameters empty, a domain is still created")

    def test_execute_api_is_off_exactly_when_mutual_tls_is_on(self):
        def left_on(t):
            del self.fn(t, "KoppelApi")["DisableExecuteApiEndpoint"]

        self.assert_named(left_on, "KoppelApi's execute-api endpoint is not disabled (it bypasses the certificate check)")

        def always_off(t):
            self.fn(t, "KoppelApi")["DisableExecuteApiEndpoint"] = True

        self.assert_named(always_off, "without a custom domain, KoppelApi's execute-api endpoint is disabled")


if __name__ == "__main__":
    unittest.main()
