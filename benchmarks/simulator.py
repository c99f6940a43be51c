"""The simulated CRM: what it generates (counts, win rates, the oracle's accuracy) and how long it takes.

Every figure of the README's *The simulated CRM* paragraph, for ``simulate(n_leads, n_reps, months, seed)``:

- counts: leads, events, events per lead, the share of leads won; the share won among the leads created at
  least ``--old-days`` days before the data's end (old enough to have closed), overall and by source;
- the oracle: the ROC AUC of the simulator's true probability against the actual outcome (won within 90 days)
  at each weekly cutoff whose horizon lies inside the data: the lowest, the median and the highest;
- time: ``simulate()`` in process (wall and CPU seconds), then ``leadscore simulate`` as a user runs it, with
  CSV and with Parquet (wall and CPU seconds, each a fresh process), and the size of ``events.csv``.

Run: ``.venv/bin/python benchmarks/simulator.py [--leads 20000 --reps 12 --months 18 --seed 0] [--skip-cli]``.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from leadscore.simulation.simulator import HORIZON_DAYS, simulate


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def counts(sim, old_days: int) -> dict:
    leads, events = sim.data.leads, sim.data.events
    won = events.loc[events["type"] == "won", "lead_id"]
    is_won = leads["lead_id"].isin(won)
    old = leads["created_at"] <= sim.data.end - pd.Timedelta(days=old_days)
    by_source = is_won[old].groupby(leads.loc[old, "source"]).mean().sort_values(ascending=False)
    return {
        "leads": len(leads),
        "events": len(events),
        "events_per_lead": round(len(events) / len(leads), 2),
        "won_share": round(float(is_won.mean()), 4),
        "old_enough_days": old_days,
        "old_enough_leads": int(old.sum()),
        "old_enough_won_share": round(float(is_won[old].mean()), 4),
        "old_enough_won_share_by_source": {k: round(float(v), 4) for k, v in by_source.items()},
    }


def oracle_auc(sim) -> dict:
    """The truth's ROC AUC against the outcome at every weekly cutoff whose horizon lies inside the data."""
    horizon = pd.Timedelta(days=HORIZON_DAYS)
    truth = sim.truth[sim.truth["cutoff"] + horizon <= sim.data.end]
    events = sim.data.events
    won_at = truth["lead_id"].map(events[events["type"] == "won"].set_index("lead_id")["at"])
    won = (won_at > truth["cutoff"]) & (won_at <= truth["cutoff"] + horizon)
    per_cutoff = [
        roc_auc_score(won[mask], truth.loc[mask, "propensity"])
        for mask in (truth["cutoff"] == c for c in truth["cutoff"].unique())
        if 0 < won[mask].sum() < mask.sum()
    ]
    return {
        "cutoffs": len(per_cutoff),
        "per_cutoff_min": round(float(np.min(per_cutoff)), 4),
        "per_cutoff_median": round(float(np.median(per_cutoff)), 4),
        "per_cutoff_max": round(float(np.max(per_cutoff)), 4),
        "pooled": round(float(roc_auc_score(won, truth["propensity"])), 4),
    }


def cli_seconds(args: argparse.Namespace, fmt: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "crm"
        command = [str(Path(sys.executable).with_name("leadscore")), "simulate", "--leads", str(args.leads)]
        command += ["--reps", str(args.reps), "--months", str(args.months), "--seed", str(args.seed)]
        command += ["--out", str(out), "--format", fmt]
        before, tick = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        seconds, after = time.perf_counter() - tick, resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if done.returncode != 0:
            raise RuntimeError(f"leadscore simulate failed:\n{done.stderr[-3000:]}")
        sizes = {p.name: round(p.stat().st_size / 1e6, 1) for p in sorted(out.iterdir())}
    return {"seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1), "file_mb": sizes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=12)
    parser.add_argument("--months", type=int, default=18)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--old-days", type=int, default=180, help="created this long before the end: old enough")
    parser.add_argument("--skip-cli", action="store_true", help="Leave out the timed `leadscore simulate` runs.")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    cpu, wall = time.process_time(), time.perf_counter()
    sim = simulate(n_leads=args.leads, n_reps=args.reps, months=args.months, seed=args.seed)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    log(f"simulate(): {wall:.2f} s wall, {cpu:.2f} s CPU")
    out: dict[str, object] = {
        "benchmark": "simulator",
        "params": {"leads": args.leads, "reps": args.reps, "months": args.months, "seed": args.seed},
        "simulate_seconds": round(wall, 2),
        "simulate_cpu_seconds": round(cpu, 2),
        **counts(sim, args.old_days),
        "oracle_roc_auc": oracle_auc(sim),
    }
    if not args.skip_cli:
        for fmt in ("csv", "parquet"):
            out[f"cli_{fmt}"] = cli_seconds(args, fmt)
            log(f"leadscore simulate --format {fmt}: {out[f'cli_{fmt}']}")
    out["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    out["cores"] = os.cpu_count()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
