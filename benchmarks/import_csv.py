"""Loading a mapped CRM export (foreign column names, no event ids) against plain ``pd.read_csv`` of the same files.

Run: ``.venv/bin/python benchmarks/import_csv.py [--events 1000000] [--repeat 3] [--keep DIR]``

An export shaped like a real one is written first: ``cases.csv`` (one row per lead, 20 activities per lead) and
``activities.csv`` (``CaseID``, ``Activity`` named in words, ``Timestamp`` in local time without an offset,
``Resource``, ``Duration``, ``Stage``, ``Amount``, ``Reason`` and a free-text ``Note`` column, blanks where a
field does not apply, no event id). Then, on the same files, each repeat times

- ours: ``load_dataset(folder, mapping)``, the whole of ``leadscore check``'s loading: read, rename, translate the
  activity names, validate both tables against the contracts (timestamps parsed in Europe/Madrid, numbers,
  keys, events referring to known leads) and derive the event ids;
- plain pandas: ``pd.read_csv`` of the same two files with default options (types guessed, nothing checked);
- pandas as text: ``pd.read_csv(dtype=str, keep_default_na=False, na_values=[""])``, the way the loader read
  files before (every value as text, so the contracts decide what is a number or a time), reading alone.

Each side's best wall time is reported as events per second, with the ratios, and the CPU time (user + system,
all threads) of that run beside it: on a shared machine the wall time also counts the other processes' turns,
so the load average is printed too. The last line printed is one JSON object; it holds the CLI's start-up
figures as well (``benchmarks/cli_startup.py``) unless ``--no-startup``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from leadscore.data.io import ColumnMapping, load_dataset

EVENTS_PER_LEAD = 20
START = pd.Timestamp("2024-01-01")
SPAN_DAYS = 540
# Their activity names (translated by the mapping), with how often each occurs.
ACTIVITIES = {
    "Send email": ("email_sent", 0.30),
    "Email opened": ("email_opened", 0.14),
    "Email reply": ("email_replied", 0.04),
    "Phone call": ("call", 0.24),
    "Website visit": ("web_visit", 0.13),
    "Meeting booked": ("meeting_scheduled", 0.05),
    "Meeting": ("meeting_held", 0.04),
    "Form filled": ("form_submitted", 0.03),
    "Stage change": ("stage_changed", 0.03),
}
MAPPING = {
    "timezone": "Europe/Madrid",
    "leads": {
        "file": "cases.csv",
        "columns": {"lead_id": "CaseID", "created_at": "Opened", "owner_id": "Owner", "source": "Channel"},
    },
    "events": {
        "file": "activities.csv",
        "columns": {
            "lead_id": "CaseID",
            "at": "Timestamp",
            "type": "Activity",
            "rep_id": "Resource",
            "duration_s": "Duration",
            "stage": "Stage",
            "amount": "Amount",
            "subtype": "Reason",
        },
        "values": {"type": {theirs: ours for theirs, (ours, _) in ACTIVITIES.items()} | {"Won": "won", "Lost": "lost"}},
    },
}


def _local_times(rng: np.random.Generator, days: np.ndarray) -> np.ndarray:
    # Business hours only (08:00-19:59), so no time falls in the hour a DST change makes ambiguous or skips.
    seconds = days * 86_400 + rng.integers(8 * 3600, 20 * 3600, len(days))
    return (START + pd.to_timedelta(seconds, unit="s")).strftime("%Y-%m-%d %H:%M:%S").to_numpy()


def write_export(folder: Path, n_events: int, seed: int = 0) -> None:
    """Write ``cases.csv`` and ``activities.csv``: ``n_events`` activities over ``n_events / 20`` leads."""
    rng = np.random.default_rng(seed)
    n_leads = max(1, n_events // EVENTS_PER_LEAD)
    reps = np.array([f"agent.{name}" for name in ("ana", "bo", "chloé", "dmitri", "eun-ji", "fatima", "gus", "hana")])
    case_ids = np.char.add("C-", np.arange(100_000, 100_000 + n_leads).astype(str))
    opened_day = rng.integers(0, SPAN_DAYS - 60, n_leads)
    owner = rng.integers(0, len(reps), n_leads)
    pd.DataFrame(
        {
            "CaseID": case_ids,
            "Opened": _local_times(rng, opened_day),
            "Owner": reps[owner],
            "Channel": rng.choice(["Web", "Referral", "Trade fair", "Cold list", ""], n_leads),
            "Segment": rng.choice(["SMB", "Mid-market", "Enterprise"], n_leads),
        }
    ).to_csv(folder / "cases.csv", index=False)

    # A lead's activities fall after its opening; one lead in three is closed (a third of those won).
    lead = np.sort(rng.integers(0, n_leads, n_events))
    closing = np.r_[lead[1:] != lead[:-1], True] & (rng.random(n_events) < 1 / 3)
    names = np.array(list(ACTIVITIES))
    activity = names[rng.choice(len(names), n_events, p=[p for _, p in ACTIVITIES.values()])]
    activity[closing] = np.where(rng.random(int(closing.sum())) < 1 / 3, "Won", "Lost")
    day = opened_day[lead] + rng.integers(1, 60, n_events)
    is_call = activity == "Phone call"
    is_meeting = activity == "Meeting"
    duration = np.where(is_call, rng.gamma(2.0, 120.0, n_events), np.where(is_meeting, 1800.0, np.nan))
    stage = np.where(activity == "Stage change", rng.choice(["contacted", "qualified", "proposal"], n_events), "")
    amount = np.where(activity == "Won", np.round(rng.lognormal(8, 1, n_events), 2), np.nan)
    reason = np.where(activity == "Lost", rng.choice(["Price", "Timing", "Competitor – local"], n_events), "")
    note = np.where(rng.random(n_events) < 0.1, rng.choice(["Rückruf erbeten", "budget ok", "暂停"], n_events), "")
    pd.DataFrame(
        {
            "CaseID": case_ids[lead],
            "Activity": activity,
            "Timestamp": _local_times(rng, day),
            "Resource": reps[(owner[lead] + (rng.random(n_events) < 0.1)) % len(reps)],
            "Duration": np.round(duration, 1),
            "Stage": stage,
            "Amount": amount,
            "Reason": reason,
            "Note": note,
        }
    ).to_csv(folder / "activities.csv", index=False)


def _best(run, repeat: int) -> tuple[float, float, object]:
    """The best wall time of ``repeat`` runs, that run's CPU time (all threads), and the last result."""
    best, result = (float("inf"), 0.0), None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = run()
        best = min(best, (time.perf_counter() - wall, time.process_time() - cpu))
    return *best, result


def _export(folder: Path, n_events: int) -> None:
    marker = folder / "events.txt"  # how many activities the export in ``folder`` holds
    if marker.exists() and marker.read_text().strip() == str(n_events):
        return
    began = time.perf_counter()
    write_export(folder, n_events)
    # The mapping beside the export: `leadscore check DIR --mapping DIR/mapping.yaml` loads it as ours does here.
    (folder / "mapping.yaml").write_text(yaml.safe_dump(MAPPING, allow_unicode=True), encoding="utf-8")
    marker.write_text(f"{n_events}\n")
    print(f"wrote {n_events:,} activities in {time.perf_counter() - began:.1f} s", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="events in the export (the issue: 1000000)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None, help="write (or reuse) the export in this folder")
    parser.add_argument("--no-startup", action="store_true", help="leave out the CLI start-up measurement")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        _export(folder, args.events)
        cases, activities = folder / "cases.csv", folder / "activities.csv"
        mapping = ColumnMapping.from_dict(MAPPING)
        size_mb = (cases.stat().st_size + activities.stat().st_size) / 1e6
        as_text = {"dtype": str, "keep_default_na": False, "na_values": [""]}

        plain_s, plain_cpu, (leads, events) = _best(lambda: (pd.read_csv(cases), pd.read_csv(activities)), args.repeat)
        text_s, text_cpu, _ = _best(lambda: (pd.read_csv(cases, **as_text), pd.read_csv(activities, **as_text)), 1)
        ours_s, ours_cpu, data = _best(lambda: load_dataset(folder, mapping), args.repeat)

    n = len(events)
    assert len(data.events) == n and data.events["event_id"].is_unique, "every activity is an event, ids unique"
    result = {
        "events": n,
        "leads": len(leads),
        "csv_mb": round(size_mb, 1),
        "repeat": args.repeat,
        "load_average_1min": round(os.getloadavg()[0], 1),
        "ours_s": round(ours_s, 3),
        "ours_cpu_s": round(ours_cpu, 3),
        "ours_events_per_s": round(n / ours_s),
        "ours_events_per_cpu_s": round(n / ours_cpu),
        "plain_read_csv_s": round(plain_s, 3),
        "plain_read_csv_cpu_s": round(plain_cpu, 3),
        "plain_read_csv_events_per_s": round(n / plain_s),
        "ours_over_plain_time": round(ours_s / plain_s, 2),
        "text_read_csv_s": round(text_s, 3),
        "text_read_csv_cpu_s": round(text_cpu, 3),
        "text_read_csv_events_per_s": round(n / text_s),
        "ours_over_text_read_time": round(ours_s / text_s, 2),
    }
    print(
        f"ours (read, map, validate, derive ids): {result['ours_events_per_s']:,} events/s ({ours_s:.2f} s, "
        f"CPU {ours_cpu:.2f} s); plain pd.read_csv: {result['plain_read_csv_events_per_s']:,} events/s "
        f"({plain_s:.2f} s); pd.read_csv as text: {result['text_read_csv_events_per_s']:,} events/s "
        f"({text_s:.2f} s); load average {result['load_average_1min']}",
        file=sys.stderr,
    )
    if not args.no_startup:
        from cli_startup import measure

        result["cli_startup"] = measure(repeat=5)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
