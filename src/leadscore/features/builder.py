"""Point-in-time features: what was known about each open lead at a cutoff, as one row per lead.

:func:`build_features` is a pure function of ``(leads, events, cutoff, extra_types)``: a lead's row depends on
that lead's own rows and the cutoff alone, so computing it on any split of the leads and concatenating gives the
same rows (partition invariance, see docs/architecture.md). That is what lets it run per lead-hash partition on Spark
(``groupBy(lead_id).applyInPandas``) as well as on one machine.

Only events with ``at <= cutoff`` are used: **an event exactly at the cutoff is known** (it counts, as a touch of
age 0), one a nanosecond after it is not; likewise a lead created exactly at the cutoff is open, and a lead won or
lost exactly at the cutoff is closed (no row). Nothing after the cutoff changes a row, whatever its fields (see the
point-in-time tests in ``tests/test_features.py`` and ``tools/plant_leaks.py``, which checks that they catch a
look-ahead of even one second in any feature family). A ``scheduled_for`` in the future is known when the event that
scheduled it is at or before the cutoff; a ``meeting_cancelled`` / ``meeting_rejected`` event known at the cutoff
removes the scheduling events of the same lead with the same ``scheduled_for`` made at or before it; a meeting
scheduled for exactly the cutoff is due (for the show rate), not a next step. When two
events of a lead share a timestamp, the later row counts as the later event.

Speed: the events are encoded once (:func:`prepare_events`, in :mod:`leadscore.features.history`) and each cutoff is
then a handful of numpy passes over the events known at it: one ``np.bincount`` over ``(lead, type slot, time
bucket)`` gives every count for every window (and the momentum of each extra type), one ``np.maximum.at`` over
``(lead, type slot)`` every recency, and two more ``np.maximum.at`` passes each lead's last two events (the
sequence features). No per-lead Python and no pandas groupby on strings.

Every column is named and described in :mod:`leadscore.features.catalogue`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from leadscore.data.contracts import CLOSING_EVENT_TYPES, KNOWN_EVENT_TYPES, STAGES
from leadscore.data.times import DAY_NS
from leadscore.features import catalogue
from leadscore.features.history import (
    NEVER,
    NONE_YET,
    NOT_INTERACTION_TYPES,
    PreparedEvents,
    cutoff_timestamp,
    prepare_events,
)
from leadscore.features.vocabulary import event_type_counts

__all__ = [
    "PreparedEvents",
    "build_features",
    "cutoff_timestamp",
    "features_at",
    "prepare_events",
    "top_unknown_types",
]

COUNTED = tuple(catalogue.COUNTED_TYPES)
# Buckets by age at the cutoff; bucket b of a known event is the number of edges strictly before it:
# 0: older than 90 days, 1: (90, 60], 2: (60, 30], 3: (30, 7], 4: the last 7 days.
_EDGE_DAYS = np.array([90, 60, 30, 7], dtype=np.int64)
_N_BUCKETS = len(_EDGE_DAYS) + 1
_PREVIOUS_30D = 2


def _check_extra_types(extra_types: Sequence[str]) -> tuple[str, ...]:
    if isinstance(extra_types, str):
        raise ValueError(f"extra_types must be a sequence of event types, not the string {extra_types!r}")
    vocabulary = tuple(str(x) for x in extra_types)
    known = [x for x in vocabulary if x in KNOWN_EVENT_TYPES]
    if known:
        raise ValueError(f"extra_types {known} are known event types; they have their own features already")
    if catalogue.OTHER_TYPE in vocabulary:
        raise ValueError(f"extra_types may not hold {catalogue.OTHER_TYPE!r}: it names the types outside them")
    return vocabulary


def _ratio(numerator: np.ndarray, denominator: np.ndarray, cap: float | None = None) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(denominator > 0, numerator / np.maximum(denominator, 1e-300), np.nan)
    return np.minimum(out, cap) if cap is not None else out


def _days_between(later: np.ndarray | int, earlier: np.ndarray | int, valid: np.ndarray) -> np.ndarray:
    """(later - earlier) in days where ``valid``, NaN elsewhere (where a time is a "none" sentinel)."""
    with np.errstate(over="ignore"):
        diff = np.subtract(later, earlier, dtype=np.int64) / DAY_NS
    return np.where(valid, diff, np.nan)


def _last_per_lead(lead: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Positions of the last known row of each lead in arrays sorted by (lead, at)."""
    idx = np.flatnonzero(known)
    if idx.size == 0:
        return idx
    leads = lead[idx]
    return idx[np.append(leads[1:] != leads[:-1], True)]


def _slots(p: PreparedEvents, extra_types: tuple[str, ...]) -> tuple[int, np.ndarray, np.ndarray]:
    """Type slots for a vocabulary: their number, the slot of each type code, and each event's key.

    Slots are the counted known types, one for won/lost, the extra types, then "other". An event's key is
    ``lead * n_slots + slot``; it is cached on ``p`` per vocabulary.
    """
    if extra_types not in p.cache:
        closing, other = len(COUNTED), len(COUNTED) + 1 + len(extra_types)
        slot_of = {name: i for i, name in enumerate(COUNTED)}
        slot_of.update({name: closing for name in CLOSING_EVENT_TYPES})
        slot_of.update({name: closing + 1 + j for j, name in enumerate(extra_types)})
        slot_of_code = np.array([slot_of.get(name, other) for name in p.type_names], dtype=np.int64)
        key = p.ev_lead * (other + 1) + slot_of_code[p.ev_type]
        p.cache[extra_types] = (other + 1, slot_of_code, key)
    return p.cache[extra_types]


def _activity(p: PreparedEvents, t: int, extra_types: tuple[str, ...], rows: np.ndarray) -> dict[str, np.ndarray]:
    """Counts per type and window, interactions, momentum and recency, for the leads at ``rows``."""
    n_slots, _, key = _slots(p, extra_types)
    k = p.known_until(t)
    at = p.ev_at[:k]
    bucket = np.searchsorted(t - _EDGE_DAYS * DAY_NS, at, side="left")
    counts = np.bincount(key[:k] * _N_BUCKETS + bucket, minlength=p.n_leads * n_slots * _N_BUCKETS)
    counts = counts.reshape(p.n_leads, n_slots, _N_BUCKETS)[rows].astype(np.int32)
    last = np.full(p.n_leads * n_slots, NONE_YET, dtype=np.int64)
    np.maximum.at(last, key[:k], at)
    last = last.reshape(p.n_leads, n_slots)[rows]

    windows = {"7d": counts[:, :, 4]}
    windows["30d"] = windows["7d"] + counts[:, :, 3]
    windows["90d"] = windows["30d"] + counts[:, :, 2] + counts[:, :, 1]
    windows["total"] = windows["90d"] + counts[:, :, 0]
    interaction = np.ones(n_slots, dtype=bool)
    interaction[[COUNTED.index(x) if x in COUNTED else len(COUNTED) for x in NOT_INTERACTION_TYPES]] = False
    other = n_slots - 1

    out: dict[str, np.ndarray] = {}
    for i, event_type in enumerate(COUNTED):
        for w in catalogue.WINDOWS:
            out[catalogue.count_name(event_type, w)] = windows[w][:, i]
    for w in catalogue.WINDOWS:
        out[f"interactions_{w}"] = windows[w][:, interaction].sum(axis=1, dtype=np.int32)
        out[f"other_events_{w}"] = windows[w][:, other]
    before = counts[:, :, _PREVIOUS_30D][:, interaction].sum(axis=1)
    out["activity_momentum"] = (out["interactions_30d"] + 1.0) / (before + 1.0)

    def since(times: np.ndarray) -> np.ndarray:
        return _days_between(t, times, times != NONE_YET)

    out["days_since_last_other_event"] = since(last[:, other])
    for j, event_type in enumerate(extra_types):
        slot = len(COUNTED) + 1 + j
        names = catalogue.extra_type_columns(event_type)
        for w in catalogue.WINDOWS:
            out[names[w]] = windows[w][:, slot]
        out[names["days_since_last"]] = since(last[:, slot])
        out[names["momentum"]] = (windows["30d"][:, slot] + 1.0) / (counts[:, slot, _PREVIOUS_30D] + 1.0)
    out["days_since_last_interaction"] = since(last[:, interaction].max(axis=1))
    out["days_since_last_reply"] = since(last[:, COUNTED.index("email_replied")])
    first = p.first_interaction[rows]  # the first interaction overall is the first known one, if it is known
    out["days_since_first_interaction"] = _days_between(t, first, first <= t)
    return out


def _sequence(p: PreparedEvents, t: int, extra_types: tuple[str, ...], rows: np.ndarray) -> dict[str, np.ndarray]:
    """The types of the last and next-to-last known events of the leads at ``rows``, as the vocabulary names them.

    A counted known type or an extra type is its own category; any other type is :data:`catalogue.OTHER_TYPE`
    (won and lost too, though an open lead has none); missing where the lead has no such event yet.
    """
    _, slot_of_code, _ = _slots(p, extra_types)
    other = catalogue.OTHER_TYPE
    # One label per slot (the counted types, won/lost, the extra types, "other"), then "no event" at the end.
    labels = np.array([*COUNTED, other, *extra_types, other, None], dtype=object)
    out = {}
    for name, pos in zip(catalogue.SEQUENCE_FEATURES, p.last_two_known(t, rows), strict=True):
        slot = np.full(pos.size, labels.size - 1)
        seen = pos >= 0
        slot[seen] = slot_of_code[p.ev_type[pos[seen]]]
        out[name] = pd.array(labels[slot], dtype="str")
    return out


def _next_step(p: PreparedEvents, t: int) -> dict[str, np.ndarray]:
    s, c = p.sparse["scheduling"], p.sparse["cancelling"]
    candidate = (s["at"] <= t) & (s["scheduled_for"] > t)
    lead, due, made, pair = (s[k][candidate] for k in ("lead", "scheduled_for", "at", "pair"))
    known_cancel = c["at"] <= t
    if known_cancel.any() and pair.size:
        # The latest known cancellation of each (lead, scheduled_for) cancels what was scheduled before it.
        c_pair, c_at = c["pair"][known_cancel], c["at"][known_cancel]
        order = np.lexsort((c_at, c_pair))
        c_pair, c_at = c_pair[order], c_at[order]
        latest = np.append(c_pair[1:] != c_pair[:-1], True)
        c_pair, c_at = c_pair[latest], c_at[latest]
        pos = np.minimum(np.searchsorted(c_pair, pair), c_pair.size - 1)
        cancelled = (c_pair[pos] == pair) & (c_at[pos] >= made)
        lead, due = lead[~cancelled], due[~cancelled]
    next_due = np.full(p.n_leads, NEVER, dtype=np.int64)
    np.minimum.at(next_due, lead, due)
    has = next_due != NEVER
    return {"days_until_next_step": _days_between(next_due, t, has), "has_next_step": has.astype(np.int32)}


def _engagement(p: PreparedEvents, t: int) -> dict[str, np.ndarray]:
    r = p.sparse["replies"]
    known = (r["at"] <= t) & ~np.isnan(r["latency_h"])
    hours = np.bincount(r["lead"], weights=np.where(known, r["latency_h"], 0.0), minlength=p.n_leads)
    n = np.bincount(r["lead"], weights=known, minlength=p.n_leads)
    m = p.sparse["meetings"]
    due = np.bincount(m["lead"], weights=(m["at"] <= t) & (m["due"] <= t), minlength=p.n_leads)
    return {"email_reply_hours_mean": _ratio(hours, n), "_meetings_due": due}


def _calls(p: PreparedEvents, t: int) -> dict[str, np.ndarray]:
    calls = p.sparse["calls"]
    known = calls["at"] <= t
    timed = known & ~np.isnan(calls["duration_s"])
    total = np.bincount(calls["lead"], weights=np.where(timed, calls["duration_s"], 0.0), minlength=p.n_leads)
    n_timed = np.bincount(calls["lead"], weights=timed, minlength=p.n_leads)
    cold = np.bincount(calls["lead"], weights=known & calls["cold"], minlength=p.n_leads)
    return {
        "cold_calls_total": cold.astype(np.int32),
        "call_minutes_mean": _ratio(total / 60.0, n_timed),
        "call_minutes_total": total / 60.0,
    }


def _stage(p: PreparedEvents, t: int) -> dict[str, np.ndarray]:
    s = p.sparse["stages"]
    known = s["at"] <= t
    last = _last_per_lead(s["lead"], known)
    code = np.full(p.n_leads, -1, dtype=np.int64)
    since = p.created.copy()
    rank = np.zeros(p.n_leads, dtype=np.int32)
    code[s["lead"][last]] = s["code"][last]
    since[s["lead"][last]] = s["at"][last]
    rank[s["lead"][last]] = s["rank"][last]
    furthest = np.zeros(p.n_leads, dtype=np.int32)
    np.maximum.at(furthest, s["lead"][known], s["rank"][known])
    names = np.append(p.stage_names, STAGES[0])  # code -1: no stage change yet
    return {
        "stage": pd.array(names[code], dtype="str"),
        "stage_rank": rank,
        "stage_rank_max": furthest,
        "days_in_stage": (t - since) / DAY_NS,
    }


def _deal(p: PreparedEvents, t: int) -> dict[str, np.ndarray]:
    d = p.sparse["amounts"]
    last = _last_per_lead(d["lead"], d["at"] <= t)
    amount = np.full(p.n_leads, np.nan)
    amount[d["lead"][last]] = d["amount"][last]
    return {"deal_amount": amount}


def features_at(prepared: PreparedEvents, cutoff: object, *, extra_types: Sequence[str] = ()) -> pd.DataFrame:
    """The feature frame at ``cutoff`` from a preparation: one row per open lead (see :func:`build_features`).

    Examples
    --------
    >>> import pandas as pd
    >>> leads = pd.DataFrame({"lead_id": ["a"], "created_at": pd.to_datetime(["2024-01-01"], utc=True)})
    >>> events = pd.DataFrame({"lead_id": ["a", "a"], "type": ["email_sent", "email_replied"],
    ...                        "at": pd.to_datetime(["2024-01-02", "2024-01-03"], utc=True)})
    >>> prepared = prepare_events(leads, events)
    >>> features_at(prepared, "2024-01-10")[["email_sent_7d", "email_reply_rate"]].to_dict("records")
    [{'email_sent_7d': 0, 'email_reply_rate': 1.0}]
    """
    p = prepared
    vocabulary = _check_extra_types(extra_types)
    stamp = cutoff_timestamp(cutoff)
    t = stamp.value
    attributes = [catalogue.attribute_of(c) for c in p.attributes.columns if c != "source"]
    names = catalogue.feature_names(vocabulary, attributes)
    rows = np.flatnonzero(p.open_at(stamp))

    cols = _activity(p, t, vocabulary, rows)
    cols.update(_sequence(p, t, vocabulary, rows))
    per_lead: dict[str, np.ndarray] = {"days_since_created": (t - p.created) / DAY_NS}
    for block in (_next_step, _engagement, _calls, _stage, _deal):
        per_lead.update(block(p, t))
    cols.update({name: values[rows] for name, values in per_lead.items()})
    sent = cols["email_sent_total"]
    cols["email_open_rate"] = _ratio(cols["email_opened_total"], sent, cap=1.0)
    cols["email_reply_rate"] = _ratio(cols["email_replied_total"], sent, cap=1.0)
    cols["meeting_show_rate"] = _ratio(cols["meeting_held_total"], cols["_meetings_due"], cap=1.0)

    out: dict[str, object] = {
        "lead_id": p.lead_ids.iloc[rows].reset_index(drop=True),
        "cutoff": pd.DatetimeIndex(np.full(rows.size, t, dtype="datetime64[ns]")).tz_localize("UTC"),
    }
    static = p.attributes.iloc[rows].reset_index(drop=True)
    for name in names:
        out[name] = static[name] if name in static.columns else cols[name]
    return pd.DataFrame(out)


def build_features(
    leads: pd.DataFrame,
    events: pd.DataFrame,
    cutoff: object,
    *,
    extra_types: Sequence[str] = (),
    attributes: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Features of every lead open at ``cutoff``, from what was known at ``cutoff`` only.

    A lead is open at ``t`` if it was created at or before ``t`` and has no won/lost event at or before ``t``.
    The result has one row per open lead, in the order of ``leads``, with columns ``lead_id``, ``cutoff`` and
    then the features of :func:`leadscore.features.catalogue.feature_names` (counts are int32, times, rates and
    amounts float64 with NaN where they do not apply, categories strings).

    For many cutoffs over the same data, call :func:`prepare_events` once and :func:`features_at` per cutoff.

    Parameters
    ----------
    leads, events : DataFrame
        Canonical tables (see :mod:`leadscore.data.contracts`); events of leads not in ``leads`` are ignored.
    cutoff : timestamp-like
        The point in time; naive values are taken as UTC.
    extra_types : sequence of str
        Unknown event types that get their own counts, recency, momentum and category in the sequence features
        (a fixed vocabulary chosen on the training events, see :mod:`leadscore.features.vocabulary`); all other
        unknown types count as "other".
    attributes : sequence of str, optional
        The lead attributes to pass through, as ``attr_{name}`` (default: every extra column of ``leads``; a
        model's scoring passes its own selection).

    Examples
    --------
    >>> import pandas as pd
    >>> leads = pd.DataFrame({"lead_id": ["a", "b"], "created_at": pd.to_datetime(["2024-01-01"] * 2, utc=True),
    ...                       "source": ["web", "referral"]})
    >>> events = pd.DataFrame({
    ...     "lead_id": ["a", "a", "b"], "type": ["call", "webinar", "won"],
    ...     "at": pd.to_datetime(["2024-01-05", "2024-01-06", "2024-01-07"], utc=True)})
    >>> f = build_features(leads, events, "2024-01-08", extra_types=["webinar"])
    >>> f[["lead_id", "call_7d", "event_webinar_total", "days_since_last_interaction", "source"]]
      lead_id  call_7d  event_webinar_total  days_since_last_interaction source
    0       a        1                    1                          2.0    web
    """
    return features_at(prepare_events(leads, events, attributes=attributes), cutoff, extra_types=extra_types)


def top_unknown_types(events: pd.DataFrame, k: int = 5, *, before: object = None) -> tuple[str, ...]:
    """The ``k`` most frequent event types the catalogue does not know, to use as ``extra_types``.

    Pick them from training events only (``before`` = the last training cutoff) and keep the same vocabulary
    for scoring, so that features stay comparable. Ties are broken by name. Training chooses by share and a
    bounded size instead (:func:`leadscore.features.vocabulary.choose_event_vocabulary`).

    Examples
    --------
    >>> import pandas as pd
    >>> events = pd.DataFrame({"type": ["call", "webinar", "webinar", "chat", "note"],
    ...                        "at": pd.to_datetime(["2024-01-01"] * 5, utc=True)})
    >>> top_unknown_types(events, k=2)
    ('webinar', 'chat')
    """
    counts = event_type_counts(events, before=before)
    unknown = counts[~counts.index.isin(KNOWN_EVENT_TYPES)]
    ranked = sorted(unknown.items(), key=lambda item: (-item[1], item[0]))
    return tuple(name for name, _ in ranked[:k])
