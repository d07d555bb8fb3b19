"""Unit tests of contract_test.py's pure parts: which real id a path parameter takes, the
schemathesis config written for a run, and the summary read from its events."""

import os
import sys
import tomllib
import unittest

sys.path.insert(0, os.path.dirname(__file__))

import contract_test as ct  # noqa: E402

DOCUMENT = {
    "paths": {
        "/v1/me": {},
        "/v1/cases/{id}": {},
        "/v1/cases/{id}/history": {},
        "/v1/ws/{workspaceId}/DataSubjectRequests": {},
        "/v1/ws/{workspaceId}/DataSubjectRequests/{id}": {},
        "/v1/connectors/{id}/subscriptions/{subscriptionId}/deliveries/{deliveryId}": {},
        "/v1/users/{id}/tokens/{tokenId}": {},
        "/v1/things/{thingId}": {},
    }
}


class Bindings(unittest.TestCase):
    def test_each_parameter_takes_the_fixture_of_its_resource(self):
        self.assertEqual(ct.bindings("/v1/cases/{id}/history"), {"id": "case"})
        self.assertEqual(
            ct.bindings("/v1/ws/{workspaceId}/DataSubjectRequests/{id}"),
            {"workspaceId": "workspace", "id": "dsr"},
        )
        # The list route's workspace is not a DSR id.
        self.assertEqual(ct.bindings("/v1/ws/{workspaceId}/DataSubjectRequests"), {"workspaceId": "workspace"})
        self.assertEqual(
            ct.bindings("/v1/connectors/{id}/subscriptions/{subscriptionId}/deliveries/{deliveryId}"),
            {"id": "connector", "subscriptionId": "subscription", "deliveryId": "delivery"},
        )
        self.assertEqual(ct.bindings("/v1/users/{id}/tokens/{tokenId}"), {"id": "user", "tokenId": "user_token"})
        # A path nothing knows keeps generated values only.
        self.assertEqual(ct.bindings("/v1/things/{thingId}"), {})
        self.assertEqual(ct.bindings("/v1/me"), {})

    def test_every_routed_parameter_of_the_committed_document_is_bound(self):
        # A new route with a path parameter needs a rule (or it only ever answers 404).
        import json

        with open(os.path.join(os.path.dirname(__file__), "..", "..", "openapi.json")) as f:
            doc = json.load(f)
        for path in doc["paths"]:
            self.assertEqual(set(ct.bindings(path)), set(ct.path_params(path)), path)

    def test_connector_paths_are_the_partner_operations(self):
        self.assertTrue(ct.covered(ct.CONNECTOR_PATHS, "/v1/cases/{id}"))
        self.assertTrue(ct.covered(ct.CONNECTOR_PATHS, "/api/v1/endpoints"))
        self.assertFalse(ct.covered(ct.CONNECTOR_PATHS, "/v1/connectors/{id}"))
        self.assertFalse(ct.covered(ct.CONNECTOR_PATHS, "/v1/users"))
        self.assertTrue(ct.covered((), "/v1/users"))


class Config(unittest.TestCase):
    def test_the_config_binds_real_ids_with_a_probability(self):
        run = ct.Run(
            "connector",
            'Bearer kpl_ct_x_"y"',
            (r"^/v1/cases", r"^/v1/ws/"),
            {"case": ["1", "2"], "workspace": ["ws_1"], "dsr": [], "connector": ["con_1"]},
        )
        cfg = tomllib.loads(ct.render_config(run, DOCUMENT, 7, 42))
        self.assertEqual(cfg["workers"], 1)
        self.assertEqual(cfg["seed"], 42)
        self.assertEqual(cfg["generation"]["max-examples"], 7)
        # The quote in the credential survives TOML.
        self.assertEqual(cfg["headers"]["Authorization"], 'Bearer kpl_ct_x_"y"')
        self.assertEqual(cfg["dictionaries"]["case"]["values"], ["1", "2"])
        # An empty fixture (no DSR yet) and fixtures of uncovered paths are left out.
        self.assertNotIn("dsr", cfg["dictionaries"])
        self.assertNotIn("connector", cfg["dictionaries"])
        ops = {o["include-path"]: o["parameters"] for o in cfg["operations"]}
        self.assertEqual(
            set(ops),
            {
                "/v1/cases/{id}",
                "/v1/cases/{id}/history",
                "/v1/ws/{workspaceId}/DataSubjectRequests",
                "/v1/ws/{workspaceId}/DataSubjectRequests/{id}",
            },
        )
        self.assertEqual(ops["/v1/cases/{id}"]["path.id"], {"dictionary": "case", "probability": 0.8})
        self.assertEqual(set(ops["/v1/ws/{workspaceId}/DataSubjectRequests/{id}"]), {"path.workspaceId"})
        self.assertFalse(cfg["generation"]["with-security-parameters"])

    def test_ids_that_could_revoke_the_run_itself_are_pinned(self):
        run = ct.Run("owner", "Bearer t", (), {"user": ["usr_r"], "user_token": ["tok_r"], "case": ["1"]})
        cfg = tomllib.loads(ct.render_config(run, DOCUMENT, 5, 1))
        ops = {o["include-path"]: o["parameters"] for o in cfg["operations"]}
        self.assertEqual(ops["/v1/users/{id}/tokens/{tokenId}"]["path.tokenId"]["probability"], 1.0)
        self.assertEqual(ops["/v1/users/{id}/tokens/{tokenId}"]["path.id"]["probability"], 1.0)
        self.assertEqual(ops["/v1/cases/{id}"]["path.id"]["probability"], 0.8)

    def test_secret_ids(self):
        self.assertEqual(ct.credential_id("kpl_pat_abc123_SeCrEt"), "abc123")
        self.assertEqual(ct.credential_id("garbage"), "")


def scenario(label, cases):
    """A ScenarioFinished event: `cases` maps a case id to (status or None, {check: ok})."""
    return {
        "ScenarioFinished": {
            "recorder": {
                "label": label,
                "cases": {cid: {} for cid in cases},
                "interactions": {
                    cid: ({"response": {"status_code": st}} if st is not None else {"response": None})
                    for cid, (st, _) in cases.items()
                },
                "checks": {
                    cid: [{"name": n, "status": "success" if ok else "failure"} for n, ok in checks.items()]
                    for cid, (_, checks) in cases.items()
                },
            }
        }
    }


class Summarize(unittest.TestCase):
    def test_counts_cases_answers_and_failures(self):
        events = [
            {"Initialize": {}},
            scenario("GET /v1/me", {"a": (200, {"not_a_server_error": True})}),
            scenario(
                "POST /v1/cases",
                {
                    "b": (500, {"not_a_server_error": False, "status_code_conformance": False}),
                    "c": (415, {"status_code_conformance": False}),
                    "d": (None, {}),
                },
            ),
            scenario("GET /v1/me -> POST /v1/cases", {"e": (201, {"not_a_server_error": True})}),
            # A skipped scenario has no cases and counts for nothing.
            {"ScenarioFinished": {"recorder": {"label": "GET /v1/users"}}},
        ]
        s = ct.summarize(events)
        self.assertEqual(s.operations, 2)
        self.assertEqual(s.cases, 5)
        self.assertEqual(dict(s.by_class), {"2xx": 2, "5xx": 1, "4xx": 1, "no answer": 1})
        self.assertEqual(dict(s.failures), {"not_a_server_error": 1, "status_code_conformance": 2})
        self.assertEqual(s.failed["POST /v1/cases"]["status_code_conformance"], {500, 415})
        text = ct.report("x", s, 3.2)
        self.assertIn("2 operations, 5 test cases in 3 s", text)
        self.assertIn("POST /v1/cases: status_code_conformance (415, 500)", text)

    def test_no_events_is_no_cases(self):
        s = ct.summarize([])
        self.assertEqual((s.operations, s.cases), (0, 0))


if __name__ == "__main__":
    unittest.main()
