"""Benchmark: the web app's pages against the API's JSON for the same figures, on a demo-size store.

One uvicorn worker on loopback serves a store holding a simulated CRM the size of the demo (20,000 leads, 12
salespeople, 18 months ending today) and a champion trained on it. The benchmark signs in through the form like
a browser (cookies, CSRF token) and requests each page ``--requests`` times, then the API call that returns the
same figures as JSON, side by side:

=====================  =========================================================
page                   the API call beside it
=====================  =========================================================
today's leads          ``GET /api/v1/leads/prioritized?limit=25``
filtered list          ``GET /api/v1/leads/prioritized?grade=B&order_by=expected_value&limit=25``
a lead's page          ``GET /api/v1/leads/{id}/score`` (which also records the score)
team performance       ``GET /api/v1/reps/performance?against_median=true``
goals                  ``GET /api/v1/goals/progress``
goals, conversions     ``GET /api/v1/goals/progress?metric=conversions``
funnel                 ``GET /api/v1/funnel``
funnel by salesperson  ``GET /api/v1/funnel?group_by=owner``
model                  ``GET /api/v1/model``
=====================  =========================================================

Server time is each request's time over loopback (the network part is a fraction of a millisecond). The first
request of a page is reported apart: it may build what later requests reuse (the model page's accuracy on the
latest period, cached for ten minutes; the goals page's forecast, made once per scored table of open leads).
The list pages and the API's list read the kept scores; the scored table of open leads the list pages share
is reused for LEADSCORE_PRIORITIZED_CACHE_SECONDS (60 s; a page's requests may outlive it, and then one of
them builds it again). A lead's page reads the lead's kept row, as ``GET /leads/{id}/score`` does. Team, goals
and funnel (and the API routes beside them) ask the database through ``leadscore.store_analytics`` on every
request (issues 14 and 15).

Run: ``.venv/bin/python benchmarks/web_pages.py`` (the demo's size; ``--quick`` for a small smoke run). The last
line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-key"
GOAL_MS = 300.0


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(work: Path, n_leads: int, n_reps: int, months: int, train_leads: int, candidates: list[str]) -> str:
    """A demo-size store ending today and a champion trained on a CRM like it; returns the database URL."""
    from leadscore import registry
    from leadscore.model.training import train, training_data_from_crm
    from leadscore.simulation.simulator import simulate
    from leadscore.store import Repository, upgrade_database

    start = (pd.Timestamp.now(tz="UTC") - pd.DateOffset(months=months)).normalize()
    data = simulate(n_leads=n_leads, n_reps=n_reps, months=months, seed=7, start=start).data
    sample = (
        data
        if train_leads >= n_leads
        else simulate(n_leads=train_leads, n_reps=n_reps, months=months, seed=8, start=start).data
    )
    result = train(training_data_from_crm(sample), candidates=candidates, check_leakage=False)
    uri = f"sqlite:///{work / 'mlflow.db'}"
    registry.promote(registry.log_training(result, uri=uri).version, uri=uri)
    url = f"sqlite:///{work / 'leadscore.db'}"
    upgrade_database(url)
    repo = Repository.from_url(url)
    repo.import_crm(data)
    repo.engine.dispose()
    os.environ["BENCH_MLFLOW_URI"] = uri
    return url


def start_server(work: Path, database_url: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "LEADSCORE_DATABASE_URL": database_url,
        "LEADSCORE_API_KEYS": json.dumps({KEY: ["score", "read", "ingest"]}),
        "LEADSCORE_MLFLOW_TRACKING_URI": os.environ["BENCH_MLFLOW_URI"],
        "LEADSCORE_MODEL_POLL_SECONDS": "0",
        "LEADSCORE_SESSION_SECRET": "benchmark",
    }
    command = [sys.executable, "-m", "uvicorn", "--factory", "leadscore.api.main:create_app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", "1", "--log-level", "warning", "--no-access-log"]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(work / "server.log", "wb")
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {(work / 'server.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1.0).status_code == 200:
                return process, base
        except (httpx.TransportError, ValueError):
            pass
        time.sleep(0.2)
    process.terminate()  # never leave a server behind
    process.wait(timeout=30)
    raise RuntimeError(f"server not ready after 300 s: {(work / 'server.log').read_text()[-2000:]}")


def signed_in_client(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=300)
    form = client.get("/app/sign-in").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    answer = client.post("/app/sign-in", data={"api_key": KEY, "csrf_token": token, "next": "/app/leads"})
    if answer.status_code != 303 and "ls_session" not in client.cookies:
        raise RuntimeError(f"sign-in failed: {answer.status_code}")
    return client


def timed(client: httpx.Client, path: str, n: int, headers: dict | None = None) -> dict:
    """The first request's time, then p50/p99 of ``n`` more (milliseconds)."""
    times = []
    for _ in range(n + 1):
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
        times.append(elapsed)
    first, rest = times[0], times[1:]
    return {
        "first_ms": round(first, 1),
        "p50_ms": round(statistics.median(rest), 1),
        "p99_ms": round(float(np.percentile(rest, 99)), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=20_000, help="Stored leads (the demo: 20,000).")
    parser.add_argument("--reps", type=int, default=12, help="Salespeople (the demo: 12).")
    parser.add_argument("--months", type=int, default=18, help="Months of history ending today (the demo: 18).")
    parser.add_argument("--train-leads", type=int, default=4000, help="Leads of the CRM the champion is trained on.")
    parser.add_argument("--candidates", default="logistic", help="Training candidates.")
    parser.add_argument("--requests", type=int, default=20, help="Timed requests per page and per API call.")
    parser.add_argument("--pages", default="", help="Only these pages, comma-separated (default: all).")
    parser.add_argument("--quick", action="store_true", help="A small smoke run.")
    parser.add_argument("--keep", action="store_true", help="Keep the working folder.")
    args = parser.parse_args()
    if args.quick:
        args.leads, args.train_leads, args.requests = 2000, 1500, 5

    work = Path(tempfile.mkdtemp(prefix="leadscore-web-bench-"))
    process = None
    try:
        started = time.perf_counter()
        database_url = prepare(work, args.leads, args.reps, args.months, args.train_leads, args.candidates.split(","))
        print(f"prepared the store and the champion in {time.perf_counter() - started:.0f}s", flush=True)
        process, base = start_server(work, database_url)
        web = signed_in_client(base)
        api = httpx.Client(base_url=base, timeout=300)
        key = {"X-API-Key": KEY}
        # The first list request scores every open lead and caches the table the list pages and the API share.
        built = time.perf_counter()
        # On a large store the score keeper may not have scored the open leads yet: wait for the first of them.
        items: list = []
        while not items and time.perf_counter() - built < 600:
            items = api.get("/api/v1/leads/prioritized?limit=1", headers=key).json()["items"] or []
            if not items:
                time.sleep(1)
        top = items[0]["lead_id"]
        build_ms = round((time.perf_counter() - built) * 1000, 1)
        print(f"scored table of open leads built in {build_ms:.0f} ms", flush=True)
        pairs = [
            ("todays_leads", "/app/leads", "/api/v1/leads/prioritized?limit=25"),
            (
                "filtered_list",
                "/app/leads?grade=B&order_by=expected_value",
                "/api/v1/leads/prioritized?grade=B&order_by=expected_value&limit=25",
            ),
            ("lead_page", f"/app/leads/{top}", f"/api/v1/leads/{top}/score"),
            ("team_performance", "/app/team", "/api/v1/reps/performance?against_median=true"),
            ("goals", "/app/goals", "/api/v1/goals/progress"),
            ("goals_conversions", "/app/goals?metric=conversions", "/api/v1/goals/progress?metric=conversions"),
            ("funnel", "/app/funnel", "/api/v1/funnel"),
            ("funnel_by_owner", "/app/funnel?group_by=owner", "/api/v1/funnel?group_by=owner"),
            ("model", "/app/model", "/api/v1/model"),
        ]
        if args.pages:
            pairs = [pair for pair in pairs if pair[0] in args.pages.split(",")]
        results = {}
        for name, page, call in pairs:
            results[name] = {"page": timed(web, page, args.requests), "api": timed(api, call, args.requests, key)}
            results[name]["page_p50_under_300ms"] = results[name]["page"]["p50_ms"] < GOAL_MS
            print(f"{name:18s} page {results[name]['page']}  api {results[name]['api']}", flush=True)
        print(
            json.dumps(
                {
                    "benchmark": "web_pages",
                    "stored_leads": args.leads,
                    "reps": args.reps,
                    "months": args.months,
                    "requests_per_page": args.requests,
                    "goal_ms": GOAL_MS,
                    "pages": results,
                    "pages_under_goal": sorted(n for n, r in results.items() if r["page_p50_under_300ms"]),
                    "pages_over_goal": sorted(n for n, r in results.items() if not r["page_p50_under_300ms"]),
                }
            )
        )
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
