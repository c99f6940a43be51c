"""Model quality: the conversion model against the simulator's truth, on real UCI data, and its training time.

Three parts, each printed as it finishes, then one JSON object on the last line:

1. **Simulated CRM against the truth.** 24 months are simulated; the model only ever sees the first 18 (leads
   created and events up to then), exactly as ``leadscore train`` would on the 20,000-lead demo. Two out-of-time
   evaluations, each side by side with the oracle (the simulator's true probability on the same snapshots):
   - the validation period inside the 18 months, scored by the model fitted on the earlier part (the figures
     training uses to choose);
   - the next quarter after the 18 months (weekly cutoffs over 13 weeks, labels from what happened next),
     scored by the final model refitted on all 18 months: what a user of ``leadscore score`` gets.
   Targets: ROC AUC at least 0.97 of the oracle's, expected calibration error at most 0.02.
2. **UCI Bank Marketing** (real data, ``duration`` dropped, rows in time order, the last 20 % as the later
   period): every candidate, calibrated and not; the chosen model's AUC against the best candidate's and its
   calibration against the uncalibrated models'. The leakage guard is also run with ``duration`` kept.
3. **Calibration that survives a shift** (parts 1 and 2): on the later period, the chosen model's ECE, log loss and
   calibration slope side by side with a plain logistic regression's (scikit-learn's defaults on the same cleaned,
   one-hot encoded columns, fitted on all earlier rows), with the bootstrap standard error of each paired
   difference; on the simulator also for the next quarter, the final model against the plain logistic regression
   fitted on all 18 months.
4. **Training time**: ``leadscore train --data <demo>`` as a user runs it (CSV in, MLflow store out, first run
   on a new store, so MLflow's database migrations are included), wall-clock and CPU seconds, with the load
   average of the machine at the time, since the machine is shared: on a busy machine the wall-clock time
   says more about the neighbours than about leadscore, while the CPU time bounds what an idle machine needs.

Run: ``.venv/bin/python benchmarks/model_quality.py [--leads 20000] [--skip-cli]``.
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

from leadscore.data.contracts import CrmData
from leadscore.data.public import missing_message, shared_data_dir
from leadscore.features.training_set import build_training_set
from leadscore.model.candidates import plain_logistic_pipeline
from leadscore.model.flat_table import load_flat_table
from leadscore.model.later_period import FIGURES, compare_later_period
from leadscore.model.leakage import find_leaky_columns
from leadscore.model.metrics import evaluate
from leadscore.model.training import train, training_data_from_crm
from leadscore.simulation.simulator import simulate

ROOT = Path(__file__).resolve().parents[1]
UCI = shared_data_dir() / "uci_bank_marketing"
TRAIN_MONTHS, EXTRA_MONTHS, SEED, REPS = 18, 6, 7, 12
AUC_RATIO_TARGET, ECE_TARGET = 0.97, 0.02
NEXT_QUARTER_WEEKS = 13


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _days(stamps: pd.Series) -> np.ndarray:
    return ((pd.to_datetime(stamps, utc=True) - pd.Timestamp("1970-01-01", tz="UTC")) / pd.Timedelta(days=1)).to_numpy()


def truncate(data: CrmData, end: pd.Timestamp) -> CrmData:
    """What the CRM knew at ``end``: leads created and events that happened by then."""
    leads = data.leads[data.leads["created_at"] <= end].reset_index(drop=True)
    events = data.events[(data.events["at"] <= end) & data.events["lead_id"].isin(leads["lead_id"])]
    return CrmData(leads=leads, events=events.reset_index(drop=True))


def _against_oracle(y: np.ndarray, p: np.ndarray, oracle: np.ndarray) -> dict:
    model, truth = evaluate(y, p), evaluate(y, oracle)
    return {
        "n": int(len(y)),
        "base_rate": round(model["base_rate"], 4),
        "oracle_roc_auc": round(truth["roc_auc"], 4),
        "roc_auc": round(model["roc_auc"], 4),
        "auc_ratio": round(model["roc_auc"] / truth["roc_auc"], 4),
        "ece": round(model["ece"], 4),
        "oracle_ece": round(truth["ece"], 4),
        "log_loss": round(model["log_loss"], 4),
        "oracle_log_loss": round(truth["log_loss"], 4),
    }


def _paired_standard_errors(y: np.ndarray, ours: np.ndarray, baseline: np.ndarray, rounds: int = 200) -> dict:
    """Bootstrap standard errors of ours minus the baseline, for ECE and log loss, resampling the same rows."""
    rng = np.random.default_rng(0)
    differences = {figure: [] for figure in ("ece", "log_loss")}
    for _ in range(rounds):
        rows = rng.integers(0, len(y), len(y))
        a, b = evaluate(y[rows], ours[rows]), evaluate(y[rows], baseline[rows])
        for figure, values in differences.items():
            values.append(a[figure] - b[figure])
    return {f"se_{figure}_difference": round(float(np.std(v)), 4) for figure, v in differences.items()}


def later_pair(y: np.ndarray, ours: np.ndarray, baseline: np.ndarray) -> dict:
    """The later period's calibration, ours beside the plain logistic regression's, and the sampling error."""
    pairs = compare_later_period(y, ours, baseline)
    out = {k: round(v, 4) for k, v in pairs.items()}
    out |= _paired_standard_errors(y, ours, baseline)
    out["ours_at_least_as_good"] = {
        "ece": pairs["later_ece"] <= pairs["later_ece_logistic_baseline"],
        "log_loss": pairs["later_log_loss"] <= pairs["later_log_loss_logistic_baseline"],
        "calibration_slope_closer_to_1": abs(pairs["later_calibration_slope"] - 1)
        <= abs(pairs["later_calibration_slope_logistic_baseline"] - 1),
    }
    return out


def crm_part(n_leads: int) -> dict:
    log(f"simulating {n_leads} leads over {TRAIN_MONTHS + EXTRA_MONTHS} months")
    sim = simulate(n_leads=n_leads, n_reps=REPS, months=TRAIN_MONTHS + EXTRA_MONTHS, seed=SEED)
    start = pd.Timestamp(sim.data.leads["created_at"].min()).normalize()
    end = pd.Timestamp("2024-01-01", tz="UTC") + pd.DateOffset(months=TRAIN_MONTHS)
    known = truncate(sim.data, end)
    truth = sim.truth.assign(t=_days(sim.truth["cutoff"]))[["lead_id", "t", "propensity"]]

    tick = time.perf_counter()
    labelled = training_data_from_crm(known)
    result = train(labelled, progress=log)
    seconds = time.perf_counter() - tick
    log(f"trained in {seconds:.1f} s on {len(labelled)} snapshots; chosen {result.chosen.label}")

    holdout = result.holdout
    keys = pd.DataFrame({"lead_id": holdout.ids.astype(str), "t": holdout.times})
    oracle = keys.merge(truth, on=["lead_id", "t"], how="left")["propensity"].to_numpy()
    if np.isnan(oracle).any():
        raise RuntimeError(f"{int(np.isnan(oracle).sum())} validation snapshots have no simulator truth")
    validation = _against_oracle(holdout.y, result.chosen.probabilities, oracle)
    candidates = {
        r.label: _against_oracle(holdout.y, r.probabilities, oracle) | {"chosen": r is result.chosen}
        for r in result.results
    }

    mondays = pd.DatetimeIndex(sim.truth["cutoff"].unique()).sort_values()  # the simulator's truth is weekly
    cutoffs = list(mondays[(mondays > end) & (mondays <= end + pd.Timedelta(weeks=NEXT_QUARTER_WEEKS))])
    future = build_training_set(sim.data, cutoffs=cutoffs, horizon_days=labelled.horizon)
    features = future[list(labelled.X.columns)]
    p_future = result.model.predict_proba(features)[:, 1]
    future_keys = pd.DataFrame({"lead_id": future["lead_id"].astype(str).to_numpy(), "t": _days(future["cutoff"])})
    future_oracle = future_keys.merge(truth, on=["lead_id", "t"], how="left")["propensity"].to_numpy()
    next_quarter = _against_oracle(future["label"].to_numpy(), p_future, future_oracle)
    log(f"validation period: {validation}\nnext quarter: {next_quarter}")
    plain_all = plain_logistic_pipeline(labelled.kinds).fit(labelled.X, labelled.y)
    later = {
        "validation_period": result_later_pair(result),
        "next_quarter": later_pair(future["label"].to_numpy(), p_future, plain_all.predict_proba(features)[:, 1]),
    }
    log(f"later period against a plain logistic regression: {later}")
    return {
        "snapshots": len(labelled),
        "positives": labelled.positives,
        "train_seconds_in_process": round(seconds, 1),
        "chosen": result.chosen.label,
        "validation_period": validation,
        "next_quarter_final_model": next_quarter,
        "candidates_validation_period": candidates,
        "later_period_vs_plain_logistic": later,
        "leaky_columns": [str(leak) for leak in result.leaks],
        "simulated_from": str(start.date()),
    }


def result_later_pair(result) -> dict:
    """:func:`later_pair` for a training run's validation period (the baseline refitted as training does)."""
    from leadscore.model.later_period import baseline_probabilities

    holdout = result.holdout
    baseline = baseline_probabilities(result.train_part, holdout)
    pair = later_pair(holdout.y, result.chosen.probabilities, baseline)
    for figure in FIGURES:  # the same figures training logged
        assert np.isclose(pair[f"later_{figure}"], result.later_period[f"later_{figure}"], atol=1e-4, equal_nan=True)
    return pair


def uci_part() -> dict:
    path = UCI / "bank-additional-full.csv"
    log(f"UCI Bank Marketing: {path}")
    with_duration = load_flat_table(path, "y", row_order_is_time=True)
    leaks = find_leaky_columns(with_duration.X, with_duration.y, with_duration.kinds)
    data = load_flat_table(path, "y", drop=["duration"], row_order_is_time=True)
    result = train(data, progress=log)
    table = result.table()
    chosen = result.chosen.metrics
    uncalibrated = table[table["calibration"] == "none"]
    rows = [
        {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}
        for row in table[
            [
                "candidate",
                "calibration",
                "chosen",
                "roc_auc",
                "pr_auc",
                "log_loss",
                "brier",
                "ece",
                "lift_top10",
                "capture_top10",
                "lift_top20",
                "capture_top20",
                "base_rate",
                "mean_predicted",
            ]
        ].to_dict(orient="records")
    ]
    log(table.to_string())
    return {
        "rows": len(data),
        "train_base_rate": round(float(result.train_part.y.mean()), 4),
        "validation_base_rate": round(float(result.holdout.y.mean()), 4),
        "chosen": result.chosen.label,
        "chosen_roc_auc": round(chosen["roc_auc"], 4),
        "best_candidate_roc_auc": round(float(table["roc_auc"].max()), 4),
        "best_candidate_by_auc": table.loc[table["roc_auc"].idxmax(), ["candidate", "calibration"]].tolist(),
        "chosen_ece": round(chosen["ece"], 4),
        "best_uncalibrated_ece": round(float(uncalibrated["ece"].min()), 4),
        "later_period_vs_plain_logistic": result_later_pair(result),
        "candidates": rows,
        "duration_flagged": any(leak.column == "duration" for leak in leaks),
        "leaks_with_duration_kept": [str(leak) for leak in leaks],
        "seconds": round(result.seconds, 1),
    }


def cli_part(n_leads: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        demo = Path(tmp) / "demo"
        simulate(n_leads=n_leads, n_reps=REPS, months=TRAIN_MONTHS, seed=SEED).write(demo)
        env = os.environ | {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db"}
        load_before = os.getloadavg()[0]
        cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        tick = time.perf_counter()
        done = subprocess.run(
            [str(Path(sys.executable).with_name("leadscore")), "train", "--data", str(demo), "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - tick
        cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
        if done.returncode != 0:
            raise RuntimeError(f"leadscore train failed:\n{done.stderr[-3000:]}")
        summary = json.loads(done.stdout.strip().splitlines()[-1])
    log(f"leadscore train on the demo: {seconds:.1f} s (load average {load_before:.1f} before)")
    return {
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu, 1),  # what an idle machine needs at most, on one core
        "under_60_s": seconds < 60,
        "cpu_under_60_s": cpu < 60,
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
        "cores": os.cpu_count(),
        "threads_env": os.environ.get("LEADSCORE_THREADS"),
        "chosen": summary["chosen"],
        "promoted": summary.get("promoted"),
        "validation_roc_auc": round(summary["metrics"]["roc_auc"], 4),
    }


def _within(part: dict, period: str | None, figure: str, tolerance: float) -> bool | None:
    """Ours at most the plain logistic regression's figure plus ``tolerance`` (None when the part was skipped)."""
    pairs = part.get("later_period_vs_plain_logistic")
    if pairs is None:
        return None
    pair = pairs if period is None else pairs[period]
    return pair[f"later_{figure}"] <= pair[f"later_{figure}_logistic_baseline"] + tolerance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--skip-cli", action="store_true", help="Leave out the timed `leadscore train` run.")
    args = parser.parse_args()
    out: dict[str, object] = {"benchmark": "model_quality"}
    out["crm"] = crm_part(args.leads)
    uci_missing = missing_message("uci_bank_marketing")
    out["uci"] = uci_part() if uci_missing is None else {"skipped": uci_missing}
    out["train_cli"] = {"skipped": True} if args.skip_cli else cli_part(args.leads)
    validation, future = out["crm"]["validation_period"], out["crm"]["next_quarter_final_model"]
    uci = out["uci"]
    out["checks"] = {
        "crm_validation_auc_ratio_at_least_0.97": validation["auc_ratio"] >= AUC_RATIO_TARGET,
        "crm_validation_ece_at_most_0.02": validation["ece"] <= ECE_TARGET,
        "crm_next_quarter_auc_ratio_at_least_0.97": future["auc_ratio"] >= AUC_RATIO_TARGET,
        "crm_next_quarter_ece_at_most_0.02": future["ece"] <= ECE_TARGET,
        "crm_later_ece_at_most_plain_logistic_plus_0.006": _within(out["crm"], "validation_period", "ece", 0.006),
        "crm_next_quarter_ece_at_most_plain_logistic_plus_0.006": _within(out["crm"], "next_quarter", "ece", 0.006),
        "crm_later_log_loss_at_most_plain_logistic_plus_0.004": _within(
            out["crm"], "validation_period", "log_loss", 0.004
        ),
        "uci_later_ece_at_most_plain_logistic_plus_0.006": _within(uci, None, "ece", 0.006),
        "uci_later_log_loss_at_most_plain_logistic_plus_0.004": _within(uci, None, "log_loss", 0.004),
        "uci_chosen_better_calibrated_than_uncalibrated": uci.get("chosen_ece", 1)
        < uci.get("best_uncalibrated_ece", 0),
        "uci_duration_flagged_as_leaky": bool(uci.get("duration_flagged")),
        "train_cli_under_60_s": out["train_cli"].get("under_60_s"),
        "train_cli_cpu_under_60_s": out["train_cli"].get("cpu_under_60_s"),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
