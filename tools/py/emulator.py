"""The local AWS emulator: moto's server, with DynamoDB requests handled one at a time.

moto runs each request in its own thread and does not isolate DynamoDB transactions from
each other, so concurrent conditional writes can interleave (a transaction applied but
reported cancelled, or an internal error). Real DynamoDB serialises them. Handling DynamoDB
requests one at a time restores that; SQS, Secrets Manager and SES stay concurrent, so
long polls do not block anything.

Usage: python emulator.py -H 127.0.0.1 -p PORT   (the arguments of moto_server)
"""

import sys
import threading

from moto import server

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


_run_simple = server.run_simple


def run_simple(host, port, app, **kwargs):
    return _run_simple(host, port, SerialisedDynamoDB(app), **kwargs)


server.run_simple = run_simple

if __name__ == "__main__":
    server.main(sys.argv[1:])
