"""Benchmark: a CRM with hundreds of sparse custom fields, against the same CRM without them, side by side.

The data: ``--leads`` leads (100,000 with ``--full``) with about ten events each (the synthetic CRM of
``benchmarks/features.py``, with its segment, country and company size), and ``--fields`` distinct custom fields
(500), each filled for a share of the leads drawn between 0.5 % and 20 % (text from a handful of values, or
numbers); one of them ("custom_0000", 20 %) says something about the outcome, the rest are noise.

Each arm has a new SQLite store, and each of its phases runs in a fresh process (so that its peak memory is its
own, not what an earlier phase left resident):

1. **ingest**: the leads as the API hands them to the store (base fields plus one attribute mapping per lead,
   ``Repository.ingest(leads=..., lead_attributes=...)``) in batches of ``--batch`` leads, then the events in
   batches of 50,000;
2. **training**: ``training_data_from_crm`` (the attribute selection included, default settings) on
   ``--cutoffs`` monthly snapshots, then ``train`` with the logistic candidate (leakage check off: it is timed
   elsewhere);
3. **prioritised list**: what ``GET /api/v1/leads/prioritized`` does for its first page: the open leads read from
   the store with the model's attributes only, scored with reasons, ranked, first 50.

For each phase: wall seconds, CPU seconds (the honest figure on a shared machine; SQLite runs in-process, so its
work counts) and the peak resident memory above the phase's start (sampled every 10 ms). The last line printed
is one JSON object.

Run: ``.venv/bin/python benchmarks/custom_fields.py`` (5,000 leads) or ``--full`` (100,000 leads).
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

HERE = Path(__file__).resolve().parent
PHASES = ("ingest", "training", "prioritized")
FIELD_VALUES = np.array(["red", "green", "blue", "amber", "violet"], dtype=object)


class PhasePeak:
    """Seconds and peak RSS above the start of a ``with`` block (sampled in a thread)."""

    def __enter__(self) -> PhasePeak:
        gc.collect()
        self.process = psutil.Process()
        self.start_rss = self.process.memory_info().rss
        self.peak = self.start_rss
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        self.started = time.perf_counter()
        self.cpu_started = time.process_time()
        return self

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.01)

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.started
        self.cpu_seconds = time.process_time() - self.cpu_started
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)

    def result(self) -> dict[str, float]:
        return {
            "seconds": round(self.seconds, 2),
            "cpu_seconds": round(self.cpu_seconds, 2),  # the honest figure on a shared, loaded machine
            "peak_mb": round((self.peak - self.start_rss) / 2**20, 1),
        }


def custom_fields(lead_ids: pd.Series, won: np.ndarray, n_fields: int, seed: int) -> pd.DataFrame:
    """``n_fields`` sparse columns, each filled for 0.5-20 % of the leads; the first leans towards won leads."""
    rng = np.random.default_rng(seed + 1)
    n = len(lead_ids)
    columns: dict[str, np.ndarray] = {}
    for i in range(n_fields):
        share = 0.2 if i == 0 else rng.uniform(0.005, 0.2)
        filled = rng.random(n) < share
        if i == 0:
            values = np.where(won & (rng.random(n) < 0.8), "gold", "basic").astype(object)
        elif i % 3 == 0:
            values = rng.normal(100.0, 30.0, n).round(1)
        else:
            values = FIELD_VALUES[rng.integers(0, len(FIELD_VALUES), n)]
        column = values.astype(object) if values.dtype == object else values
        columns[f"custom_{i:04d}"] = np.where(filled, column, None if column.dtype == object else np.nan)
    return pd.DataFrame(columns, index=lead_ids.index)


def attribute_mappings(frame: pd.DataFrame) -> list[dict]:
    """Each row's filled cells as a mapping: what the API's pydantic model hands the store per lead."""
    out: list[dict] = [{} for _ in range(len(frame))]
    for name in frame.columns:
        column = frame[name]
        present = np.flatnonzero(column.notna().to_numpy())
        for row, value in zip(present.tolist(), column.iloc[present].tolist(), strict=True):
            out[row][name] = value
    return out


def arm_data(arm: str, n_leads: int, n_fields: int, seed: int):
    """The arm's CRM (leads with their extra columns) and the extra columns alone."""
    sys.path.insert(0, str(HERE))
    from features import synthetic_crm  # the benchmarks' vectorised CRM generator

    from leadscore.data.contracts import LEADS, CrmData

    data = synthetic_crm(n_leads, n_events=10 * n_leads, seed=seed)
    won = data.leads["lead_id"].isin(data.events.loc[data.events["type"] == "won", "lead_id"]).to_numpy()
    extras = data.leads.drop(columns=list(LEADS.names))
    if arm == "with":
        extras = pd.concat([extras, custom_fields(data.leads["lead_id"], won, n_fields, seed)], axis=1)
    leads = pd.concat([data.leads[list(LEADS.names)], extras], axis=1)
    return CrmData(leads=leads, events=data.events), extras


def run_phase(phase: str, arm: str, folder: Path, args: argparse.Namespace, n_leads: int) -> dict:
    """One phase of one arm, in this (fresh) process: its seconds and peak memory above its start."""
    import joblib

    from leadscore.data.contracts import LEADS, CrmData
    from leadscore.store import Repository

    repo = Repository.from_url(f"sqlite:///{folder / 'leadscore.db'}")
    if phase == "ingest":
        crm, extras = arm_data(arm, n_leads, args.fields, args.seed)
        batches = [
            (crm.leads.iloc[i : i + args.batch][list(LEADS.names)], attribute_mappings(extras.iloc[i : i + args.batch]))
            for i in range(0, n_leads, args.batch)
        ]  # made before timing: the API has them from the request body
        with PhasePeak() as leads_phase:
            for base, mappings in batches:
                repo.ingest(leads=base, lead_attributes=mappings)
        del batches
        with PhasePeak() as events_phase:
            repo.import_crm(CrmData(leads=crm.leads.iloc[:0], events=crm.events))
        return {
            "events": len(crm.events),
            "attribute_names": extras.shape[1],
            "filled_attribute_values": int(extras.notna().to_numpy().sum()),
            "store_mb": round((folder / "leadscore.db").stat().st_size / 2**20, 1),
            "ingest_leads": leads_phase.result(),
            "ingest_events": events_phase.result(),
        }
    if phase == "training":
        from leadscore.model.training import train, training_data_from_crm
        from leadscore.registry.card import model_card

        crm, _ = arm_data(arm, n_leads, args.fields, args.seed)
        end = crm.events["at"].max()
        cutoffs = pd.date_range(end=end - pd.Timedelta(days=90), periods=args.cutoffs, freq="28D").floor("D")
        with PhasePeak() as training:
            labelled = training_data_from_crm(crm, horizon_days=90, cutoffs=cutoffs)
            result = train(labelled, candidates=["logistic"], check_leakage=False)
        joblib.dump((result.model, model_card(result), end), folder / "model.joblib")
        return {
            "training": training.result() | {"rows": len(result.data), "features": result.data.X.shape[1]},
            "attributes_chosen": labelled.choices["attributes"]["chosen"],
            "validation_roc_auc": round(result.chosen.metrics["roc_auc"], 4) if result.chosen else None,
        }
    from leadscore.serving.prioritize import rank, score_open_leads
    from leadscore.serving.scorer import Scorer

    model, card, end = joblib.load(folder / "model.joblib")
    scorer = Scorer(model, card)
    as_of = end - pd.Timedelta(days=30)
    with PhasePeak() as listing:
        stored = repo.load_crm(open_at=as_of.to_pydatetime(), attributes=scorer.attributes)
        table = score_open_leads(scorer, stored, as_of, follow_up_days=14)
        page = rank(table).head(50)
    return {"prioritized_first_page": listing.result() | {"open_leads": len(table), "first": page["lead_id"].iloc[0]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=5_000)
    parser.add_argument("--fields", type=int, default=500)
    parser.add_argument("--cutoffs", type=int, default=6, help="monthly training snapshots")
    parser.add_argument("--batch", type=int, default=1_000, help="leads per ingest request")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--full", action="store_true", help="the issue's size: 100,000 leads")
    parser.add_argument("--arm", choices=["with", "without"], help=argparse.SUPPRESS)  # in a subprocess:
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)  # one phase of one arm
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    n_leads = 100_000 if args.full else args.leads
    if args.phase:
        print(json.dumps(run_phase(args.phase, args.arm, args.folder, args, n_leads)))
        return
    from leadscore.store import upgrade_database

    arms = {}
    for arm in ("without", "with"):
        folder = Path(tempfile.mkdtemp(prefix=f"custom-fields-{arm}-"))
        upgrade_database(f"sqlite:///{folder / 'leadscore.db'}")
        arms[arm] = {"arm": arm, "leads": n_leads}
        for phase in PHASES:  # each phase in a fresh process: its peak memory is its own
            command = [sys.executable, __file__, "--arm", arm, "--phase", phase, "--folder", str(folder)]
            command += ["--leads", str(n_leads), "--fields", str(args.fields), "--cutoffs", str(args.cutoffs)]
            command += ["--batch", str(args.batch), "--seed", str(args.seed)]
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            arms[arm].update(json.loads(out.strip().splitlines()[-1]))
        shutil.rmtree(folder)
        print(f"{arm:>8} custom fields: {json.dumps(arms[arm])}", flush=True)
    ratio = {  # on CPU seconds: wall time on a shared machine measures the neighbours too
        phase: round(arms["with"][phase]["cpu_seconds"] / max(arms["without"][phase]["cpu_seconds"], 1e-9), 2)
        for phase in ("ingest_leads", "ingest_events", "training", "prioritized_first_page")
    }
    summary = {"benchmark": "custom_fields", "fields": args.fields, **arms, "cpu_ratio_with_over_without": ratio}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
