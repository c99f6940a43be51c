"""Benchmark: what refusing a request costs the server, with the key checked first and with it checked last.

Two uvicorn servers on loopback serve the same stored CRM (a small simulated one) with the same settings:

- ``key_first``: the service as it is (``leadscore.api.main.create_app``): the ``KeyGate`` middleware answers
  401/403 from the headers alone, then the query string's limits (414/422), then the body's size (413);
- ``key_last``: the same app without those two middlewares, as the service was: the key is checked by the
  route's dependency, after FastAPI has read and parsed the body and the query.

Each gets the same requests, sequentially on one persistent connection (the standard library's client, so that
the client costs little): a normal request (the funnel, with a key), and requests to refuse — 5,000 unknown query
parameters and a 1 MB body, each without a key, with a wrong key, and with a valid key. Measured per kind: the
answer's status, the median and 90th-percentile latency, and the server's CPU time per request (from
``/proc/<pid>/stat``, so the client's own work is not counted).

Run: ``.venv/bin/python benchmarks/rejections.py`` (``--requests 200`` for steadier figures). The last line
printed is one JSON object. Timings depend on the machine and its load: compare the two servers within one run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-key"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def create_app_checking_keys_last():
    """The service without the key gate and the query limits: the key checked by the routes, after parsing."""
    from leadscore.api.limits import QueryLimitMiddleware
    from leadscore.api.main import create_app
    from leadscore.api.security import KeyGate

    app = create_app()
    app.user_middleware = [m for m in app.user_middleware if m.cls not in (KeyGate, QueryLimitMiddleware)]
    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(factory: str, work: Path, database_url: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "LEADSCORE_DATABASE_URL": database_url,
        "LEADSCORE_DATA_DIR": str(work),
        "LEADSCORE_API_KEYS": json.dumps({KEY: ["read", "ingest"]}),
        "LEADSCORE_MLFLOW_TRACKING_URI": f"sqlite:///{work / 'no-registry' / 'mlflow.db'}",
        "LEADSCORE_MODEL_POLL_SECONDS": "0",
    }
    command = [sys.executable, "-m", "uvicorn", "--factory", factory, "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", "1", "--log-level", "error", "--no-access-log"]
    log = open(work / f"{factory.split(':')[-1]}.log", "wb")  # noqa: SIM115 (open while the server runs)
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{factory} exited with {process.returncode}: see {log.name}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0).status_code == 200:
                return process, port
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"{factory} not up after 120 s")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14 and 15 of stat)


def measure(port: int, pid: int, method: str, path: str, body: bytes | None, headers: dict, n: int) -> dict:
    """``n`` identical requests on one connection: status, latency percentiles, server CPU per request."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    statuses, latencies = set(), []
    connection.request(method, path, body=body, headers=headers)  # warm-up: connection, first-request costs
    connection.getresponse().read()
    cpu_before = cpu_seconds(pid)
    for _ in range(n):
        started = time.perf_counter()
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        latencies.append(time.perf_counter() - started)
        statuses.add(response.status)
        if response.getheader("connection", "").lower() == "close":
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    cpu = cpu_seconds(pid) - cpu_before
    connection.close()
    return {
        "status": sorted(statuses),
        "p50_ms": round(statistics.median(latencies) * 1e3, 3),
        "p90_ms": round(statistics.quantiles(latencies, n=10)[-1] * 1e3, 3),
        "server_cpu_ms": round(cpu / n * 1e3, 3),
    }


def requests_to_send(parameters: int, body_bytes: int) -> dict[str, tuple[str, str, bytes | None, dict]]:
    query = "&".join(f"x{i}=1" for i in range(parameters))
    lead = b'{"lead_id": "L", "created_at": "2024-01-01T00:00:00Z", "source": "web"},'
    # Leads that pass the schema but the last, which has no created_at: a route that parses the body answers 422
    # (nothing stored); the key gate answers before any of it is read.
    body = b'{"leads": [' + lead * (body_bytes // len(lead)) + b'{"lead_id": "last"}]}'
    json_type = {"Content-Type": "application/json"}
    good, wrong = {"X-API-Key": KEY}, {"X-API-Key": "wrong-key"}
    return {
        "normal_funnel_with_key": ("GET", "/api/v1/funnel?summary=true", None, good),
        "params_without_key": ("GET", f"/api/v1/funnel?{query}", None, {}),
        "params_with_wrong_key": ("GET", f"/api/v1/funnel?{query}", None, wrong),
        "params_with_key": ("GET", f"/api/v1/funnel?{query}", None, good),
        "body_without_key": ("POST", "/api/v1/leads", body, json_type),
        "body_with_wrong_key": ("POST", "/api/v1/leads", body, {**json_type, **wrong}),
        "body_with_key": ("POST", "/api/v1/leads", body, {**json_type, **good}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50, help="requests per kind and server (default 50)")
    parser.add_argument("--parameters", type=int, default=5_000, help="unknown query parameters (default 5,000)")
    parser.add_argument("--body-mb", type=float, default=1.0, help="size of the refused body in MB (default 1)")
    parser.add_argument("--leads", type=int, default=400, help="simulated leads in the store (default 400)")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "src"))
    from leadscore.simulation.simulator import simulate
    from leadscore.store import Repository, upgrade_database

    work = Path(tempfile.mkdtemp(prefix="leadscore-rejections-"))
    servers: list[subprocess.Popen] = []
    try:
        database_url = f"sqlite:///{work / 'leadscore.db'}"
        upgrade_database(database_url)
        repository = Repository.from_url(database_url)
        repository.import_crm(simulate(n_leads=args.leads, n_reps=4, months=6, seed=3).data)
        repository.engine.dispose()

        kinds = requests_to_send(args.parameters, int(args.body_mb * 1024 * 1024))
        result: dict = {
            "requests": args.requests,
            "parameters": args.parameters,
            "body_bytes": len(kinds["body_without_key"][2] or b""),
        }
        for name, factory in [
            ("key_first", "leadscore.api.main:create_app"),
            ("key_last", "benchmarks.rejections:create_app_checking_keys_last"),
        ]:
            process, port = start(factory, work, database_url)
            servers.append(process)
            result[name] = {
                kind: measure(port, process.pid, *request, n=args.requests) for kind, request in kinds.items()
            }
            process.terminate()
            process.wait(timeout=30)

        print(f"{'request':<24} {'key first: status':>18} {'p50 ms':>8} {'cpu ms':>8}   {'key last: status':>17} "
              f"{'p50 ms':>8} {'cpu ms':>8}")  # fmt: skip
        for kind in kinds:
            first, last = result["key_first"][kind], result["key_last"][kind]
            print(
                f"{kind:<24} {str(first['status']):>18} {first['p50_ms']:>8} {first['server_cpu_ms']:>8}   "
                f"{str(last['status']):>17} {last['p50_ms']:>8} {last['server_cpu_ms']:>8}"
            )
        print(json.dumps(result))
    finally:
        for process in servers:
            if process.poll() is None:
                process.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
