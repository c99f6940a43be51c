"""Funnel, rep performance and goal progress over 5 million events and 200,000 leads, on one core.

Run: ``.venv/bin/python benchmarks/analytics.py [--leads 200000 --events 5000000 --repeat 3]``

The data is generated here, vectorised, in the contracts' normalised form (the simulator is faithful but takes
minutes at this size, and the timing only needs realistic shapes: a stage ladder per lead, closings for about
half of them, a mix of activity types, 50 reps, goals for every metric, period and rep).

Beside each library function, the same figures computed the usual pandas way are timed on the same data
(a Python function per lead's group for stage stays, one boolean mask per goal), on a sample where they would take
minutes, and scaled up linearly; their results are checked against the library's on that sample. The last line
printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import pandas as pd

from leadscore.analytics import funnel, funnel_summary, goal_progress, rep_performance
from leadscore.data.contracts import EVENTS, GOAL_METRICS, GOAL_PERIODS, LEADS, STAGES, CrmData, validate

START = pd.Timestamp("2024-01-01", tz="UTC")
SPAN_S = 540 * 86_400  # 18 months
ACTIVITY = np.array(
    [
        "email_sent",
        "email_opened",
        "email_replied",
        "call",
        "web_visit",
        "meeting_scheduled",
        "meeting_held",
        "meeting_cancelled",
        "meeting_rejected",
        "form_submitted",
    ]  # fmt: skip
)
ACTIVITY_P = np.array([0.30, 0.12, 0.04, 0.25, 0.14, 0.05, 0.04, 0.02, 0.01, 0.03])


def _ts(seconds: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex((START.value + seconds.astype(np.int64) * 10**9).view("datetime64[ns]")).tz_localize("UTC")


def generate(n_leads: int, n_events: int, n_reps: int = 50, seed: int = 0) -> CrmData:
    """A synthetic CRM of exactly ``n_events`` events over ``n_leads`` leads, already in normal form."""
    rng = np.random.default_rng(seed)
    reps = np.array([f"rep_{i:02d}" for i in range(n_reps)])
    lead_ids = np.char.add("lead_", np.arange(n_leads).astype(str))
    created = np.sort(rng.integers(0, SPAN_S - 30 * 86_400, n_leads))
    owner = rng.integers(0, n_reps, n_leads)
    leads = pd.DataFrame(
        {
            "lead_id": pd.array(lead_ids, dtype="str"),
            "created_at": _ts(created),
            "owner_id": pd.array(reps[owner], dtype="str"),
            "source": pd.array(rng.choice(["web", "referral", "ads", "event"], n_leads), dtype="str"),
            "segment": pd.array(rng.choice(["SMB", "mid-market", "enterprise"], n_leads), dtype="str"),
        }
    )
    # Stage ladder: each lead climbs 0-4 stages after "new"; 45 % close (1 in 3 won).
    climbed = rng.binomial(4, 0.45, n_leads)
    stage_lead = np.repeat(np.arange(n_leads), climbed + 1)
    step = np.arange(len(stage_lead)) - np.repeat(np.cumsum(climbed + 1) - (climbed + 1), climbed + 1)
    stage_at = created[stage_lead] + step * rng.integers(86_400, 10 * 86_400, len(stage_lead))
    closes = rng.random(n_leads) < 0.45
    close_lead = np.flatnonzero(closes)
    last_stage = created + climbed * 10 * 86_400
    close_at = last_stage[close_lead] + rng.integers(86_400, 20 * 86_400, len(close_lead))
    won = rng.random(len(close_lead)) < (0.15 + 0.12 * climbed[close_lead])
    n_activity = n_events - len(stage_lead) - len(close_lead)
    act_lead = rng.integers(0, n_leads, n_activity)
    act_at = created[act_lead] + rng.exponential(20 * 86_400, n_activity).astype(np.int64)
    act_type = rng.choice(len(ACTIVITY), n_activity, p=ACTIVITY_P)

    lead = np.concatenate([stage_lead, close_lead, act_lead])
    at = np.minimum(np.concatenate([stage_at, close_at, act_at]), SPAN_S)
    types = np.concatenate([np.full(len(stage_lead), "stage_changed"), np.where(won, "won", "lost"),
                            ACTIVITY[act_type]])  # fmt: skip
    n = len(lead)
    is_call = types == "call"
    stage = np.where(types == "stage_changed", np.asarray(STAGES, dtype=object)[np.minimum(
        np.concatenate([step, np.zeros(n - len(step), np.int64)]), 4)], None)  # fmt: skip
    subtype = np.where(is_call & (rng.random(n) < 0.4), "cold", None)
    subtype = np.where(types == "lost", rng.choice(["price", "timing", "competitor", "no_response"], n), subtype)
    rep = reps[owner[lead]].astype(object)
    rep[rng.random(n) < 0.05] = None  # some events name no one: they count for the lead's owner
    events = pd.DataFrame(
        {
            "event_id": pd.array(np.char.add("e", np.arange(n).astype(str)), dtype="str"),
            "lead_id": pd.array(lead_ids[lead], dtype="str"),
            "at": _ts(at),
            "type": pd.array(types, dtype="str"),
            "rep_id": pd.array(rep, dtype="str"),
            "duration_s": np.where(is_call, rng.gamma(2.0, 120.0, n), np.nan),
            "scheduled_for": pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns, UTC]"),
            "stage": pd.array(stage, dtype="str"),
            "amount": np.where(types == "won", rng.lognormal(9, 0.6, n).round(), np.nan),
            "subtype": pd.array(subtype, dtype="str"),
        }
    )
    goals = _goals(reps)
    return CrmData(leads=leads, events=events, goals=goals)


def _goals(reps: np.ndarray) -> pd.DataFrame:
    scopes = ["team", *reps]
    rows = [(m, p, 100.0, START, s) for m in GOAL_METRICS if m != "expenses" for p in GOAL_PERIODS for s in scopes]
    return pd.DataFrame(rows, columns=["metric", "period", "target", "start", "scope"]).astype(
        {"metric": "str", "period": "str", "scope": "str", "start": "datetime64[ns, UTC]"}
    )


def check_normal_form(data: CrmData) -> None:
    """The generated tables are what `validate` would return (checked on a sample: it is slow on 5 M rows)."""
    for contract, frame in ((LEADS, data.leads), (EVENTS, data.events)):
        sample = frame.head(2000)
        validated = validate(contract, sample)
        for column in validated.columns:
            if str(validated[column].dtype) != str(sample[column].dtype):
                raise AssertionError(f"{contract.name}.{column}: {sample[column].dtype} != {validated[column].dtype}")


def timed(fn, repeat: int) -> tuple[float, float, object]:
    """Median wall-clock and CPU seconds of ``repeat`` calls, and the last result.

    On a shared machine the wall clock also counts the time other processes hold the core; CPU time is the
    work this process did on its one core, which is what the 2 s budget is about. Both are reported.
    """
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus), result


def naive_stage_stays(data: CrmData, lead_ids: np.ndarray) -> pd.Series:
    """Days in "contacted" per lead, the usual way: one Python function call per lead's group."""
    ev = data.events[data.events["lead_id"].isin(lead_ids)]
    created = data.leads.set_index("lead_id")["created_at"]

    def stays(lead_id: str, g: pd.DataFrame) -> float:
        g = g.sort_values("at")
        closing = g[g["type"].isin(["won", "lost"])]
        end = closing["at"].iloc[0] if len(closing) else None
        st = g[(g["type"] == "stage_changed") & ((g["at"] <= end) if end is not None else True)]
        rows = [(created[lead_id], "new")] + list(zip(st["at"], st["stage"], strict=True))
        if end is not None:
            rows.append((end, "_closed"))
        total, seen, prev = 0.0, False, None
        for (t0, s0), (t1, _) in zip(rows, rows[1:], strict=False):
            if s0 == prev:
                continue
            prev = s0
            if s0 == "contacted" and t1 > t0:
                total += (t1 - t0).total_seconds() / 86_400
                seen = True
        return total if seen else np.nan

    return pd.Series({lead_id: stays(lead_id, g) for lead_id, g in ev.groupby("lead_id")}).dropna()


def naive_goal_actuals(data: CrmData, goals: pd.DataFrame, lo, hi) -> list[float]:
    """Goal actuals the usual way: a boolean mask over the whole events table per goal."""
    ev = data.events
    owner = ev["lead_id"].map(data.leads.set_index("lead_id")["owner_id"])
    rep = ev["rep_id"].fillna(owner)
    type_of = {"meetings": "meeting_held", "calls": "call", "emails": "email_sent"}
    out = []
    for g in goals.itertuples(index=False):
        mask = (ev["type"] == type_of[g.metric]) & (ev["at"] >= lo) & (ev["at"] < hi)
        if g.scope != "team":
            mask &= rep == g.scope
        out.append(float(mask.sum()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--naive-leads", type=int, default=2_000, help="sample size for the per-lead baseline")
    args = parser.parse_args()

    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    t0 = time.perf_counter()
    data = generate(args.leads, args.events)
    generate_s = time.perf_counter() - t0
    check_normal_form(data)
    as_of = data.end + pd.Timedelta(1, "ns")
    print(f"generated {len(data.leads):,} leads, {len(data.events):,} events in {generate_s:.1f} s", file=sys.stderr)

    runs = {
        "funnel": lambda: funnel(data),
        "funnel_by_owner": lambda: funnel(data, group_by="owner"),
        "funnel_summary_by_week": lambda: funnel_summary(data, group_by="period", period="week"),
        "rep_performance": lambda: rep_performance(data),
        "goal_progress": lambda: goal_progress(data, as_of),
    }
    timings, results = {}, {}
    for name, fn in runs.items():
        wall, cpu, results[name] = timed(fn, args.repeat)
        timings[f"{name}_s"] = round(wall, 3)
        timings[f"{name}_cpu_s"] = round(cpu, 3)
    stages, perf, progress = results["funnel"], results["rep_performance"], results["goal_progress"]

    # The per-lead baseline for time in stage, on a sample, checked against the library on the same sample.
    sample = data.leads["lead_id"].to_numpy()[:: max(1, args.leads // args.naive_leads)]
    sub = CrmData(
        leads=data.leads[data.leads["lead_id"].isin(sample)],
        events=data.events[data.events["lead_id"].isin(sample)],
    )
    naive_s, _, naive = timed(lambda: naive_stage_stays(sub, sample), 1)
    ours_on_sample = funnel(sub).set_index("stage").loc["contacted", "median_days_in_stage"]
    assert abs(naive.median() - ours_on_sample) < 1e-9, (naive.median(), ours_on_sample)

    # The per-goal mask baseline on the activity goals, checked against goal_progress.
    act = progress[progress["metric"].isin(["meetings", "calls", "emails"]) & (progress["period"] == "month")]
    chosen = act.head(30)
    lo, hi = chosen["period_start"].iloc[0], as_of
    mask_s, _, mask_actuals = timed(lambda: naive_goal_actuals(data, chosen, lo, hi), 1)
    assert np.allclose(mask_actuals, chosen["actual"].to_numpy()), "per-goal masks disagree with goal_progress"

    result = {
        "benchmark": "analytics",
        "command": " ".join([".venv/bin/python benchmarks/analytics.py", *sys.argv[1:]]),
        "cores": 1,
        "leads": len(data.leads),
        "events": len(data.events),
        "goals": len(data.goals),
        "repeat": args.repeat,
        "load_average_1min": round(os.getloadavg()[0], 2),
        **timings,
        "goal_rows": len(progress),
        "reps": int((~perf["rep_id"].isin(["team", "team_median"])).sum()),
        "all_under_2s_cpu": bool(max(v for k, v in timings.items() if k.endswith("_cpu_s")) < 2.0),
        "all_under_2s_wall": bool(max(v for k, v in timings.items() if not k.endswith("_cpu_s")) < 2.0),
        "baseline_per_lead_groups_stage_stays_s_extrapolated": round(naive_s * len(data.leads) / len(sub.leads), 1),
        "baseline_sample_leads": len(sub.leads),
        "baseline_mask_per_goal_s_extrapolated": round(mask_s * len(progress) / len(chosen), 1),
        "won_leads": int(stages.set_index("stage").loc["won", "leads_reached"]),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
