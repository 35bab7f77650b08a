"""`python -m devhost serve|demo`: the local host behind `make serve` and `make demo`."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import threading

from .azurite import Azurite, port_open
from .boot import REPO, boot, configure_logging

log = logging.getLogger("devhost")


def serve(port: int) -> None:
    configure_logging(os.environ.get("LOG_LEVEL", "INFO"))
    azurite = Azurite(10002, REPO / ".azurite")
    azurite.start()
    host = boot(port, sandbox="process")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    log.info("ready: %s (Ctrl-C stops)", host.base_url)
    stop.wait()
    log.info("stopping")
    host.stop()
    azurite.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devhost")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve function_app on http://localhost:PORT/api")
    s.add_argument("--port", type=int, default=int(os.environ.get("PORT", "7071")))
    sub.add_parser("demo", help="run the demo end to end")
    args = parser.parse_args()
    if args.command == "serve":
        if port_open(args.port):
            parser.error(f"port {args.port} is taken; set PORT=")
        serve(args.port)
    else:
        from .demo import main as demo
        demo()


if __name__ == "__main__":
    main()
