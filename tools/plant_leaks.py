"""Plant a look-ahead in each feature family and check that the point-in-time tests catch it.

For every family (counts per type and window, recency, calls, next step, stage, deal amount, reply latency,
meetings, extra and unknown types, open leads, labels and censoring, context, ...) and every look-ahead
(1 hour, 1 second), the family's comparison with the cutoff is patched in a temporary copy of ``src/`` so that it
sees that far past the cutoff, and ``tests/test_features.py tests/test_training_set.py`` are run against the copy
(stopping at the first failure). A planting is *caught* when a test fails, *survived* when all pass. A baseline
run without planting must pass, or nothing is learnt.

Run from the repository root::

    python tools/plant_leaks.py            # every planting
    python tools/plant_leaks.py -k calls   # the families whose name contains "calls"
    python tools/plant_leaks.py --properties-only   # without the fixed tests: do the properties catch it too?

The last line printed is one JSON object: ``{"caught": n, "survived": n, "plantings": [...], ...}``. The exit
status is 0 when every planting is caught, 1 otherwise (2 if the baseline fails or a patch no longer applies).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ("tests/test_features.py", "tests/test_training_set.py")
LOOKAHEADS = {"1h": 3_600 * 10**9, "1s": 10**9}


@dataclass(frozen=True)
class Planting:
    """A family's comparison with the cutoff and the same comparison ``LOOK`` nanoseconds further on."""

    family: str
    path: str  # under src/leadscore
    old: str
    new: str  # with LOOK where the look-ahead (in ns) goes


F = "features/builder.py"
H = "features/history.py"
PLANTINGS = (
    Planting(
        "counts per type and window, interactions, momentum",
        F,
        "    counts = np.bincount(key[:k] * _N_BUCKETS + bucket, minlength=p.n_leads * n_slots * _N_BUCKETS)\n",
        "    k_ = p.known_until(t + LOOK)\n"
        "    bucket = np.searchsorted(t - _EDGE_DAYS * DAY_NS, p.ev_at[:k_], side='left')\n"
        "    counts = np.bincount(key[:k_] * _N_BUCKETS + bucket, minlength=p.n_leads * n_slots * _N_BUCKETS)\n",
    ),
    Planting(
        "recency: last interaction, last reply, last other event",
        F,
        "    np.maximum.at(last, key[:k], at)\n",
        "    np.maximum.at(last, key[: p.known_until(t + LOOK)], p.ev_at[: p.known_until(t + LOOK)])\n",
    ),
    Planting(
        "first interaction",
        F,
        "_days_between(t, first, first <= t)",
        "_days_between(t, first, first <= t + LOOK)",
    ),
    Planting(
        "extra types (counts, recency and momentum)",
        F,
        "        for w in catalogue.WINDOWS:\n"
        "            out[names[w]] = windows[w][:, slot]\n"
        '        out[names["days_since_last"]] = since(last[:, slot])\n'
        '        out[names["momentum"]] = (windows["30d"][:, slot] + 1.0) / (counts[:, slot, _PREVIOUS_30D] + 1.0)\n',
        "        k_ = p.known_until(t + LOOK)\n"
        "        b_ = np.searchsorted(t - _EDGE_DAYS * DAY_NS, p.ev_at[:k_], side='left')\n"
        "        c_ = np.bincount(key[:k_] * _N_BUCKETS + b_, minlength=p.n_leads * n_slots * _N_BUCKETS)\n"
        "        c_ = c_.reshape(p.n_leads, n_slots, _N_BUCKETS)[rows][:, slot]\n"
        "        for w in catalogue.WINDOWS:\n"
        "            lo = {'7d': 4, '30d': 3, '90d': 1, 'total': 0}[w]\n"
        "            out[names[w]] = c_[:, lo:].sum(axis=1).astype(np.int32)\n"
        "        last_ = np.full(p.n_leads * n_slots, NONE_YET, dtype=np.int64)\n"
        "        np.maximum.at(last_, key[:k_], p.ev_at[:k_])\n"
        '        out[names["days_since_last"]] = since(last_.reshape(p.n_leads, n_slots)[rows][:, slot])\n'
        '        out[names["momentum"]] = (c_[:, 3:].sum(axis=1) + 1.0) / (c_[:, 2] + 1.0)\n',
    ),
    Planting(
        "sequence: last and previous event type",
        H,
        "        k = self.known_until(t)\n        position, lead = np.arange(k), self.ev_lead[:k]\n",
        "        k = self.known_until(t + LOOK)\n        position, lead = np.arange(k), self.ev_lead[:k]\n",
    ),
    Planting(
        "unknown types counted as other",
        F,
        '        out[f"other_events_{w}"] = windows[w][:, other]\n',
        "        k_ = p.known_until(t + LOOK)\n"
        "        b_ = np.searchsorted(t - _EDGE_DAYS * DAY_NS, p.ev_at[:k_], side='left')\n"
        "        c_ = np.bincount(key[:k_] * _N_BUCKETS + b_, minlength=p.n_leads * n_slots * _N_BUCKETS)\n"
        "        c_ = c_.reshape(p.n_leads, n_slots, _N_BUCKETS)[rows][:, other]\n"
        "        lo = {'7d': 4, '30d': 3, '90d': 1, 'total': 0}[w]\n"
        '        out[f"other_events_{w}"] = c_[:, lo:].sum(axis=1).astype(np.int32)\n',
    ),
    Planting(
        "events known at a cutoff (the shared prefix)",
        H,
        'return int(np.searchsorted(self.ev_at, t, side="right"))',
        'return int(np.searchsorted(self.ev_at, t + LOOK, side="right"))',
    ),
    Planting(
        "open leads: created by the cutoff",
        H,
        "return (self.created <= t) & (self.first_close > t)",
        "return (self.created <= t + LOOK) & (self.first_close > t)",
    ),
    Planting(
        "open leads: not closed by the cutoff",
        H,
        "return (self.created <= t) & (self.first_close > t)",
        "return (self.created <= t) & (self.first_close > t + LOOK)",
    ),
    Planting(
        "next step: scheduling events",
        F,
        'candidate = (s["at"] <= t) & (s["scheduled_for"] > t)',
        'candidate = (s["at"] <= t + LOOK) & (s["scheduled_for"] > t)',
    ),
    Planting(
        "next step: cancellations and rejections",
        F,
        'known_cancel = c["at"] <= t\n',
        'known_cancel = c["at"] <= t + LOOK\n',
    ),
    Planting(
        "reply latency",
        F,
        'known = (r["at"] <= t) & ~np.isnan(r["latency_h"])',
        'known = (r["at"] <= t + LOOK) & ~np.isnan(r["latency_h"])',
    ),
    Planting(
        "meeting show rate: meetings scheduled",
        F,
        'weights=(m["at"] <= t) & (m["due"] <= t)',
        'weights=(m["at"] <= t + LOOK) & (m["due"] <= t)',
    ),
    Planting(
        "meeting show rate: meetings due",
        F,
        'weights=(m["at"] <= t) & (m["due"] <= t)',
        'weights=(m["at"] <= t) & (m["due"] <= t + LOOK)',
    ),
    Planting(
        "calls: cold calls and durations",
        F,
        '    known = calls["at"] <= t\n',
        '    known = calls["at"] <= t + LOOK\n',
    ),
    Planting(
        "stage: current, furthest, days in stage",
        F,
        '    s = p.sparse["stages"]\n    known = s["at"] <= t\n',
        '    s = p.sparse["stages"]\n    known = s["at"] <= t + LOOK\n',
    ),
    Planting(
        "deal amount",
        F,
        'last = _last_per_lead(d["lead"], d["at"] <= t)',
        'last = _last_per_lead(d["lead"], d["at"] <= t + LOOK)',
    ),
    Planting(
        "extra-types vocabulary (event types counted at before)",
        "features/vocabulary.py",
        "<= cutoff_timestamp(before).value]",
        "<= cutoff_timestamp(before).value + LOOK]",
    ),
    Planting(
        "context: owner's closed leads and win rate",
        "features/context.py",
        '"cutoff": frame["cutoff"].to_numpy(),',
        '"cutoff": (frame["cutoff"] + pd.Timedelta(LOOK, "ns")).to_numpy(),',
    ),
    Planting(
        "labels: won within the horizon",
        "features/training_set.py",
        "((won > t.value) & (won <= t.value + horizon_ns))",
        "((won > t.value) & (won <= t.value + horizon_ns + LOOK))",
    ),
    Planting(
        "censoring: horizon within the data",
        "features/training_set.py",
        "return [t for t in chosen if t + horizon <= end]",
        "return [t for t in chosen if t + horizon <= end + pd.Timedelta(LOOK, 'ns')]",
    ),
)


#: Tests run first (fast and deterministic, one per family), so that a caught planting stops early (-x).
FIRST = (
    "test_one_future_event_of_any_family",
    "test_an_event_exactly_at_the_cutoff",
    "test_a_meeting_scheduled_for_after_the_cutoff",
    "test_top_unknown_types_count_a_type",
    "test_the_vocabulary_counts_a_type",
    "test_an_event_of_an_unknown_type_exactly",
    "test_owner_context_counts_outcomes",
    "test_a_win_at_the_end_of_the_horizon",
    "test_a_horizon_ending_exactly",
)


def _env(src: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(ROOT)])}


def _ordered_tests(src: Path) -> list[str]:
    """Every test of the two files, by node id, the fast deterministic point-in-time tests first."""
    command = [sys.executable, "-m", "pytest", *TESTS, "--collect-only", "-q", "-p", "no:cacheprovider"]
    done = subprocess.run(command, cwd=ROOT, env=_env(src), capture_output=True, text=True, check=True)
    ids = [line for line in done.stdout.splitlines() if "::" in line]
    if not ids:
        raise SystemExit(f"no tests collected from {TESTS}")
    return sorted(ids, key=lambda i: next((k for k, name in enumerate(FIRST) if f"::{name}" in i), len(FIRST)))


def _run_tests(src: Path, ids: list[str]) -> tuple[bool, str, float]:
    """Run the tests with ``src`` first on the path, stopping at the first failure: (passed, summary, seconds)."""
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *ids]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=_env(src), capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    failed = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    summary = failed[0] if failed else (lines[-1] if lines else done.stderr.strip()[-300:])
    return done.returncode == 0, summary, time.perf_counter() - started


def _copy_src(into: Path) -> Path:
    src = into / "src"
    shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return src


def _check_import(src: Path) -> None:
    """The copy, not the installed package, is what the tests import."""
    where = subprocess.run(
        [sys.executable, "-c", "import leadscore; print(leadscore.__file__)"],
        env=_env(src),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(where).resolve().is_relative_to(src.resolve()):
        raise SystemExit(f"the tests would import leadscore from {where}, not from the planted copy {src}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", dest="only", default="", help="only the families whose name contains this")
    parser.add_argument("--no-baseline", action="store_true", help="skip the run without planting")
    parser.add_argument(
        "--properties-only",
        action="store_true",
        help="leave out the fixed point-in-time tests, to see whether the other tests (the properties) catch it",
    )
    args = parser.parse_args()
    chosen = [p for p in PLANTINGS if args.only.lower() in p.family.lower()]
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="plant-leaks-") as tmp:
        src = _copy_src(Path(tmp))
        _check_import(src)
        ids = _ordered_tests(src)
        if args.properties_only:
            ids = [i for i in ids if not any(f"::{name}" in i for name in FIRST)]
        baseline_ok = True
        if not args.no_baseline:
            baseline_ok, summary, seconds = _run_tests(src, ids)
            verdict = "passed" if baseline_ok else "FAILED"
            print(f"baseline (no planting): {verdict} in {seconds:.0f} s: {summary}", flush=True)
            if not baseline_ok:
                print(json.dumps({"baseline": "failed", "summary": summary}))
                return 2
        for planting in chosen:
            target = src / "leadscore" / planting.path
            original = target.read_text()
            if original.count(planting.old) != 1:
                print(json.dumps({"error": f"the patch for {planting.family!r} no longer applies to {planting.path}"}))
                return 2
            for name, ns in LOOKAHEADS.items():
                target.write_text(original.replace(planting.old, planting.new.replace("LOOK", f"({ns})")))
                passed, summary, seconds = _run_tests(src, ids)
                caught = not passed
                results.append({"family": planting.family, "lookahead": name, "caught": caught, "by": summary})
                verdict = "caught" if caught else "SURVIVED"
                print(f"{verdict:8} {name:3} {planting.family} ({seconds:.0f} s): {summary}", flush=True)
            target.write_text(original)
    survived = [r for r in results if not r["caught"]]
    report = {
        "caught": len(results) - len(survived),
        "survived": len(survived),
        "survivors": [f"{r['family']} ({r['lookahead']})" for r in survived],
        "plantings": results,
    }
    print(json.dumps(report))
    return 0 if not survived else 1


if __name__ == "__main__":
    sys.exit(main())
