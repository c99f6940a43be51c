"""Unknown event types: the generic path against the known-type path and a plain baseline, on the same test rows.

The simulated CRM is built once, then seen three ways, all on the very same weekly snapshots (labelled with the
same horizon) and the same time-ordered split (the latest ``--test-fraction`` of the snapshots is the test):

- **known types**: leadscore's model on the data as the simulator writes it (the catalogue knows every type);
- **opaque codes**: leadscore's model on the same data with every event type but won/lost renamed to an
  opaque code (``act_00``, ...) and the columns whose meaning comes with a type (stage, amount, scheduled_for,
  duration_s, subtype) dropped (:func:`leadscore.simulation.opaque.opaque_event_types`): every activity is an
  unknown type; the vocabulary is chosen from the training events (types with at least 1 % of the events, at
  most 30) and each type gets counts over windows, recency, momentum and a place in the last/previous type;
- **plain baseline**: scikit-learn's ``HistGradientBoostingClassifier()`` with its defaults, on per-type event
  counts so far, the lead's age and the days since its last event (the twenty-line model of issue 13).

Each is trained on the earlier snapshots and scored on the test rows: ROC AUC and expected calibration error
(ECE, 10 equal-width bins, as leadscore reports it), side by side. leadscore's rows are its chosen model
(candidates compared on their own later slice of the training period, calibrated, refitted on all of it).

Run: ``.venv/bin/python benchmarks/unknown_types.py [--leads 4000 --months 15 --seed 3]`` (a couple of minutes
at the default size; ``--leads 20000 --months 18`` is the size of the demo). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from leadscore.data.contracts import CLOSING_EVENT_TYPES, CrmData
from leadscore.features.history import prepare_events
from leadscore.features.training_set import build_training_set, label_snapshots, weekly_cutoffs
from leadscore.features.vocabulary import VocabularyRule
from leadscore.model.event_vocabulary import training_vocabulary
from leadscore.model.metrics import evaluate
from leadscore.model.splits import time_split
from leadscore.model.training import labelled_from_training_set, train
from leadscore.simulation.opaque import opaque_event_types
from leadscore.simulation.simulator import simulate


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def baseline_features(data: CrmData, snapshots: pd.DataFrame) -> pd.DataFrame:
    """Per-type counts of the events known at each snapshot's cutoff, the lead's age and days since its last event.

    Written the plain way a data scientist would (a merge and a groupby), independent of leadscore's builder.
    """
    events = data.events[~data.events["type"].isin(CLOSING_EVENT_TYPES)][["lead_id", "at", "type"]]
    pairs = snapshots[["lead_id", "cutoff"]].drop_duplicates().merge(events, on="lead_id")
    pairs = pairs[pairs["at"] <= pairs["cutoff"]]
    counts = pairs.pivot_table(index=["lead_id", "cutoff"], columns="type", values="at", aggfunc="count", fill_value=0)
    last = pairs.groupby(["lead_id", "cutoff"])["at"].max().rename("last_at")
    frame = snapshots[["lead_id", "cutoff"]].join(counts, on=["lead_id", "cutoff"]).join(last, on=["lead_id", "cutoff"])
    created = data.leads.set_index("lead_id")["created_at"]
    frame["age_days"] = (frame["cutoff"] - frame["lead_id"].map(created)) / pd.Timedelta(days=1)
    frame["days_since_last_event"] = (frame["cutoff"] - frame["last_at"]) / pd.Timedelta(days=1)
    type_columns = list(counts.columns)
    frame[type_columns] = frame[type_columns].fillna(0)
    return frame[[*type_columns, "age_days", "days_since_last_event"]]


def paired_auc_noise(y: np.ndarray, p_a: np.ndarray, p_b: np.ndarray, leads: np.ndarray, n: int) -> float:
    """The standard deviation of AUC(a) - AUC(b) over ``n`` bootstrap resamples of the leads (all of a lead's
    test rows together, as its weekly snapshots are not independent): the sampling noise of the comparison."""
    codes, uniques = pd.factorize(leads)
    rows_of = pd.Series(np.arange(len(codes))).groupby(codes).indices
    rng = np.random.default_rng(0)
    diffs = []
    for _ in range(n):
        rows = np.concatenate([rows_of[i] for i in rng.integers(0, len(uniques), len(uniques))])
        if 0 < y[rows].sum() < len(rows):
            diffs.append(roc_auc_score(y[rows], p_a[rows]) - roc_auc_score(y[rows], p_b[rows]))
    return float(np.std(diffs, ddof=1))


def leadscore_path(frame: pd.DataFrame, horizon: float, test_fraction: float) -> dict:
    """leadscore's model trained on the earlier snapshots, scored on the test rows."""
    labelled = labelled_from_training_set(frame, horizon)
    split = time_split(labelled.times, horizon, test_fraction)
    started = time.perf_counter()
    result = train(labelled.subset(split.train), check_leakage=False)
    seconds = time.perf_counter() - started
    test = labelled.subset(split.valid)
    p = result.model.predict_proba(test.X)[:, 1]
    metrics = evaluate(test.y, p)
    return {
        "roc_auc": round(metrics["roc_auc"], 4),
        "ece": round(metrics["ece"], 4),
        "probabilities": p,
        "chosen": result.chosen.label if result.chosen else "cold start",
        "n_features": labelled.X.shape[1],
        "train_seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=4000)
    parser.add_argument("--reps", type=int, default=8)
    parser.add_argument("--months", type=int, default=15)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--horizon", type=float, default=90.0, help="label horizon in days")
    parser.add_argument("--test-fraction", type=float, default=0.2, help="latest share of snapshots as the test")
    parser.add_argument(
        "--bootstrap", type=int, default=200, help="resamples of the test leads for the noise of the AUC difference"
    )
    args = parser.parse_args()

    log(f"simulating {args.leads} leads over {args.months} months (seed {args.seed})")
    data = simulate(n_leads=args.leads, n_reps=args.reps, months=args.months, seed=args.seed).data
    opaque, codes = opaque_event_types(data)
    cutoffs = weekly_cutoffs(data)

    # The test rows: the latest share of the snapshots, as leadscore's own split draws it.
    snapshots = label_snapshots(data, cutoffs, args.horizon, prepared=prepare_events(data.leads, data.events))
    snapshots = snapshots.sort_values(["cutoff", "lead_id"], kind="stable").reset_index(drop=True)
    days = ((snapshots["cutoff"] - pd.Timestamp("1970-01-01", tz="UTC")) / pd.Timedelta(days=1)).to_numpy()
    split = time_split(days, args.horizon, args.test_fraction)
    test_start = snapshots["cutoff"].iloc[split.valid].min()
    log(f"{len(snapshots):,} snapshots; {len(split.valid):,} test rows from {test_start.date()}")

    results: dict[str, dict] = {}
    log("known types: building the training set and training")
    known = build_training_set(data, cutoffs, args.horizon)
    results["known_types"] = leadscore_path(known, args.horizon, args.test_fraction)
    log(f"  {dict((k, v) for k, v in results['known_types'].items() if k != 'probabilities')}")

    # The vocabulary from the events known at the last cutoff the model trains on (never the test period's).
    vocabulary = training_vocabulary(
        opaque,
        horizon_days=args.horizon,
        cutoffs=cutoffs,
        validation_fraction=args.test_fraction,
        rule=VocabularyRule(),
    )
    log(f"opaque codes: {vocabulary.describe()}")
    generic = build_training_set(opaque, cutoffs, args.horizon, extra_types=vocabulary.types)
    results["opaque_codes"] = leadscore_path(generic, args.horizon, args.test_fraction)
    results["opaque_codes"]["vocabulary"] = len(vocabulary.types)
    log(f"  {dict((k, v) for k, v in results['opaque_codes'].items() if k != 'probabilities')}")

    log("plain baseline: HistGradientBoostingClassifier() on per-type counts, age, days since last event")
    X = baseline_features(opaque, snapshots)
    y = snapshots["label"].to_numpy()
    started = time.perf_counter()
    baseline = HistGradientBoostingClassifier(random_state=0).fit(X.iloc[split.train], y[split.train])
    seconds = time.perf_counter() - started
    metrics = evaluate(y[split.valid], baseline.predict_proba(X.iloc[split.valid])[:, 1])
    results["plain_baseline"] = {
        "roc_auc": round(metrics["roc_auc"], 4),
        "ece": round(metrics["ece"], 4),
        "n_features": X.shape[1],
        "train_seconds": round(seconds, 1),
    }
    log(f"  {results['plain_baseline']}")

    # The same rows everywhere: the training sets hold exactly the labelled snapshots, in the same order.
    for frame in (known, generic):
        ordered = frame.sort_values(["cutoff", "lead_id"], kind="stable").reset_index(drop=True)
        assert ordered[["lead_id", "cutoff", "label"]].equals(snapshots[["lead_id", "cutoff", "label"]])

    y_test = y[split.valid]
    noise = paired_auc_noise(
        y_test,
        results["opaque_codes"].pop("probabilities"),
        results["known_types"].pop("probabilities"),
        snapshots["lead_id"].to_numpy()[split.valid],
        args.bootstrap,
    )
    log(f"sampling noise of the generic - known AUC difference (paired bootstrap by lead): sd {noise:.4f}")

    print(f"{'path':16} {'ROC AUC':>8} {'ECE':>7}  features")
    for name, r in results.items():
        print(f"{name:16} {r['roc_auc']:8.4f} {r['ece']:7.4f}  {r['n_features']}")
    summary = {
        "leads": args.leads,
        "months": args.months,
        "seed": args.seed,
        "horizon_days": args.horizon,
        "snapshots": len(snapshots),
        "test_rows": len(split.valid),
        "test_positives": int(y[split.valid].sum()),
        "test_from": str(test_start.date()),
        "opaque_types": len(codes),
        **{f"{name}_{k}": v for name, r in results.items() for k, v in r.items()},
        "generic_minus_known_auc": round(results["opaque_codes"]["roc_auc"] - results["known_types"]["roc_auc"], 4),
        "generic_minus_known_auc_sd": round(noise, 4),
        "generic_minus_baseline_auc": round(
            results["opaque_codes"]["roc_auc"] - results["plain_baseline"]["roc_auc"], 4
        ),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
