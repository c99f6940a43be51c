"""A webhook receiver for the tests and the benchmark: a real HTTP server that checks every signature.

Run as a process: ``python tools/webhook_receiver.py --port P --secret S --log FILE [--fail-rate 0.2]
[--delay 0.1] [--redirect] [--seed 1]``. For each POST it

1. verifies ``X-Leadscore-Signature`` with :func:`leadscore.webhooks.signing.verify` (bad: 400, logged as such);
2. fails the request with a 500 with probability ``--fail-rate`` (before accepting it);
3. otherwise accepts it: appends one JSON line to ``--log`` (event id, lead, sequence, kind, attempt; flushed
   before answering, so a receiver killed after logging but before answering is exactly the duplicate case)
   and answers 200 (or, with ``--redirect``, 307 to another path, which the sender must not follow).

Every request, accepted or not, is also counted by outcome in the log (``"outcome"``), so a test can tell
accepted deliveries from failed ones. It prints ``ready`` once listening.

:class:`Receiver` starts, kills and restarts one from a test or a benchmark and reads its log.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from leadscore.webhooks.signing import SIGNATURE_HEADER, InvalidSignature, verify


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """A receiver process on a free loopback port: start, SIGKILL, restart (same port, same log), read the log."""

    def __init__(self, log: Path, secret: str, **options: object):
        self.log = Path(log)
        self.secret = secret
        self.options = options
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> Receiver:
        command = [sys.executable, str(Path(__file__).resolve()), "--port", str(self.port)]
        command += ["--secret", self.secret, "--log", str(self.log)]
        for name, value in self.options.items():
            flag = "--" + name.replace("_", "-")
            if value is True:
                command.append(flag)
            elif value not in (None, False):
                command += [flag, str(value)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        line = self.process.stdout.readline() if self.process.stdout else b""
        if b"ready" not in line or time.monotonic() > deadline:
            raise RuntimeError(f"the receiver did not start: {line!r}")
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def entries(self, outcome: str | None = None) -> list[dict]:
        if not self.log.exists():
            return []
        lines = [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [e for e in lines if outcome is None or e["outcome"] == outcome]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--redirect", action="store_true")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    lock = threading.Lock()
    log = args.log.open("a", encoding="utf-8")

    def record(entry: dict) -> None:
        with lock:
            log.write(json.dumps(entry) + "\n")
            log.flush()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

        def log_message(self, *_args) -> None:  # quiet
            pass

        def do_POST(self) -> None:  # noqa: N802 - the http.server name
            declared = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(declared)
            if len(body) < declared:  # the sender gave up (its timeout) mid-body: nothing to check
                record({"outcome": "incomplete"})
                return
            if args.delay:
                time.sleep(args.delay)
            try:
                verify(body, self.headers.get(SIGNATURE_HEADER), args.secret)
            except InvalidSignature as err:
                record({"outcome": "bad_signature", "error": str(err)})
                return self._answer(400, b"bad signature")
            with lock:
                fail = rng.random() < args.fail_rate
            if fail:
                record({"outcome": "failed"})
                return self._answer(500, b"try again")
            event = json.loads(body)
            record(
                {
                    "outcome": "accepted",
                    "event_id": self.headers.get("X-Leadscore-Event-Id"),
                    "id": event["id"],
                    "lead_id": event["lead_id"],
                    "sequence": event["sequence"],
                    "kind": event["kind"],
                    "attempt": int(self.headers.get("X-Leadscore-Attempt", "0")),
                    "host": self.headers.get("Host"),
                    "path": self.path,
                }
            )
            if args.redirect:
                return self._answer(307, b"", {"Location": "/elsewhere"})
            return self._answer(200, b"ok")

        def _answer(self, code: int, body: bytes, headers: dict | None = None) -> None:
            self.send_response(code)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    try:
        server.serve_forever()
    finally:
        sys.stdout.flush()


if __name__ == "__main__":
    main()
