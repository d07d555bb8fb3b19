"""moto's server, with DynamoDB requests handled one at a time.

moto's DynamoDB backend is not thread-safe: a transaction deep-copies the table while other
request threads write to it ("dictionary changed size during iteration"), so concurrent
writes fail with a 500 the real service never gives. DynamoDB calls are short, so taking
them in turn costs little; other services (SQS long polls) stay concurrent.
"""

import threading

import moto.server

_dynamodb = threading.Lock()
_run_simple = moto.server.run_simple


def one_dynamodb_request_at_a_time(app):
    def wrapped(environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with _dynamodb:
                # The whole response is produced under the lock.
                return list(app(environ, start_response))
        return app(environ, start_response)

    return wrapped


def run_simple(host, port, app, **kwargs):
    _run_simple(host, port, one_dynamodb_request_at_a_time(app), **kwargs)


moto.server.run_simple = run_simple

if __name__ == "__main__":
    moto.server.main()
