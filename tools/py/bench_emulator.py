"""How the local emulator's DynamoDB holds up as data grows: fills a table with N items,
then times transactional writes (3 items each, as Koppel's creates are) and reads the
emulator's resident memory. Prints one line of figures.

Usage: python bench_emulator.py [--items 100000] [--transactions 50] [--plain]
(--plain: moto as it comes, without tools/py/emulator.py's fixes, for the before figure)
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time

import boto3

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--transactions", type=int, default=50)
    ap.add_argument("--plain", action="store_true")
    a = ap.parse_args()

    port = free_port()
    cmd = [sys.executable, "-m", "moto.server"] if a.plain else [sys.executable, os.path.join(HERE, "emulator.py")]
    proc = subprocess.Popen(cmd + ["-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        db = boto3.client("dynamodb", endpoint_url=url, region_name="eu-west-1",
                          aws_access_key_id="bench", aws_secret_access_key="bench")
        for _ in range(100):
            try:
                db.list_tables()
                break
            except Exception:
                time.sleep(0.2)
        db.create_table(
            TableName="bench",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        filled = time.monotonic()
        body = "x" * 300  # about a case's size
        for start in range(0, a.items, 25):
            db.batch_write_item(RequestItems={"bench": [
                {"PutRequest": {"Item": {"pk": {"S": f"WS#{i % 50}"}, "sk": {"S": f"CASE#{i:08}"}, "body": {"S": body}}}}
                for i in range(start, min(start + 25, a.items))
            ]})
        filled = time.monotonic() - filled
        times = []
        for n in range(a.transactions):
            t = time.monotonic()
            db.transact_write_items(TransactItems=[
                {"Put": {"TableName": "bench", "Item": {"pk": {"S": "WS#0"}, "sk": {"S": f"NEW#{n:06}"}, "body": {"S": body}},
                         "ConditionExpression": "attribute_not_exists(pk)"}},
                {"Update": {"TableName": "bench", "Key": {"pk": {"S": "WS#0"}, "sk": {"S": "CASE#00000000"}},
                            "UpdateExpression": "SET body = :b", "ExpressionAttributeValues": {":b": {"S": body}}}},
                {"Put": {"TableName": "bench", "Item": {"pk": {"S": "WS#0"}, "sk": {"S": f"EVT#{n:06}"}, "body": {"S": body}}}},
            ])
            times.append((time.monotonic() - t) * 1000)
        times.sort()
        print(
            f"emulator ({'moto as it comes' if a.plain else 'tools/py/emulator.py'}): {a.items} items "
            f"(filled in {filled:.0f} s); transactional write of 3 items over {a.transactions}: "
            f"p50 {statistics.median(times):.1f} ms, p90 {times[int(len(times) * 0.9) - 1]:.1f} ms; "
            f"emulator RSS {rss_mb(proc.pid):.0f} MB"
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
