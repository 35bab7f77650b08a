"""`python -m devhost.sandbox [--port N]`: serve the demo flows and log the app settings that point at them."""
from __future__ import annotations

import argparse
import json
import logging
import signal
import threading

from .core import Sandbox

log = logging.getLogger("devhost.sandbox")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devhost.sandbox")
    parser.add_argument("--port", type=int, default=7072)
    parser.add_argument("--key", default=None, help="signing key (random when omitted)")
    parser.add_argument("--knobs", default="{}", help="JSON of knobs, e.g. {\"throttle_rate\": 0.1}")
    args = parser.parse_args()
    knobs = json.loads(args.knobs)
    for name in ("async_actions", "breach_actions"):
        if name in knobs:
            knobs[name] = set(knobs[name])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with Sandbox(port=args.port, key=args.key, **knobs) as sandbox:
        log.info("settings for the app:\n%s", json.dumps(sandbox.settings(), indent=2))
        stop.wait()


if __name__ == "__main__":
    main()
