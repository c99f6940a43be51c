"""Benchmark: our scoring service against MLflow's own scoring server, on the same champion and the same rows.

Both run as one uvicorn worker on loopback, serving the same registered model version; both get the same
``dataframe_split`` bodies of precomputed feature rows. Measured, side by side:

- one lead per request, sequentially: p50 and p99 latency (goal: ours at most a quarter of MLflow's p50);
- 1,000 leads per request: leads scored per second (goal: at least 3x MLflow's).

Ours is measured twice: as a CRM calls it by default (with the top reasons up and down for every lead, which
MLflow does not compute), and with ``"reasons": false``, which returns what MLflow returns (the probability,
plus grade and percentile): the like-for-like comparison.

Ours alone:

- in-process, the contributions behind probabilities and reasons: through the scikit-learn pipeline against the
  compiled model, for one lead and for 1,000;
- stateless scoring of 1,000 leads sent with their histories (~50 events each), features built on the fly;
- ``GET /leads/prioritized`` over ``--stored-leads`` stored leads (the first request builds and caches the
  scored list; later requests page through it).

Run: ``.venv/bin/python benchmarks/api.py`` (``--quick`` for a small smoke run). The last line printed is one JSON
object. Timings depend on the machine and its load: compare the two services within one run.
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
import warnings
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before answering {url}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not up after {timeout_s}s")


def train_champion(work: Path, n_leads: int, candidates: list[str]) -> tuple[str, object]:
    """A simulated CRM and a registered champion trained on it; returns the tracking URI and the data."""
    from leadscore import registry
    from leadscore.model.training import train, training_data_from_crm
    from leadscore.simulation.simulator import simulate

    uri = f"sqlite:///{work / 'mlflow.db'}"
    data = simulate(n_leads=n_leads, n_reps=8, months=14, seed=7).data
    result = train(training_data_from_crm(data), candidates=candidates, check_leakage=False)
    registered = registry.log_training(result, uri=uri)
    registry.promote(registered.version, uri=uri)
    return uri, data


def start_ours(work: Path, uri: str, database_url: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "LEADSCORE_DATABASE_URL": database_url,
        "LEADSCORE_API_KEYS": json.dumps({KEY: ["score", "read", "ingest"]}),
        "LEADSCORE_MLFLOW_TRACKING_URI": uri,
        "LEADSCORE_MODEL_POLL_SECONDS": "0",
        "LEADSCORE_MAX_REQUEST_BYTES": str(200 * 1024 * 1024),
        "LEADSCORE_MAX_BATCH_SIZE": "100000",
    }
    command = [sys.executable, "-m", "uvicorn", "--factory", "leadscore.api.main:create_app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", "1", "--log-level", "warning", "--no-access-log"]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(work / "ours.log", "wb")
    )
    base = f"http://127.0.0.1:{port}"
    wait_until_up(f"{base}/readyz", process)
    return process, base


def start_mlflow(work: Path, uri: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    # MLflow runs `uvicorn` from PATH: put this interpreter's scripts first.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PATH": path}
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/leadscore@champion"]
    command += ["--env-manager", "local", "--host", "127.0.0.1", "-p", str(port), "--workers", "1"]
    process = subprocess.Popen(
        command, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=open(work / "mlflow.log", "wb")
    )
    base = f"http://127.0.0.1:{port}"
    wait_until_up(f"{base}/ping", process)
    return process, base


def split_body(frame: pd.DataFrame) -> dict:
    """A ``dataframe_split`` body, in the JSON pandas writes (NaN as null)."""
    return {"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}


class Loopback:
    """One persistent HTTP/1.1 connection to a server, with the standard library's client.

    The servers are what is measured, so the client should cost as little as possible: httpx's own work per
    request (about 3 ms for a 1,000-lead body and its answer, measured here) would be added to both servers'
    times and blur their ratio.
    """

    def __init__(self, base_url: str):
        host, port = base_url.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=300)

    def post(self, path: str, payload: bytes, headers: dict) -> tuple[int, bytes]:
        self.connection.request("POST", path, body=payload, headers=headers)
        response = self.connection.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self.connection.close()


def latencies(client: Loopback, path: str, body: dict, n: int, headers: dict) -> list[float]:
    payload = json.dumps(body).encode()
    headers = {**headers, "Content-Type": "application/json"}
    out = []
    for _ in range(n):
        start = time.perf_counter()
        status, content = client.post(path, payload, headers)
        out.append(time.perf_counter() - start)
        if status != 200:
            raise RuntimeError(f"{path}: {status} {content[:300]!r}")
    return out


def summary(seconds: list[float], rows: int) -> dict:
    ms = np.array(seconds) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "leads_per_s": round(rows / statistics.median(seconds), 1),
        "requests": len(seconds),
    }


def in_process(model, one: pd.DataFrame, thousand: pd.DataFrame) -> dict:
    """Contributions (what probability and reasons come from) in-process, median ms: through the scikit-learn
    pipeline (``leadscore.model.explain``) against the compiled model (``leadscore.model.compiled``)."""
    from leadscore.model.compiled import compile_model
    from leadscore.model.explain import explain

    compiled = compile_model(model)
    out = {}
    for name, rows, repeats in (("one_lead", one, 50), ("thousand_leads", thousand, 10)):
        timings = {}
        for way, run in (
            ("pipeline", lambda r=rows: explain(model, r)),
            ("compiled", lambda r=rows: compiled.explain(r)),
        ):
            run()
            seconds = []
            for _ in range(repeats):
                start = time.perf_counter()
                run()
                seconds.append(time.perf_counter() - start)
            timings[f"{way}_ms"] = round(statistics.median(seconds) * 1000, 2)
        out[name] = timings
    return out


def histories_body(data, n_leads: int, events_per_lead: int, cutoff: pd.Timestamp) -> tuple[dict, int]:
    """``n_leads`` leads open at ``cutoff``, each with its last ``events_per_lead`` events before it (open leads
    are reused under new ids when there are fewer than ``n_leads``)."""
    from leadscore.data.contracts import EVENTS
    from leadscore.features.builder import build_features

    open_ids = build_features(data.leads, data.events, cutoff)["lead_id"].to_numpy()
    picks = np.resize(open_ids, n_leads)
    copies = pd.DataFrame({"lead_id": picks, "new_id": [f"{lead}~{i}" for i, lead in enumerate(picks)]})
    leads = copies.merge(data.leads, on="lead_id").drop(columns="lead_id").rename(columns={"new_id": "lead_id"})
    known = data.events[data.events["lead_id"].isin(open_ids) & (data.events["at"] <= cutoff)]
    known = known.groupby("lead_id", sort=False).tail(events_per_lead)
    events = copies.merge(known, on="lead_id").drop(columns="lead_id").rename(columns={"new_id": "lead_id"})
    events["event_id"] = events["lead_id"] + ":" + events["event_id"]
    base = ["lead_id", "created_at", "owner_id", "source"]
    lead_rows = json.loads(leads[base].to_json(orient="records", date_format="iso"))
    extras = [c for c in leads.columns if c not in base]
    for row, attributes in zip(lead_rows, json.loads(leads[extras].to_json(orient="records")), strict=True):
        row["attributes"] = {k: v for k, v in attributes.items() if v is not None}
    event_rows = json.loads(events[EVENTS.names].to_json(orient="records", date_format="iso"))
    return {"leads": lead_rows, "events": event_rows, "cutoff": cutoff.isoformat()}, len(event_rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-leads", type=int, default=3000, help="Simulated leads to train the champion on.")
    parser.add_argument("--candidates", default="logistic,gradient_boosting", help="Training candidates.")
    parser.add_argument("--single", type=int, default=300, help="One-lead requests per service.")
    parser.add_argument("--batches", type=int, default=40, help="1,000-lead requests per service.")
    parser.add_argument("--stored-leads", type=int, default=100_000, help="Stored leads for the prioritised list.")
    parser.add_argument("--quick", action="store_true", help="A small smoke run.")
    parser.add_argument("--keep", action="store_true", help="Keep the working folder (databases, server logs).")
    args = parser.parse_args()
    if args.quick:
        args.train_leads, args.single, args.batches, args.stored_leads = 1500, 40, 3, 3000
        args.candidates = "logistic"
    warnings.filterwarnings("ignore")

    from leadscore.features.builder import build_features
    from leadscore.simulation.simulator import simulate
    from leadscore.store import Repository, upgrade_database

    work = Path(tempfile.mkdtemp(prefix="leadscore-bench-"))
    t0 = time.perf_counter()
    uri, data = train_champion(work, args.train_leads, args.candidates.split(","))
    setup_s = time.perf_counter() - t0

    cutoff = data.end - pd.Timedelta(days=60)
    features = build_features(data.leads, data.events, cutoff)
    from leadscore.serving.scorer import Scorer

    scorer = Scorer.from_registry("champion", uri)
    inputs = scorer.features
    rows = features[inputs]
    thousand = rows.sample(1000, replace=len(rows) < 1000, random_state=0)
    explaining = in_process(scorer.model, rows.iloc[:1], thousand)

    database_url = f"sqlite:///{work / 'leadscore.db'}"
    upgrade_database(database_url)
    t0 = time.perf_counter()
    stored = simulate(n_leads=args.stored_leads, n_reps=20, months=14, seed=11).data
    Repository.from_url(database_url).import_crm(stored)
    store_s = time.perf_counter() - t0
    n_stored_events = len(stored.events)
    stored_cutoff = stored.end
    del stored

    processes = []
    result: dict = {"benchmark": "api", "train_leads": args.train_leads, "model_candidates": args.candidates}
    try:
        ours, ours_url = start_ours(work, uri, database_url)
        processes.append(ours)
        theirs, theirs_url = start_mlflow(work, uri)
        processes.append(theirs)
        headers = {"X-API-Key": KEY}
        o, m = Loopback(ours_url), Loopback(theirs_url)
        with httpx.Client(base_url=ours_url, timeout=300) as reader:
            one = split_body(rows.iloc[:1])
            many = split_body(thousand)
            # The same rows, scored as MLflow scores them: probabilities (and grades), no reasons.
            one_bare, many_bare = {**one, "reasons": False}, {**many, "reasons": False}
            runs = {
                "ours": (o, "/api/v1/scores", headers, one, many),
                "ours_without_reasons": (o, "/api/v1/scores", headers, one_bare, many_bare),
                "mlflow": (m, "/invocations", {}, one, many),
            }
            for client, path, h, single, batch in runs.values():
                latencies(client, path, single, 5, h)  # warm-up
                latencies(client, path, batch, 1, h)
            # Interleave the services so that load from the rest of the machine hits them alike.
            single_s: dict[str, list[float]] = {name: [] for name in runs}
            batch_s: dict[str, list[float]] = {name: [] for name in runs}
            for _ in range(args.single // 10):
                for name, (client, path, h, single, _) in runs.items():
                    single_s[name] += latencies(client, path, single, 10, h)
            for _ in range(args.batches):
                for name, (client, path, h, _, batch) in runs.items():
                    batch_s[name] += latencies(client, path, batch, 1, h)
            side_by_side = {
                "one_lead": {name: summary(single_s[name], 1) for name in runs},
                "thousand_leads": {name: summary(batch_s[name], 1000) for name in runs},
            }
            for name in ("ours", "ours_without_reasons"):
                side_by_side["one_lead"][f"p50_ratio_{name}_to_mlflow"] = round(
                    side_by_side["one_lead"][name]["p50_ms"] / side_by_side["one_lead"]["mlflow"]["p50_ms"], 3
                )
                side_by_side["thousand_leads"][f"throughput_ratio_{name}_to_mlflow"] = round(
                    side_by_side["thousand_leads"][name]["leads_per_s"]
                    / side_by_side["thousand_leads"]["mlflow"]["leads_per_s"],
                    2,
                )
            result["side_by_side"] = side_by_side
            result["explain_in_process"] = explaining

            body, n_events = histories_body(data, 1000, 50, cutoff)
            hist = latencies(o, "/api/v1/scores", body, max(3, args.batches // 4), headers)
            result["ours_histories"] = {**summary(hist, len(body["leads"])), "leads": len(body["leads"]),
                                        "events": n_events}  # fmt: skip

            url = f"/api/v1/leads/prioritized?as_of={stored_cutoff.isoformat().replace('+00:00', 'Z')}&limit=50"
            start = time.perf_counter()
            first = reader.get(url, headers=headers)
            cold = time.perf_counter() - start
            if first.status_code != 200:
                raise RuntimeError(f"prioritized: {first.status_code} {first.text[:300]}")
            warm = []
            for page in range(20):
                start = time.perf_counter()
                reader.get(f"{url}&offset={50 * page}", headers=headers).raise_for_status()
                warm.append(time.perf_counter() - start)
            result["ours_prioritized"] = {
                "stored_leads": args.stored_leads,
                "stored_events": n_stored_events,
                "open_leads": first.json()["total"],
                "first_request_s": round(cold, 2),
                "cached_page_p50_ms": round(statistics.median(warm) * 1000, 2),
            }
        o.close()
        m.close()
    finally:
        for process in processes:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    result["setup_s"] = {"train_and_register": round(setup_s, 1), "simulate_and_store": round(store_s, 1)}
    result["cpu_count"] = os.cpu_count()
    result["load_average_1m"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
