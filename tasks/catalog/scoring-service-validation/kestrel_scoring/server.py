"""Run the scoring service.

    python -m kestrel_scoring.server [--host 127.0.0.1] [--port 8080]

Production runs the same WSGI app under gunicorn behind scoring.kestrelwood.internal.
"""

from __future__ import annotations

import argparse
import logging
from wsgiref.simple_server import WSGIRequestHandler, make_server

from kestrel_scoring.app import make_app


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        logging.getLogger("kestrel_scoring.access").info(format, *args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Kestrelwood credit-risk scoring service")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    with make_server(args.host, args.port, make_app(), handler_class=QuietHandler) as httpd:
        logging.getLogger("kestrel_scoring").info(
            "serving on http://%s:%d", args.host, httpd.server_port)
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
