"""The local AWS emulator: moto's server, with two fixes to its DynamoDB.

- Requests are handled one at a time. moto runs each request in its own thread and does not
  isolate DynamoDB transactions from each other, so concurrent conditional writes can
  interleave (a transaction applied but reported cancelled, or an internal error). Real
  DynamoDB serialises them. SQS, Secrets Manager and SES stay concurrent, so long polls do
  not block anything.
- A transaction backs up only the items it touches. moto deep-copies every table a
  transaction names, once per item, to roll back on failure: with Koppel's single table
  every write copied the whole table, so the local stack slowed and grew to many GB as data
  grew. The items are copied before and put back on any failure instead.

It also answers `GET /koppel/mail[?to=ADDRESS]`: the mail SES has "sent", newest first, as
JSON, for reading locally without dumping every table through `/moto-api/data.json`
(which takes minutes on a busy emulator).

Usage: python emulator.py -H 127.0.0.1 -p PORT   (the arguments of moto_server)
"""

import copy
import json
import sys
import threading
from urllib.parse import parse_qs

import moto.dynamodb.models as dynamodb
from moto import server
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table

_dynamodb = threading.Lock()


class SerialisedDynamoDB:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            with _dynamodb:
                # The whole response is produced inside the lock.
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)


class _CopyButNotTables:
    """The `copy` module as moto's DynamoDB backend sees it: a `Table` is not copied (its
    transaction's whole-table backup becomes the table itself, so its rollback is a no-op;
    `transact_write_items` below restores the touched items instead). Everything else is
    the real module."""

    def deepcopy(self, x, memo=None):
        return x if isinstance(x, Table) else copy.deepcopy(x, memo)

    def __getattr__(self, name):
        return getattr(copy, name)


def _touched(backend, transact_items):
    """(table, hash key, range key, copy of the item or None) for every item named."""
    saved = []
    for entry in transact_items:
        for op_type, op in entry.items():
            table = backend.tables.get(op.get("TableName"))
            attrs = op.get("Item") if op_type == "Put" else op.get("Key")
            if table is None or not isinstance(attrs, dict):
                continue
            try:
                h = DynamoType(attrs[table.hash_key_attr])
                r = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
                item = table.get_item(h, r)
            except Exception:  # a malformed key: moto refuses the transaction itself
                continue
            saved.append((table, h, r, copy.deepcopy(item)))
    return saved


def _restore(saved):
    # Backwards, so an item named twice ends as it was first.
    for table, h, r, item in reversed(saved):
        if item is None:
            if r is None:
                table.items.pop(h, None)
            else:
                table.items.get(h, {}).pop(r, None)
        elif r is None:
            table.items[h] = item
        else:
            table.items[h][r] = item


_transact_write_items = dynamodb.DynamoDBBackend.transact_write_items


def transact_write_items(self, transact_items):
    saved = _touched(self, transact_items)
    try:
        return _transact_write_items(self, transact_items)
    except BaseException:
        _restore(saved)
        raise


def install():
    dynamodb.copy = _CopyButNotTables()
    dynamodb.DynamoDBBackend.transact_write_items = transact_write_items


def sent_mail(to=None):
    """Every message SES (v1 or v2) has sent, newest first, optionally only those to `to`."""
    from moto.ses.models import ses_backends

    out = []
    for account, regions in ses_backends.items():
        for region, backend in regions.items():
            for m in backend.sent_messages:
                dest = getattr(m, "destinations", {}) or {}
                if isinstance(dest, list):
                    dest = {"ToAddresses": dest}
                recipients = [a for k in ("ToAddresses", "CcAddresses", "BccAddresses") for a in dest.get(k, [])]
                if to and to.lower() not in (a.lower() for a in recipients):
                    continue
                out.append({
                    "id": m.id,
                    "region": region,
                    "from": m.source,
                    "to": dest.get("ToAddresses", []),
                    "cc": dest.get("CcAddresses", []),
                    "bcc": dest.get("BccAddresses", []),
                    "subject": getattr(m, "subject", None),
                    "body": getattr(m, "body", None) or getattr(m, "raw_data", None),
                })
    out.reverse()
    return out


class KoppelRoutes:
    """`/koppel/…`: the emulator's own answers, in front of moto."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == "/koppel/mail" and environ.get("REQUEST_METHOD") == "GET":
            to = parse_qs(environ.get("QUERY_STRING", "")).get("to", [None])[0]
            body = json.dumps({"items": sent_mail(to)}, indent=1).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        return self.app(environ, start_response)


_run_simple = server.run_simple


def run_simple(host, port, app, **kwargs):
    return _run_simple(host, port, KoppelRoutes(SerialisedDynamoDB(app)), **kwargs)


if __name__ == "__main__":
    install()
    server.run_simple = run_simple
    server.main(sys.argv[1:])
