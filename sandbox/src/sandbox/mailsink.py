"""`python -m sandbox.mailsink --port N --maildir DIR`: an SMTP server that keeps every mail.

The development fleet's outgoing mail server (``make up`` starts it and points the notification
service at it): a real SMTP server (aiosmtpd) that accepts every message and writes it, as it
arrived, into a Maildir (``DIR/new/<unique name>``, one RFC 5322 message per file), readable
with any mail client (``mutt -f DIR``) or a text editor. Nothing is ever sent on.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.mailsink", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8125)
    parser.add_argument("--maildir", type=Path, required=True)
    args = parser.parse_args(argv)
    args.maildir.parent.mkdir(parents=True, exist_ok=True)
    for sub in ("cur", "new", "tmp"):  # a Maildir (aiosmtpd creates it only when absent)
        (args.maildir / sub).mkdir(parents=True, exist_ok=True)
    controller = Controller(Mailbox(args.maildir), hostname=args.host, port=args.port)
    controller.start()
    print(f"mail sink on smtp://{args.host}:{args.port}, mails in {args.maildir}/new", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
