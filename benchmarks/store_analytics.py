"""Benchmark: the analytics routes answered by the database, side by side with loading the store into pandas.

On one SQLite store of a simulated CRM (default 20,000 leads over 18 months, ~540,000 events; ``--leads 200000``
for ~5M events), for the funnel, the funnel summary by owner, salesperson performance (whole range, and by
month), and goal progress:

- ``pandas``: what the routes did before: ``repo.load_crm()`` then the :mod:`leadscore.analytics` function;
- ``sql``: :mod:`leadscore.store_analytics` (SQL aggregates on the read model and indexes), in-process;
- ``http``: the same through the running service (one uvicorn worker, loopback), unless ``--no-http``; the
  service's peak resident memory over the run is reported too (``service_peak_rss_mb``).

Each is timed ``--repeat`` times (pandas ``--pandas-repeat`` times: it is slow; 0 leaves it out) and reported as
p50/max in ms,
with the speed-up of the SQL path's p50 over the pandas path's, and the two answers checked equal.

Run: ``.venv/bin/python benchmarks/store_analytics.py`` (``--leads 200000`` for the large store; the store is
kept in ``--work`` and reused when it exists). The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pandas as pd

from leadscore import analytics, store_analytics
from leadscore.simulation.simulator import simulate
from leadscore.store import Repository, upgrade_database

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-key"


def build_store(work: Path, n_leads: int, months: int, seed: int) -> str:
    path = work / f"store_{n_leads}_{months}_{seed}.db"
    url = f"sqlite:///{path}"
    if path.exists():
        upgrade_database(url)
        return url
    data = simulate(n_leads=n_leads, months=months, seed=seed).data
    upgrade_database(url)
    repo = Repository.from_url(url)
    started = time.perf_counter()
    repo.import_crm(data)
    print(f"stored {len(data.leads):,} leads, {len(data.events):,} events in {time.perf_counter() - started:.1f} s")
    repo.engine.dispose()
    return url


def questions(months: int) -> dict[str, tuple]:
    """name -> (store_analytics call, pandas call on the data, HTTP path and params)."""
    start, end = "2024-02-01", f"2024-{min(months, 10) + 1:02d}-01"
    return {
        "funnel": (
            lambda repo: store_analytics.funnel(repo),
            lambda data: analytics.funnel(data),
            ("/api/v1/funnel", {}),
        ),
        "funnel_summary_by_owner": (
            lambda repo: store_analytics.funnel(repo, group_by="owner", summary=True),
            lambda data: analytics.funnel_summary(data, group_by="owner"),
            ("/api/v1/funnel", {"group_by": "owner", "summary": "true"}),
        ),
        "performance": (
            lambda repo: store_analytics.rep_performance(repo),
            lambda data: analytics.rep_performance(data),
            ("/api/v1/reps/performance", {}),
        ),
        "performance_by_month": (
            lambda repo: store_analytics.rep_performance(repo, start, end, period="month"),
            lambda data: analytics.rep_performance(data, start, end, period="month"),
            ("/api/v1/reps/performance", {"start": start, "end": end, "period": "month"}),
        ),
        "goal_progress": (
            lambda repo: store_analytics.goal_progress(repo),
            lambda data: analytics.goal_progress(data),
            ("/api/v1/goals/progress", {}),
        ),
    }


def timed(function, repeat: int) -> tuple[list[float], object]:
    seconds, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - started)
    return seconds, result


def stats(seconds: list[float]) -> dict:
    return {"p50_ms": round(1000 * statistics.median(seconds), 1), "max_ms": round(1000 * max(seconds), 1)}


def start_service(work: Path, url: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "LEADSCORE_DATABASE_URL": url,
        "LEADSCORE_API_KEYS": json.dumps({KEY: ["read"]}),
        "LEADSCORE_MLFLOW_TRACKING_URI": f"sqlite:///{work / 'no-registry' / 'mlflow.db'}",
        "LEADSCORE_MODEL_POLL_SECONDS": "0",
    }
    command = [sys.executable, "-m", "uvicorn", "--factory", "leadscore.api.main:create_app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", "1", "--log-level", "warning", "--no-access-log"]
    log = open(work / "service.log", "wb")  # noqa: SIM115 - the server writes to it while it runs
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"the service did not start; see {work / 'service.log'}")


def peak_rss_mb(pid: int) -> float:
    """A process's peak resident memory (Linux ``VmHWM``), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=18)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--pandas-repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "leadscore-store-analytics")
    parser.add_argument("--no-http", action="store_true")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    url = build_store(args.work, args.leads, args.months, args.seed)
    repo = Repository.from_url(url)
    result: dict = {"leads": repo.count("leads"), "events": repo.count("events"), "routes": {}}
    process, base = (None, None) if args.no_http else start_service(args.work, url)
    try:
        client = httpx.Client(base_url=base, headers={"X-API-Key": KEY}, timeout=600) if base else None
        for name, (ours, reference, (path, params)) in questions(args.months).items():
            sql_s, sql_answer = timed(lambda f=ours: f(repo), args.repeat)
            row = {"sql": stats(sql_s)}
            if args.pandas_repeat:  # 0: the database alone (the pandas path takes minutes at 5M events)
                pandas_s, pandas_answer = timed(lambda f=reference: f(repo.load_crm()), args.pandas_repeat)
                row["pandas"] = stats(pandas_s)
                row["speedup"] = round(statistics.median(pandas_s) / statistics.median(sql_s), 1)
                try:
                    pd.testing.assert_frame_equal(
                        sql_answer.reset_index(drop=True), pandas_answer.reset_index(drop=True), rtol=1e-12
                    )
                    row["same_answer"] = True
                except AssertionError:
                    row["same_answer"] = False
            if client is not None:
                http_s, response = timed(lambda p=path, q=params: client.get(p, params=q), args.repeat)
                assert response.status_code == 200, response.text[:500]
                row["http"] = stats(http_s)
            result["routes"][name] = row
            http = f"  http p50 {row['http']['p50_ms']:8.1f} ms" if "http" in row else ""
            pandas = (
                f"  pandas p50 {row['pandas']['p50_ms']:8.1f} ms  x{row['speedup']:<6}"
                f" same answer: {row['same_answer']}"
                if "pandas" in row
                else ""
            )
            print(f"{name:26s} sql p50 {row['sql']['p50_ms']:8.1f} ms{http}{pandas}")
        if process is not None:
            result["service_peak_rss_mb"] = peak_rss_mb(process.pid)
            print(f"service peak memory: {result['service_peak_rss_mb']:.0f} MB")
    finally:
        if process is not None:
            process.kill()
        repo.engine.dispose()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
