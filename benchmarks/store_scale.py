"""Benchmark: the service over a large store, with kept scores against today's per-request approach, in one run.

A simulated CRM (``--leads`` leads, about 27 events each, ending now so that many leads are open) is loaded into a
SQLite store; a small champion is trained on a separate simulation and registered in a throwaway MLflow store.
The same store is then served twice by one uvicorn worker each, through HTTP:

- ``kept``: the service as shipped: a background keeper keeps every open lead's latest score in the store, the
  prioritised list is a query and one lead's score is a row;
- ``per_request``: the same app with ``LEADSCORE_STORED_SCORES=false`` (and no list cache): every list and
  every score computed from the stored histories per request, the way before scores were kept.

Measured for each: p50/p99 of the funnel, salesperson performance, goal progress, the first and a later page of
the prioritised list; one lead's score with 8 concurrent clients (requests/s, p50, p99); the server's peak RSS.
For ``kept`` also: the time to score every stored lead once after start-up (the cost of a full refresh or of a
new champion), and the time from a 1,000-event batch being acknowledged to all of its leads' new scores being
readable (no longer stale). The analytics routes are the same code in both (they are another change's subject);
they are measured so that one run shows every figure of the issue.

Run: ``.venv/bin/python benchmarks/store_scale.py`` (3,000 leads, a few minutes); ``--leads 20000`` is ~540k
events, ``--leads 200000`` ~5M. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from api import free_port, wait_until_up  # noqa: E402 - the sibling benchmark's helpers

KEY = "bench-key"
HEADERS = {"X-API-Key": KEY}


def train_champion(work: Path) -> str:
    from leadscore import registry
    from leadscore.model.training import train, training_data_from_crm
    from leadscore.simulation.simulator import simulate

    uri = f"sqlite:///{work / 'mlflow.db'}"
    data = simulate(n_leads=3_000, n_reps=8, months=14, seed=7).data
    result = train(training_data_from_crm(data), candidates=["logistic"], check_leakage=False)
    registered = registry.log_training(result, uri=uri)
    registry.promote(registered.version, uri=uri)
    return uri


def load_store(url: str, n_leads: int, months: int) -> dict[str, int]:
    from leadscore.simulation.simulator import simulate
    from leadscore.store import Repository, upgrade_database

    start = (pd.Timestamp.now(tz="UTC") - pd.DateOffset(months=months)).normalize().tz_localize(None)
    data = simulate(n_leads=n_leads, n_reps=max(8, n_leads // 1_000), months=months, seed=3, start=start).data
    upgrade_database(url)
    repo = Repository.from_url(url)
    try:
        counts = repo.import_crm(data, chunk_rows=100_000)
    finally:
        repo.engine.dispose()
    return counts


def start_server(work: Path, url: str, uri: str, kept: bool) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "LEADSCORE_DATA_DIR": str(work),
        "LEADSCORE_DATABASE_URL": url,
        "LEADSCORE_MLFLOW_TRACKING_URI": uri,
        "LEADSCORE_API_KEYS": json.dumps({KEY: ["read", "score", "ingest"]}),
        "LEADSCORE_STORED_SCORES": "true" if kept else "false",
        "LEADSCORE_PRIORITIZED_CACHE_SECONDS": "0",  # today's approach measured as it costs, not from a cache
        "LEADSCORE_MODEL_POLL_SECONDS": "0",
        "LEADSCORE_MAX_REQUEST_BYTES": str(50 * 1024 * 1024),
    }
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "leadscore.api.main:create_app", "--port", str(port)]
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    wait_until_up(f"{base}/healthz", process, timeout_s=600)
    return process, base


def peak_rss_mb(pid: int, field: str = "VmHWM") -> float:
    """The process's peak resident memory (``VmRSS``: its current one)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed(client: httpx.Client, path: str, repeats: int) -> dict[str, float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        response = client.get(path, headers=HEADERS)
        times.append(time.perf_counter() - t0)
        response.raise_for_status()
    return {"p50_ms": 1e3 * statistics.median(times), "p99_ms": 1e3 * float(np.percentile(times, 99)), "n": repeats}


def concurrent_scores(base: str, lead_ids: list[str], seconds: float, clients: int = 8) -> dict[str, float]:
    """One lead's score, ``clients`` threads asking in a loop for ``seconds``."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def work(seed: int) -> None:
        rng = random.Random(seed)
        mine = []
        with httpx.Client(base_url=base, timeout=60) as client:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                response = client.get(f"/api/v1/leads/{rng.choice(lead_ids)}/score?history=0", headers=HEADERS)
                mine.append(time.perf_counter() - t0)
                if response.status_code != 200:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return {
        "requests_per_s": len(latencies) / elapsed,
        "p50_ms": 1e3 * statistics.median(latencies),
        "p99_ms": 1e3 * float(np.percentile(latencies, 99)),
        "requests": len(latencies),
        "errors": errors[0],
    }


def wait_for_scores(repo, lead_ids: list[str] | None, timeout_s: float) -> float:
    """Seconds until none of ``lead_ids`` (None: no lead) is stale in the store."""
    import sqlalchemy as sa

    from leadscore.store.tables import lead_scores_table as t

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout_s:
        with repo.engine.connect() as conn:
            stmt = sa.select(sa.func.count()).select_from(t).where(sa.text("stale"))
            if lead_ids is not None:
                stmt = stmt.where(t.c.lead_id.in_(lead_ids))
            if conn.execute(stmt).scalar_one() == 0:
                return time.perf_counter() - t0
        time.sleep(0.02)
    raise TimeoutError(f"scores still stale after {timeout_s}s")


ANALYTICS = {
    "funnel": "/api/v1/funnel",
    "performance": "/api/v1/reps/performance",
    "goal_progress": "/api/v1/goals/progress",
}


def routes(later_offset: int, analytics: bool = True) -> dict[str, str]:
    lists = {
        "list_first_page": "/api/v1/leads/prioritized?limit=50",
        "list_later_page": f"/api/v1/leads/prioritized?limit=50&offset={later_offset}",
    }
    return {**(ANALYTICS if analytics else {}), **lists}


def measure(base: str, repeats: int, lead_ids: list[str], seconds: float, later_offset: int, analytics: bool) -> dict:
    out: dict = {}
    with httpx.Client(base_url=base, timeout=3_600) as client:
        for name, path in routes(later_offset, analytics).items():
            client.get(path, headers=HEADERS)  # warm-up
            out[name] = timed(client, path, repeats)
    out["one_lead_score_8_clients"] = concurrent_scores(base, lead_ids, seconds)
    return out


def freshness(base: str, repo, open_ids: list[str], n_events: int) -> dict[str, float]:
    """A batch of ``n_events`` events (one per lead, as far as there are leads) posted; seconds until readable."""
    chosen = [open_ids[i % len(open_ids)] for i in range(n_events)]
    at = (pd.Timestamp.now(tz="UTC") - pd.Timedelta(minutes=1)).isoformat()
    stamp = time.time_ns()
    events = [
        {"event_id": f"bench-{stamp}-{i}", "lead_id": lead, "at": at, "type": "call", "duration_s": 120}
        for i, lead in enumerate(chosen)
    ]
    with httpx.Client(base_url=base, timeout=600) as client:
        t0 = time.perf_counter()
        response = client.post("/api/v1/events", json={"events": events}, headers=HEADERS)
        acknowledged = time.perf_counter() - t0
        response.raise_for_status()
    fresh = wait_for_scores(repo, sorted(set(chosen)), timeout_s=600)
    return {"events": n_events, "leads": len(set(chosen)), "ingest_ms": 1e3 * acknowledged, "fresh_after_ack_s": fresh}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=3_000, help="Stored leads (20,000 ~ 540k events; 200,000 ~ 5M).")
    parser.add_argument("--months", type=int, default=18)
    parser.add_argument("--repeats", type=int, default=20, help="Requests per route for the kept service.")
    parser.add_argument("--baseline-repeats", type=int, default=5, help="Requests per route for the per-request one.")
    parser.add_argument("--seconds", type=float, default=10.0, help="Duration of the concurrent one-lead test.")
    parser.add_argument("--later-offset", type=int, default=1_000, help="Offset of the later page.")
    parser.add_argument("--skip-baseline", action="store_true", help="Measure the kept service only.")
    parser.add_argument(
        "--skip-analytics", action="store_true", help="Leave out the analytics routes (slow on a large store today)."
    )
    parser.add_argument(
        "--skip-baseline-analytics",
        action="store_true",
        help="Measure the analytics routes on the kept service only (per request they load the whole store: "
        "minutes each at 5M events; benchmarks/store_analytics.py compares them with pandas instead).",
    )
    args = parser.parse_args()

    from leadscore.store import Repository

    report: dict = {"leads": args.leads}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        url = f"sqlite:///{work / 'leadscore.db'}"
        uri = train_champion(work)
        t0 = time.perf_counter()
        report["stored"] = load_store(url, args.leads, args.months)
        report["load_s"] = time.perf_counter() - t0
        repo = Repository.from_url(url)

        process, base = start_server(work, url, uri, kept=True)
        try:
            report["kept_initial_scoring_s"] = wait_for_scores(repo, None, timeout_s=7_200)
            report["open_leads"] = repo.count("lead_scores")
            report["kept_rss_after_initial_scoring_mb"] = peak_rss_mb(process.pid, "VmRSS")
            open_ids = [row["lead_id"] for row in repo.prioritized_page(limit=100_000)[2]]
            report["kept"] = measure(
                base, args.repeats, open_ids, args.seconds, args.later_offset, not args.skip_analytics
            )
            report["kept"]["fresh_scores"] = freshness(base, repo, open_ids, 1_000)
            report["kept"]["peak_rss_mb"] = peak_rss_mb(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=60)
        print(json.dumps({"kept": report["kept"]}, indent=1), file=sys.stderr)

        if not args.skip_baseline:
            process, base = start_server(work, url, uri, kept=False)
            try:
                seconds = max(args.seconds, 10.0)
                baseline_analytics = not (args.skip_analytics or args.skip_baseline_analytics)
                report["per_request"] = measure(
                    base, args.baseline_repeats, open_ids, seconds, args.later_offset, baseline_analytics
                )
                report["per_request"]["peak_rss_mb"] = peak_rss_mb(process.pid)
            finally:
                process.terminate()
                process.wait(timeout=60)
            kept, per_request = report["kept"], report["per_request"]
            report["speedup_p50"] = {
                name: per_request[name]["p50_ms"] / kept[name]["p50_ms"]
                for name in routes(args.later_offset, baseline_analytics)
            }
            report["speedup_p50"]["one_lead_requests_per_s"] = (
                kept["one_lead_score_8_clients"]["requests_per_s"]
                / per_request["one_lead_score_8_clients"]["requests_per_s"]
            )
        repo.engine.dispose()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
