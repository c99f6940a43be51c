"""Benchmark: point-in-time features over millions of events, against the per-lead notebook approach.

Measures, on one core:

- the full feature set at one cutoff, end to end (``build_features``: encoding + features) and with the
  encoding done once beforehand (``prepare_events`` then ``features_at``), in events per second;
- the peak memory of the end-to-end build (RSS above the baseline, sampled) and of the whole process;
- a training set of 12 weekly snapshots (``build_training_set``, encoding included);
- the common notebook approach, ``events.groupby("lead_id").apply(per_lead_features)``, on a sample of leads,
  as a ratio to the vectorised builder, after checking that both give the same values on that sample.

Data: ``leadscore.simulation.simulator.simulate`` when ``--source simulator`` (or ``auto`` and it is importable), else a
vectorised synthetic generator of contract-shaped events (``--source synthetic``), so the event count is exact.

Run: ``.venv/bin/python benchmarks/features.py`` (add ``--quick`` for a small smoke run). The last line printed
is one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.compute as pc

from leadscore.data.contracts import STAGES, CrmData
from leadscore.features.builder import build_features, features_at, prepare_events
from leadscore.features.catalogue import CATALOGUE_VERSION, COUNTED_TYPES, WINDOWS
from leadscore.features.training_set import HORIZON_DAYS, build_training_set, weekly_cutoffs

DAY = pd.Timedelta(days=1)
TYPE_SHARES = {
    "email_sent": 0.22,
    "email_opened": 0.14,
    "email_replied": 0.05,
    "call": 0.14,
    "meeting_scheduled": 0.04,
    "meeting_held": 0.03,
    "meeting_cancelled": 0.006,
    "meeting_rejected": 0.004,
    "web_visit": 0.15,
    "form_submitted": 0.02,
    "stage_changed": 0.05,
    "webinar_attended": 0.05,
    "chat_message": 0.05,
    "linkedin_message": 0.04,
}


def pin_one_core() -> int | None:
    """Run on one core (the first allowed one) where the OS allows it."""
    try:
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return core
    except (AttributeError, OSError):
        return None


_STR = pd.StringDtype("pyarrow", na_value=np.nan)


def _arrow_str(values: pa.Array) -> pd.Series:
    """An arrow string array as a pandas ``str`` column, without going through Python objects."""
    return pd.Series(values.to_pandas(types_mapper={pa.string(): _STR}.get))


def _labels(codes: np.ndarray, names: list[str] | np.ndarray) -> pd.Series:
    """Strings from integer codes into ``names``; a negative code is a missing value."""
    indices = pa.array(codes.astype(np.int32), mask=codes < 0)
    return _arrow_str(pa.DictionaryArray.from_arrays(indices, pa.array(list(names))).cast(pa.string()))


def _numbered(prefix: str, numbers: np.ndarray) -> pd.Series:
    return _arrow_str(pc.binary_join_element_wise(prefix, pc.cast(pa.array(numbers), pa.string()), ""))


def synthetic_crm(n_leads: int, n_events: int, seed: int = 0, days: int = 400) -> CrmData:
    """Contract-shaped leads and exactly ``n_events`` events, generated with numpy (no per-lead loop)."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01", tz="UTC").value
    span = days * DAY.value
    created = start + rng.integers(0, span, n_leads)
    sources = ["web", "paid_ads", "outbound", "referral", "event", "partner"]
    leads = pd.DataFrame(
        {
            "lead_id": _numbered("L", np.arange(n_leads)),
            "created_at": pd.to_datetime(created, utc=True),
            "owner_id": _numbered("rep", rng.integers(0, 40, n_leads)),
            "source": _labels(rng.integers(0, len(sources), n_leads), sources),
            "segment": _labels(rng.choice(3, n_leads, p=[0.6, 0.3, 0.1]), ["SMB", "mid-market", "enterprise"]),
            "country": _labels(rng.integers(0, 6, n_leads), ["ES", "FR", "DE", "UK", "US", "MX"]),
            "company_size": rng.lognormal(3.5, 1.2, n_leads).round(),
        }
    )
    weight = rng.lognormal(0.0, 0.8, n_leads)
    per_lead = rng.multinomial(n_events, weight / weight.sum())
    lead = np.repeat(np.arange(n_leads), per_lead)
    life = rng.exponential(60.0, n_leads) * DAY.value
    at = created[lead] + (rng.random(n_events) * life[lead]).astype(np.int64)
    at = np.minimum(at, start + span)
    names = list(TYPE_SHARES) + ["won", "lost"]
    shares = np.array(list(TYPE_SHARES.values()))
    type_code = rng.choice(len(TYPE_SHARES), n_events, p=shares / shares.sum())
    # Close 30 % of the leads as won and 40 % as lost: their last event becomes the closing one.
    last = np.full(n_leads, -1, dtype=np.int64)
    np.maximum.at(last, lead, np.arange(n_events))  # events of a lead are contiguous: the last position
    latest = np.full(n_leads, np.iinfo(np.int64).min)
    np.maximum.at(latest, lead, at)
    fate = rng.random(n_leads)
    for code, chosen in ((len(TYPE_SHARES), fate < 0.3), (len(TYPE_SHARES) + 1, (fate >= 0.3) & (fate < 0.7))):
        rows = last[chosen & (last >= 0)]
        type_code[rows] = code
        at[rows] = latest[lead[rows]]  # the closing event is the lead's latest one
    is_ = {name: type_code == i for i, name in enumerate(names)}
    scheduled = is_["meeting_scheduled"] | is_["meeting_cancelled"] | is_["meeting_rejected"]
    scheduled_for = np.where(scheduled, at + rng.integers(1, 14 * DAY.value, n_events), np.iinfo(np.int64).min)
    duration = np.where(is_["call"], rng.exponential(300, n_events), np.nan)
    duration = np.where(is_["meeting_held"], rng.exponential(1800, n_events), duration)
    stage = np.where(is_["stage_changed"], rng.integers(1, len(STAGES), n_events), -1)
    amount = np.where(is_["won"] | (is_["stage_changed"] & (rng.random(n_events) < 0.3)), 1000.0, np.nan)
    subtype = np.where(is_["call"] & (rng.random(n_events) < 0.4), 0, -1)
    subtype = np.where(is_["lost"], 1, subtype)
    order = np.argsort(at, kind="stable")  # a CRM export is in time order
    owner = leads["owner_id"].take(lead[order]).reset_index(drop=True)
    events = pd.DataFrame(
        {
            "event_id": _numbered("E", np.arange(n_events)),
            "lead_id": leads["lead_id"].take(lead[order]).reset_index(drop=True),
            "at": pd.to_datetime(at[order], utc=True),
            "type": _labels(type_code[order], names),
            "rep_id": owner,
            "duration_s": duration[order],
            "scheduled_for": pd.to_datetime(scheduled_for[order].view("datetime64[ns]"), utc=True),
            "stage": _labels(stage[order], list(STAGES)),
            "amount": amount[order],
            "subtype": _labels(subtype[order], ["cold", "no_budget"]),
        }
    )
    return CrmData(leads=leads, events=events)


def load_data(source: str, n_leads: int, n_events: int, seed: int) -> tuple[CrmData, str]:
    if source in ("auto", "simulator"):
        try:
            from leadscore.simulation.simulator import simulate

            sim = simulate(n_leads=n_leads, n_reps=max(4, n_leads // 2_000), months=12, seed=seed)
            return sim.data, "simulator"
        except ImportError:
            if source == "simulator":
                raise
    return synthetic_crm(n_leads, n_events, seed), "synthetic"


# ---------------------------------------------------------------------------------------------------------------
# The common notebook approach: one pandas function per lead, applied with groupby().apply.


def notebook_features(leads: pd.DataFrame, events: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """The per-lead notebook way: filter to the cutoff, then ``groupby("lead_id").apply`` a feature function."""
    t = cutoff
    known = events[events["at"] <= t]
    closed = set(known.loc[known["type"].isin(["won", "lost"]), "lead_id"])
    open_leads = leads[(leads["created_at"] <= t) & ~leads["lead_id"].isin(closed)]
    known = known[known["lead_id"].isin(open_leads["lead_id"])]

    def per_lead(g: pd.DataFrame) -> pd.Series:
        row: dict[str, float] = {}
        age = (t - g["at"]) / DAY
        for event_type in COUNTED_TYPES:
            of_type = g["type"] == event_type
            for w, (days, _) in WINDOWS.items():
                row[f"{event_type}_{w}"] = int((of_type & ((age < days) if days else True)).sum())
        touch = g[g["type"] != "stage_changed"]
        touch_age = (t - touch["at"]) / DAY
        for w, (days, _) in WINDOWS.items():
            row[f"interactions_{w}"] = int((touch_age < days).sum()) if days else len(touch)
        row["days_since_last_interaction"] = touch_age.min() if len(touch) else np.nan
        row["days_since_first_interaction"] = touch_age.max() if len(touch) else np.nan
        previous = int(((touch_age >= 30) & (touch_age < 60)).sum())
        row["activity_momentum"] = (row["interactions_30d"] + 1) / (previous + 1)
        sent, replied = g[g["type"] == "email_sent"], g[g["type"] == "email_replied"]
        row["email_reply_rate"] = min(len(replied) / len(sent), 1.0) if len(sent) else np.nan
        if len(replied) and len(sent):
            pairs = pd.merge_asof(
                replied[["at"]].sort_values("at"), sent[["at"]].assign(sent_at=sent["at"]).sort_values("at"), on="at"
            )
            hours = ((pairs["at"] - pairs["sent_at"]) / pd.Timedelta(hours=1)).dropna()
            row["email_reply_hours_mean"] = hours.mean() if len(hours) else np.nan
        else:
            row["email_reply_hours_mean"] = np.nan
        calls = g[g["type"] == "call"]
        row["cold_calls_total"] = int((calls["subtype"] == "cold").sum())
        row["call_minutes_mean"] = calls["duration_s"].mean() / 60 if calls["duration_s"].notna().any() else np.nan
        planned = g[g["scheduled_for"].notna() & ~g["type"].isin(["meeting_cancelled", "meeting_rejected"])]
        planned = planned[(planned["type"] != "meeting_held") & (planned["scheduled_for"] > t)]
        cancels = g[g["type"].isin(["meeting_cancelled", "meeting_rejected"]) & g["scheduled_for"].notna()]
        if len(planned) and len(cancels):
            last_cancel = cancels.groupby("scheduled_for")["at"].max()
            cancel_at = planned["scheduled_for"].map(last_cancel)
            planned = planned[~(cancel_at >= planned["at"])]
        row["days_until_next_step"] = (planned["scheduled_for"].min() - t) / DAY if len(planned) else np.nan
        stages = g[(g["type"] == "stage_changed") & g["stage"].notna()].sort_values("at", kind="stable")
        row["stage"] = stages["stage"].iloc[-1] if len(stages) else "new"
        return pd.Series(row)

    return known.groupby("lead_id").apply(per_lead, include_groups=False)


# ---------------------------------------------------------------------------------------------------------------


class PeakRss:
    """Samples this process's RSS in a thread; ``peak_mb`` is the highest RSS above the starting one."""

    def __init__(self, every_s: float = 0.002):
        self.every_s, self.process = every_s, psutil.Process()
        self.baseline = self.peak = 0

    def __enter__(self) -> PeakRss:
        gc.collect()
        self.baseline = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.every_s)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)

    @property
    def peak_mb(self) -> float:
        return (self.peak - self.baseline) / 2**20


@dataclass
class Timing:
    """Best wall-clock and best CPU seconds over repeats (the CPU time is what one core spent, whatever the load)."""

    wall_s: float
    cpu_s: float


def best_of(n: int, fn) -> tuple[Timing, object]:
    walls, cpus, result = [], [], None
    for _ in range(n):
        result = None
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return Timing(min(walls), min(cpus)), result


def agreement(fast: pd.DataFrame, slow: pd.DataFrame) -> dict:
    """Largest difference between the vectorised and the notebook values on the leads both cover."""
    fast = fast.set_index("lead_id").loc[slow.index]
    worst, mismatched = 0.0, []
    for col in slow.columns:
        if col == "stage":
            if not (fast[col].astype(str).to_numpy() == slow[col].astype(str).to_numpy()).all():
                mismatched.append(col)
            continue
        a, b = fast[col].to_numpy(dtype=float), slow[col].to_numpy(dtype=float)
        same_nan = np.isnan(a) == np.isnan(b)
        diff = np.nanmax(np.abs(a - b), initial=0.0)
        worst = max(worst, float(diff))
        if not same_nan.all() or diff > 1e-6:
            mismatched.append(col)
    return {"columns_compared": len(slow.columns), "max_abs_diff": worst, "mismatched": mismatched}


def rate(n: int, seconds: float) -> int:
    return round(n / seconds) if seconds > 0 else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--sample-leads", type=int, default=2_000, help="leads for the notebook comparison")
    parser.add_argument("--snapshots", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--source", choices=["auto", "simulator", "synthetic"], default="synthetic")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    args = parser.parse_args()
    if args.quick:
        args.leads, args.events, args.sample_leads, args.repeat = 5_000, 120_000, 300, 1

    core = pin_one_core()
    generate, (data, source) = best_of(1, lambda: load_data(args.source, args.leads, args.events, args.seed))
    leads, events = data.leads, data.events
    n_events = len(events)
    cutoff = pd.Timestamp(data.end).floor("D")

    gc.collect()
    data_rss_mb = psutil.Process().memory_info().rss / 2**20
    with PeakRss() as memory:
        features = build_features(leads, events, cutoff)
    del features
    end_to_end, features = best_of(args.repeat, lambda: build_features(leads, events, cutoff))
    prepare, prepared = best_of(args.repeat, lambda: prepare_events(leads, events))
    one_cutoff, _ = best_of(args.repeat, lambda p=prepared: features_at(p, cutoff))
    del prepared

    labelled = [t for t in weekly_cutoffs(data) if t + pd.Timedelta(days=HORIZON_DAYS) <= data.end]
    snapshots = labelled[-args.snapshots :]
    with PeakRss() as training_memory:
        training_time, training = best_of(1, lambda: build_training_set(data, snapshots))

    rng = np.random.default_rng(args.seed)
    open_ids = features["lead_id"].to_numpy()
    sample_ids = rng.choice(open_ids, min(args.sample_leads, len(open_ids)), replace=False)
    sample_leads = leads[leads["lead_id"].isin(sample_ids)]
    sample_events = events[events["lead_id"].isin(sample_ids)]
    notebook, slow = best_of(1, lambda: notebook_features(sample_leads, sample_events, cutoff))
    sample_fast, fast = best_of(args.repeat, lambda: build_features(sample_leads, sample_events, cutoff))
    n_sample = len(sample_events)

    result = {
        "benchmark": "features",
        "source": source,
        "pinned_core": core,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "catalogue_version": CATALOGUE_VERSION,
        "leads": len(leads),
        "events": n_events,
        "cutoff": str(cutoff),
        "open_leads_at_cutoff": len(features),
        "feature_columns": features.shape[1] - 2,
        "generate_s": round(generate.wall_s, 1),
        "build_features_s": round(end_to_end.wall_s, 3),
        "build_features_cpu_s": round(end_to_end.cpu_s, 3),
        "build_features_events_per_s": rate(n_events, end_to_end.wall_s),
        "build_features_events_per_cpu_s": rate(n_events, end_to_end.cpu_s),
        "prepare_events_s": round(prepare.wall_s, 3),
        "prepare_events_cpu_s": round(prepare.cpu_s, 3),
        "features_at_s": round(one_cutoff.wall_s, 3),
        "features_at_cpu_s": round(one_cutoff.cpu_s, 3),
        "features_at_events_per_s": rate(n_events, one_cutoff.wall_s),
        "features_at_events_per_cpu_s": rate(n_events, one_cutoff.cpu_s),
        "data_rss_mb": round(data_rss_mb, 1),
        "build_features_peak_rss_mb": round(data_rss_mb + memory.peak_mb, 1),
        "build_features_extra_rss_mb": round(memory.peak_mb, 1),
        "training_set_snapshots": len(snapshots),
        "training_set_rows": len(training),
        "training_set_positive_rate": round(float(training["label"].mean()), 4) if len(training) else None,
        "training_set_s": round(training_time.wall_s, 2),
        "training_set_cpu_s": round(training_time.cpu_s, 2),
        "training_set_extra_rss_mb": round(training_memory.peak_mb, 1),
        "process_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "notebook_sample_leads": len(sample_leads),
        "notebook_sample_events": n_sample,
        "notebook_groupby_apply_s": round(notebook.wall_s, 3),
        "notebook_groupby_apply_cpu_s": round(notebook.cpu_s, 3),
        "vectorised_sample_s": round(sample_fast.wall_s, 4),
        "notebook_events_per_cpu_s": rate(n_sample, notebook.cpu_s),
        "speedup_same_sample_cpu": round(notebook.cpu_s / max(sample_fast.cpu_s, 1e-9), 1),
        "speedup_events_per_cpu_s_full_vs_notebook": round(
            rate(n_events, end_to_end.cpu_s) / max(rate(n_sample, notebook.cpu_s), 1), 1
        ),
        "notebook_agreement": agreement(fast, slow),
    }
    result["targets"] = {
        "events_per_s_min": 3_000_000,
        "peak_rss_mb_max": 2048,
        "training_set_s_max": 30,
        "met_on_cpu_time": bool(
            result["build_features_events_per_cpu_s"] >= 3_000_000
            and result["build_features_peak_rss_mb"] < 2048
            and result["training_set_cpu_s"] < 30
        ),
        "met_on_wall_time": bool(
            result["build_features_events_per_s"] >= 3_000_000
            and result["build_features_peak_rss_mb"] < 2048
            and result["training_set_s"] < 30
        ),
    }
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
