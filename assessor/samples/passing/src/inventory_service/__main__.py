"""Command line: `serve` the API, `expire-holds` (the once-a-minute sweep) and `check-stock` (drift check)."""

import argparse
import logging
import sys
from collections.abc import Callable
from wsgiref.simple_server import make_server

from inventory_service.app import create_api, create_wsgi_application


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inventory_service")
    parser.add_argument("--database", default="inventory.sqlite3", help="SQLite file (default: %(default)s)")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    commands.add_parser("expire-holds", help="release every reservation past its expiry, then exit")
    commands.add_parser("check-stock", help="list items whose reserved count disagrees with open holds")
    return parser


def main(argv: list[str] | None = None, server_factory: Callable = make_server) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.command == "expire-holds":
        print(f"expired {create_api(args.database).service.expire_due()} reservation(s)")
        return 0
    if args.command == "check-stock":
        return check_stock(create_api(args.database).service)
    # wsgiref serves one request at a time: fine for development; production uses gunicorn (see README).
    with server_factory(args.host, args.port, create_wsgi_application(args.database)) as server:
        print(f"serving on http://{args.host}:{args.port}", file=sys.stderr)
        server.serve_forever()
    return 0


def check_stock(service) -> int:
    """Exit status 0 when every item's reserved count matches its open holds, 1 (with the list) otherwise."""
    drift = service.stock_drift()
    for sku, reserved, held in drift:
        print(f"{sku}: reserved={reserved} but open holds={held}")
    print("stock consistent" if not drift else f"{len(drift)} item(s) drifted")
    return 1 if drift else 0


if __name__ == "__main__":
    sys.exit(main())
