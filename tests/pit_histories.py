"""Adversarial lead histories for the point-in-time tests: long, every event type, every field, every scale.

Times are placed around a cutoff ``t`` at every scale (a nanosecond, a microsecond, a second, a minute, an hour,
a day, the feature windows' edges give or take a nanosecond, months), on both sides and exactly at ``t``. The
histories come from a numpy generator seeded by hypothesis (hundreds of events are cheap that way; hypothesis
still chooses the seed, the sizes and the cutoff rule, and replays failures).

``resolution`` rounds every time to a unit (``"us"`` for the store and Spark, which keep microseconds).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.data.contracts import KNOWN_EVENT_TYPES, STAGES

NS = 1
US = 1_000
SECOND = 10**9
MINUTE = 60 * SECOND
HOUR = 3_600 * SECOND
DAY = 24 * HOUR
#: Distances from the cutoff at every scale, and the feature windows' edges.
SCALES = (NS, US, SECOND, MINUTE, HOUR, DAY, 7 * DAY, 30 * DAY, 60 * DAY, 90 * DAY, 200 * DAY)
SCALE_NAMES = ("1ns", "1us", "1s", "1min", "1h", "1day", "7days", "30days", "60days", "90days", "200days")
EXTRA = "webinar"  # an unknown type given its own features
TYPES = (*KNOWN_EVENT_TYPES, EXTRA, "chat")  # chat: an unknown type counted as "other"
OPEN_TYPES = tuple(x for x in TYPES if x not in ("won", "lost"))
FIELDS = ("at", "scheduled_for", "duration_s", "type", "subtype", "stage", "amount", "lead_id")
EVENT_COLUMNS = ["lead_id", "at", "type", "scheduled_for", "duration_s", "stage", "amount", "subtype"]
T0 = pd.Timestamp("2024-06-03 09:30:00.123456789", tz="UTC")  # a cutoff that is not on a round second


def offsets(rng: np.random.Generator, size: int, *, sign: int = 0) -> np.ndarray:
    """Nanosecond distances at every scale (1 to 3 units, give or take 1 ns); signed at random unless ``sign``."""
    scale = rng.choice(np.array(SCALES, dtype=np.int64), size)
    out = scale * rng.integers(1, 4, size) + rng.integers(-1, 2, size)
    out = np.where(rng.random(size) < 0.3, scale + rng.integers(-1, 2, size), out)  # the edges themselves
    out = np.maximum(out, 1)
    if sign == 0:
        return out * rng.choice(np.array([-1, 1]), size)
    return out * sign


def _rounded(ns: np.ndarray, resolution: str | None) -> np.ndarray:
    if resolution is None:
        return ns
    unit = {"us": US, "s": SECOND}[resolution]
    return ns // unit * unit


def _times(ns: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime(ns, unit="ns", utc=True)).astype("datetime64[ns, UTC]")


def history(
    seed: int,
    *,
    n_leads: int = 4,
    per_lead: int = 60,
    t: pd.Timestamp = T0,
    resolution: str | None = None,
    closing_rate: float = 0.02,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Leads and events around the cutoff ``t``: about ``per_lead`` events a lead, in no particular row order.

    Every lead gets each kind of event a feature family reads: interactions of every type, stage changes (named,
    unknown, missing), amounts, calls with and without durations and subtypes, meetings scheduled for times on
    both sides of ``t`` and cancellations or rejections of those very times, replies after sends, unknown types.
    About 1 in 8 events is exactly at ``t``; won/lost are rare (``closing_rate``), so most leads stay open. Lead
    creations are around ``t`` too (some exactly at ``t``, some a nanosecond after).
    """
    rng = np.random.default_rng(seed)
    base = t.value
    created = base - np.abs(offsets(rng, n_leads)) - 120 * DAY * (rng.random(n_leads) < 0.7)
    created = np.where(rng.random(n_leads) < 0.1, base, created)
    created = np.where(rng.random(n_leads) < 0.05, base + 1, created)
    leads = pd.DataFrame(
        {
            "lead_id": pd.Series([f"L{i}" for i in range(n_leads)], dtype="str"),
            "created_at": _times(_rounded(created, resolution)),
            "source": pd.Series(rng.choice(["web", "referral", "event"], n_leads), dtype="str"),
            "company_size": rng.choice([1.0, 20.0, np.nan], n_leads),
        }
    )
    n = n_leads * per_lead
    weights = np.array([closing_rate if x in ("won", "lost") else 1.0 for x in TYPES])
    types = rng.choice(np.array(TYPES, dtype=object), n, p=weights / weights.sum())
    at = base + offsets(rng, n)
    at = np.where(rng.random(n) < 0.125, base, at)
    # Scheduled times from a small pool per history, so that cancellations match what was scheduled.
    pool = base + np.concatenate([offsets(rng, 6), [0, 1, -1]])
    has_due = np.isin(types, ["meeting_scheduled", "meeting_cancelled", "meeting_rejected", "meeting_held", "call"])
    has_due &= rng.random(n) < 0.8
    due = np.where(has_due, rng.choice(pool, n), np.iinfo(np.int64).min)
    timed = np.isin(types, ["call", "meeting_held"])
    duration = np.where(timed & (rng.random(n) < 0.8), rng.integers(0, 3_600, n).astype(float), np.nan)
    subtype = np.where(timed, rng.choice(np.array(["cold", "warm", None], dtype=object), n), None)
    stage = np.where(types == "stage_changed", rng.choice(np.array([*STAGES, "custom", None], dtype=object), n), None)
    amount = np.where(
        np.isin(types, ["stage_changed", "won", "call"]) & (rng.random(n) < 0.5),
        rng.integers(1, 100, n) * 100.0,
        np.nan,
    )
    events = pd.DataFrame(
        {
            "lead_id": pd.Series([f"L{i}" for i in rng.integers(0, n_leads, n)], dtype="str"),
            "at": _times(_rounded(at, resolution)),
            "type": pd.Series(types, dtype="str"),
            "scheduled_for": _times(np.where(has_due, _rounded(due, resolution), np.iinfo(np.int64).min)),
            "duration_s": duration,
            "stage": pd.Series(stage, dtype="str"),
            "amount": amount,
            "subtype": pd.Series(subtype, dtype="str"),
        }
    )
    # Every email_replied follows a send of the same lead, a scale earlier, so that reply latency is exercised.
    replies = np.flatnonzero(types == "email_replied")
    sends = events.iloc[replies].copy()
    sends["type"] = "email_sent"
    sends["at"] = _times(_rounded(at[replies] - np.abs(offsets(rng, replies.size)), resolution)).set_axis(sends.index)
    events = pd.concat([events, sends], ignore_index=True)
    return leads, events.sample(frac=1.0, random_state=seed % 2**32).reset_index(drop=True)


def cutoff_on_events(rng: np.random.Generator, events: pd.DataFrame, how: str, unit: int = NS) -> pd.Timestamp:
    """A cutoff on an event's time (``how`` = "on"), or ``unit`` before ("before") or after ("after") one."""
    at = events["at"].iloc[int(rng.integers(0, len(events)))]
    shift = {"on": 0, "before": -unit, "after": unit}[how]
    return at + pd.Timedelta(shift, "ns")


def future_events(
    rng: np.random.Generator, leads: pd.DataFrame, t: pd.Timestamp, n: int, *, resolution: str | None = None
) -> pd.DataFrame:
    """``n`` events after ``t`` at every scale (from 1 ns on), of every type, with every field filled in."""
    step = {None: NS, "us": US, "s": SECOND}[resolution]
    at = t.value + np.maximum(_rounded(offsets(rng, n, sign=1), resolution), step)
    types = rng.choice(np.array(TYPES, dtype=object), n)
    due = t.value + _rounded(offsets(rng, n), resolution)
    ids = np.array([*leads["lead_id"].tolist(), "LATE", "GHOST"], dtype=object)
    return pd.DataFrame(
        {
            "lead_id": pd.Series(rng.choice(ids, n), dtype="str"),
            "at": _times(at),
            "type": pd.Series(types, dtype="str"),
            "scheduled_for": _times(due),
            "duration_s": rng.integers(0, 5_000, n).astype(float),
            "stage": pd.Series(rng.choice(np.array([*STAGES, "custom"], dtype=object), n), dtype="str"),
            "amount": rng.integers(1, 100, n) * 7.0,
            "subtype": pd.Series(rng.choice(np.array(["cold", "warm"], dtype=object), n), dtype="str"),
        }
    )


def mutate_future(
    rng: np.random.Generator,
    leads: pd.DataFrame,
    events: pd.DataFrame,
    t: pd.Timestamp,
    fields: tuple[str, ...],
    *,
    resolution: str | None = None,
) -> pd.DataFrame:
    """``events`` with ``fields`` of some of the events after ``t`` changed (their time staying after ``t``)."""
    out = events.copy()
    future = np.flatnonzero((out["at"] > t).to_numpy())
    chosen = future[rng.random(future.size) < 0.7]
    if not chosen.size:
        return out
    other = future_events(rng, leads, t, chosen.size, resolution=resolution)
    other.index = out.index[chosen]
    mask = pd.Series(False, index=out.index)
    mask.iloc[chosen] = True
    for field in fields:
        values = other[field]
        if field == "scheduled_for":  # also take it away now and then
            values = values.where(rng.random(chosen.size) >= 0.2)
        if field in ("duration_s", "amount"):
            values = values.where(rng.random(chosen.size) >= 0.2)
        out[field] = out[field].where(~mask, values.reindex(out.index)).astype(out[field].dtype)
    return out


def known_part(events: pd.DataFrame, t: pd.Timestamp) -> pd.DataFrame:
    """The events known at ``t``: at or before it."""
    return events[events["at"] <= t]


def with_ids(events: pd.DataFrame) -> pd.DataFrame:
    """``events`` with unique ``event_id`` values, as the store and the data contracts want them."""
    return events.assign(event_id=[f"e{i}" for i in range(len(events))])
