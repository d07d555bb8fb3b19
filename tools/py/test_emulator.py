"""The emulator's DynamoDB transactions (tools/py/emulator.py): a cancelled one leaves the
table exactly as it was, a committed one applies, and neither copies the whole table."""

import copy
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))

import boto3  # noqa: E402
import emulator  # noqa: E402
from moto import mock_aws  # noqa: E402
from moto.dynamodb.models.table import Table  # noqa: E402

emulator.install()


def s(v):
    return {"S": v}


class Transactions(unittest.TestCase):
    def setUp(self):
        self.mock = mock_aws()
        self.mock.start()
        self.db = boto3.client("dynamodb", region_name="eu-west-1")
        self.db.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for i in range(50):
            self.db.put_item(TableName="t", Item={"pk": s("WS#1"), "sk": s(f"ITEM#{i:03}"), "v": {"N": "1"}, "tags": {"SS": ["a"]}})

    def tearDown(self):
        self.mock.stop()

    def table(self):
        items, start = [], None
        while True:
            page = self.db.scan(TableName="t", **({"ExclusiveStartKey": start} if start else {}))
            items += page["Items"]
            start = page.get("LastEvaluatedKey")
            if not start:
                return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))

    def key(self, n):
        return {"pk": s("WS#1"), "sk": s(f"ITEM#{n:03}")}

    def test_a_cancelled_transaction_leaves_the_table_as_it_was(self):
        before = self.table()
        steps = [
            {"Update": {"TableName": "t", "Key": self.key(1), "UpdateExpression": "SET v = :v ADD tags :t",
                        "ExpressionAttributeValues": {":v": {"N": "2"}, ":t": {"SS": ["b"]}}}},
            {"Put": {"TableName": "t", "Item": {**self.key(2), "v": {"N": "9"}}}},
            {"Put": {"TableName": "t", "Item": {**self.key(900), "v": {"N": "9"}}}},
            {"Delete": {"TableName": "t", "Key": self.key(3)}},
            # Fails last, after every other step was applied.
            {"ConditionCheck": {"TableName": "t", "Key": self.key(4), "ConditionExpression": "attribute_not_exists(pk)"}},
        ]
        with self.assertRaises(self.db.exceptions.TransactionCanceledException) as e:
            self.db.transact_write_items(TransactItems=steps)
        reasons = [r["Code"] for r in e.exception.response["CancellationReasons"]]
        self.assertEqual(reasons, ["None", "None", "None", "None", "ConditionalCheckFailed"])
        self.assertEqual(self.table(), before)

    def test_an_item_named_twice_cancels_and_changes_nothing(self):
        before = self.table()
        steps = [
            {"Update": {"TableName": "t", "Key": self.key(5), "UpdateExpression": "SET v = :v",
                        "ExpressionAttributeValues": {":v": {"N": "7"}}}},
            {"Delete": {"TableName": "t", "Key": self.key(5)}},
        ]
        with self.assertRaises(Exception):
            self.db.transact_write_items(TransactItems=steps)
        self.assertEqual(self.table(), before)

    def test_a_committed_transaction_applies_without_copying_the_table(self):
        copied = []
        real = copy.deepcopy

        def counting(x, memo=None):
            if isinstance(x, Table):
                copied.append(x)
            return real(x, memo)

        copy.deepcopy = counting
        try:
            self.db.transact_write_items(TransactItems=[
                {"Update": {"TableName": "t", "Key": self.key(1), "UpdateExpression": "SET v = :v",
                            "ExpressionAttributeValues": {":v": {"N": "2"}}}},
                {"Delete": {"TableName": "t", "Key": self.key(3)}},
            ])
        finally:
            copy.deepcopy = real
        self.assertEqual(copied, [], "a table was deep-copied")
        items = {i["sk"]["S"]: i for i in self.table()}
        self.assertEqual(items["ITEM#001"]["v"], {"N": "2"})
        self.assertNotIn("ITEM#003", items)
        self.assertEqual(len(items), 49)


if __name__ == "__main__":
    unittest.main()


class Mail(unittest.TestCase):
    def setUp(self):
        self.mock = mock_aws()
        self.mock.start()
        self.ses = boto3.client("sesv2", region_name="eu-west-1")
        self.ses.create_email_identity(EmailIdentity="noreply@koppel.example")

    def tearDown(self):
        self.mock.stop()

    def send(self, to, subject):
        self.ses.send_email(
            FromEmailAddress="noreply@koppel.example",
            Destination={"ToAddresses": [to]},
            Content={"Simple": {"Subject": {"Data": subject}, "Body": {"Text": {"Data": "Code: 123456"}}}},
        )

    def test_sent_mail_is_listed_newest_first_and_by_recipient(self):
        self.send("a@example.org", "first")
        self.send("B@example.org", "second")
        self.assertEqual([m["subject"] for m in emulator.sent_mail()], ["second", "first"])
        only = emulator.sent_mail("b@example.org")
        self.assertEqual([m["to"] for m in only], [["B@example.org"]])
        self.assertIn("123456", only[0]["body"])
        self.assertEqual(emulator.sent_mail("nobody@example.org"), [])

