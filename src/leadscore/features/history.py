"""Lead histories encoded once as integer arrays, ready for point-in-time features at any cutoff.

:func:`prepare_events` does the expensive part of feature building once: lead ids and event types become
integer codes (with pyarrow's hash encoding, not pandas groupby on strings), timestamps become int64
nanoseconds, events are put in time order (so the events known at a cutoff are a prefix), and the sparse
event kinds that need more than a count (stage changes, amounts, calls, scheduling and cancelling, meetings,
replies) are split off. :mod:`leadscore.features.builder` then computes each cutoff with a
few numpy passes; :mod:`leadscore.features.training_set` reuses one preparation for all its cutoffs.

Nothing here mixes leads: every array is per event or per lead, so the encoding of a subset of the leads is the
subset of the encoding (partition invariance).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from leadscore.data.contracts import CLOSING_EVENT_TYPES, COLD_CALL_SUBTYPE, STAGES
from leadscore.features import catalogue

HOUR_NS = 3_600 * 10**9
NEVER = np.iinfo(np.int64).max  # "no such time" for minima (first close, next step)
NONE_YET = np.iinfo(np.int64).min  # "no such time" for maxima (last interaction); also NaT's integer value

CANCELLING_TYPES = ("meeting_cancelled", "meeting_rejected")
# Events with a scheduled_for that do not schedule anything: cancellations and the meeting itself.
NOT_SCHEDULING_TYPES = (*CANCELLING_TYPES, "meeting_held")
# Interactions are all events but stage changes (and closing events, which an open lead has none of).
NOT_INTERACTION_TYPES = ("stage_changed", *CLOSING_EVENT_TYPES)
LEAD_COLUMNS = ("lead_id", "created_at")
EVENT_COLUMNS = ("lead_id", "at", "type")


def require_columns(frame: pd.DataFrame, columns: Sequence[str], table: str) -> None:
    """Raise a ValueError naming the ``columns`` missing from ``frame``."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"column(s) {missing} not found in {table} (columns present: {list(frame.columns)})")


def to_ns(values: pd.Series, where: str, *, allow_missing: bool) -> np.ndarray:
    """Timestamps as int64 nanoseconds since the epoch, UTC (naive values are taken as UTC; NaT -> NONE_YET)."""
    if not pd.api.types.is_datetime64_any_dtype(values):
        raise ValueError(
            f"{where} must hold timestamps, not {values.dtype} (validate it with leadscore.data.contracts)"
        )
    if getattr(values.dt, "tz", None) is None:
        values = values.dt.tz_localize("UTC")
    out = np.asarray(values.dt.as_unit("ns").array.asi8)
    if not allow_missing and (out == NONE_YET).any():
        rows = (np.flatnonzero(out == NONE_YET)[:5] + 1).tolist()
        raise ValueError(f"{where} is missing on data rows {rows}")
    return out


def cutoff_timestamp(cutoff: object) -> pd.Timestamp:
    """A cutoff as a UTC timestamp in nanoseconds; naive values are taken as UTC.

    Examples
    --------
    >>> str(cutoff_timestamp("2024-03-01"))
    '2024-03-01 00:00:00+00:00'
    """
    try:
        t = pd.Timestamp(cutoff)
    except (TypeError, ValueError) as err:
        raise ValueError(f"cutoff {cutoff!r} is not a time") from err
    if pd.isna(t):
        raise ValueError(f"cutoff {cutoff!r} is not a time")
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return t.as_unit("ns")


def _strings(values: pd.Series) -> pa.Array:
    """A column as one arrow string array: zero copy for pandas' arrow-backed ``str`` columns."""
    arrow_backed = isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow"
    if not arrow_backed:
        values = values.astype("str")
    arr = pa.array(values)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = arr.cast(pa.large_string())
    return arr


def _encode(values: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Integer codes (-1 for missing) and the distinct values, by hashing."""
    encoded = pc.dictionary_encode(values)
    return encoded.indices.fill_null(-1).to_numpy().astype(np.int64), encoded.dictionary


@dataclass
class PreparedEvents:
    """Leads and their events encoded once; see :func:`prepare_events` and
    :func:`leadscore.features.builder.features_at`.

    Per lead (in the leads table's order): ``lead_ids``, ``created``, ``first_close`` (first won/lost),
    ``first_won``, ``first_interaction`` (int64 ns, NEVER if none) and the static ``attributes``. Per event, in
    time order: ``ev_lead`` (lead position), ``ev_at`` (int64 ns) and ``ev_type`` (index into ``type_names``).
    ``sparse`` holds the event kinds that need more than a count, each as arrays in time order (stage changes
    and amounts sorted by (lead, at), for the last known value).
    """

    lead_ids: pd.Series
    created: np.ndarray
    first_close: np.ndarray
    first_won: np.ndarray
    first_interaction: np.ndarray
    attributes: pd.DataFrame
    ev_lead: np.ndarray
    ev_at: np.ndarray
    ev_type: np.ndarray
    type_names: list[str | None]
    sparse: dict[str, dict[str, np.ndarray]]
    stage_names: np.ndarray
    cache: dict = field(default_factory=dict, repr=False)  # per extra-types vocabulary: slot codes and keys

    @property
    def n_leads(self) -> int:
        return len(self.created)

    @property
    def n_events(self) -> int:
        return len(self.ev_at)

    def open_at(self, cutoff: object) -> np.ndarray:
        """Boolean mask over the leads: created at or before ``cutoff`` and not won or lost by then."""
        t = cutoff_timestamp(cutoff).value
        return (self.created <= t) & (self.first_close > t)

    def known_until(self, t: int) -> int:
        """How many events (a prefix, as they are in time order) happened at or before ``t`` (ns)."""
        return int(np.searchsorted(self.ev_at, t, side="right"))

    def last_two_known(self, t: int, leads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For the leads at positions ``leads``, the positions of their last and next-to-last events at or before
        ``t`` (ns); -1 where there is none.

        Positions are in time order with ties in row order, so the latest is the largest: two ``np.maximum.at``
        passes over the known prefix (the second without each lead's last event).
        """
        k = self.known_until(t)
        position, lead = np.arange(k), self.ev_lead[:k]
        last = np.full(self.n_leads, -1, dtype=np.int64)
        np.maximum.at(last, lead, position)
        earlier = position != last[lead]
        previous = np.full(self.n_leads, -1, dtype=np.int64)
        np.maximum.at(previous, lead[earlier], position[earlier])
        return last[leads], previous[leads]


def attribute_names(leads: pd.DataFrame) -> list[str]:
    """The lead attributes of a leads table: every column but identity, time, ownership and ``source``.

    Examples
    --------
    >>> attribute_names(pd.DataFrame(columns=["lead_id", "created_at", "source", "stage", "label"]))
    ['stage', 'label']
    """
    skip = {*catalogue.NON_ATTRIBUTE_LEAD_COLUMNS, "source"}
    return [str(c) for c in leads.columns if c not in skip]


def attribute_frame(leads: pd.DataFrame, attributes: Sequence[str] | None = None) -> pd.DataFrame:
    """Static attributes: ``source`` (always, as a string) and each lead attribute as ``attr_{name}``.

    ``attributes`` chooses the attributes (default: every one of :func:`attribute_names`); a chosen name the
    table lacks is left out. Numbers and booleans stay numeric (float64); timestamps are left out (a raw date is
    no feature and may lie after the cutoff); everything else becomes a string category. Only the chosen columns
    are read, so a table with hundreds of custom fields costs what its chosen few cost.

    Examples
    --------
    >>> leads = pd.DataFrame({"lead_id": ["a"], "stage": ["proposal"], "size": [40]})
    >>> attribute_frame(leads).columns.tolist()
    ['source', 'attr_stage', 'attr_size']
    >>> attribute_frame(leads, ["size", "absent"]).columns.tolist()
    ['source', 'attr_size']
    """
    out = {}
    source = leads["source"] if "source" in leads.columns else pd.Series(np.nan, index=leads.index)
    out["source"] = source.astype("str").where(source.notna())
    names = attribute_names(leads) if attributes is None else [a for a in attributes if a in leads.columns]
    for name in names:
        values = leads[name]
        if pd.api.types.is_datetime64_any_dtype(values):
            continue
        column = catalogue.attribute_column(name)
        if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
            out[column] = values.astype("float64")
        else:
            out[column] = values.astype("str").where(values.notna())
    return pd.DataFrame(out).reset_index(drop=True)


def _optional(events: pd.DataFrame, column: str, rows: np.ndarray | None, kind: str, n: int) -> np.ndarray:
    """An optional event column at positions ``rows`` (all if None): "time" as ns ints or "float" as floats."""
    if column not in events.columns:
        return np.full(n, NONE_YET, dtype=np.int64) if kind == "time" else np.full(n, np.nan)
    values = events[column] if rows is None else events[column].iloc[rows]
    if kind == "time":
        return to_ns(values, f"events.{column}", allow_missing=True)
    try:
        return pd.to_numeric(values, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as err:
        raise ValueError(f"events.{column} must hold numbers (validate it with leadscore.data.contracts)") from err


def _lead_positions(leads: pd.DataFrame, events: pd.DataFrame) -> tuple[pd.Series, np.ndarray]:
    """The lead ids (checked unique) and, per event, the position of its lead (-1 if not in ``leads``)."""
    lead_array = _strings(leads["lead_id"])
    if len(pc.unique(lead_array)) != len(lead_array):
        ids = leads["lead_id"].astype("str")
        raise ValueError(f"duplicate lead_id in leads: {sorted(set(ids[ids.duplicated()]))[:5]}")
    codes, distinct = _encode(_strings(events["lead_id"]))
    position = pc.index_in(distinct, value_set=lead_array).fill_null(-1).to_numpy().astype(np.int64)
    return leads["lead_id"].astype("str").reset_index(drop=True), np.append(position, -1)[codes]


def prepare_events(
    leads: pd.DataFrame, events: pd.DataFrame, *, attributes: Sequence[str] | None = None
) -> PreparedEvents:
    """Encode leads and events once, for features at any number of cutoffs.

    Parameters
    ----------
    leads : DataFrame
        At least ``lead_id`` (unique) and ``created_at``; ``source`` and other columns become static features.
    events : DataFrame
        At least ``lead_id``, ``at`` and ``type``; the optional contract columns (``scheduled_for``,
        ``duration_s``, ``stage``, ``amount``, ``subtype``) are used when present. Events of leads that are not
        in ``leads`` are ignored, so a subset of the leads can be given with all the events.
    attributes : sequence of str, optional
        The lead attributes to keep as features (``attr_{name}``); default: every extra column of ``leads``.

    Raises
    ------
    ValueError
        Naming the missing column, the duplicate lead ids or the rows without a timestamp.

    Examples
    --------
    >>> import pandas as pd
    >>> leads = pd.DataFrame({"lead_id": ["a", "b"], "created_at": pd.to_datetime(["2024-01-01"] * 2, utc=True)})
    >>> events = pd.DataFrame({"lead_id": ["a", "b"], "type": ["call", "won"],
    ...                        "at": pd.to_datetime(["2024-01-02", "2024-01-03"], utc=True)})
    >>> prepared = prepare_events(leads, events)
    >>> prepared.open_at("2024-01-05").tolist()
    [True, False]
    """
    require_columns(leads, LEAD_COLUMNS, "leads")
    require_columns(events, EVENT_COLUMNS, "events")
    lead_ids, ev_lead = _lead_positions(leads, events)
    created = to_ns(leads["created_at"], "leads.created_at", allow_missing=False)
    ev = _Events.encode(events, ev_lead, len(lead_ids))
    sparse = {
        "stages": _stage_changes(ev),
        "amounts": _amounts(ev),
        "calls": _calls(ev),
        **_scheduling(ev),
        "replies": reply_latency(ev.lead, ev.at, ev.is_type("email_sent"), ev.is_type("email_replied")),
    }
    return PreparedEvents(
        lead_ids=lead_ids,
        created=created,
        first_close=ev.first_time(ev.is_type(*CLOSING_EVENT_TYPES)),
        first_won=ev.first_time(ev.is_type("won")),
        first_interaction=ev.first_time(~ev.is_type(*NOT_INTERACTION_TYPES)),
        attributes=attribute_frame(leads, attributes),
        ev_lead=ev.lead,
        ev_at=ev.at,
        ev_type=ev.type,
        type_names=ev.type_names,
        sparse=sparse,
        stage_names=sparse["stages"].pop("names"),
    )


@dataclass(kw_only=True)
class _Events:
    """The events of the leads, in time order (ties in row order), while they are being encoded."""

    frame: pd.DataFrame  # the input events
    rows: np.ndarray | None  # input row of each encoded event (None: the same order as the input)
    lead: np.ndarray
    at: np.ndarray
    type: np.ndarray
    type_names: list[str | None]
    n_leads: int

    @classmethod
    def encode(cls, events: pd.DataFrame, ev_lead: np.ndarray, n_leads: int) -> _Events:
        at = to_ns(events["at"], "events.at", allow_missing=False)
        ours = ev_lead >= 0
        rows = None if ours.all() else np.flatnonzero(ours)
        if rows is not None:
            ev_lead, at = ev_lead[rows], at[rows]
        if at.size > 1 and not (at[1:] >= at[:-1]).all():
            order = np.argsort(at, kind="stable")
            rows = order if rows is None else rows[order]
            ev_lead, at = ev_lead[order], at[order]
        codes, distinct = _encode(_strings(events["type"]))
        type_names: list[str | None] = [*distinct.to_pylist(), None]  # code -1 (a missing type) -> the last
        codes = codes if rows is None else codes[rows]
        codes = np.where(codes < 0, len(type_names) - 1, codes)
        return cls(frame=events, rows=rows, lead=ev_lead, at=at, type=codes, type_names=type_names, n_leads=n_leads)

    def is_type(self, *names: str) -> np.ndarray:
        return np.isin(np.asarray(self.type_names, dtype=object), names)[self.type]

    def first_time(self, mask: np.ndarray) -> np.ndarray:
        """Per lead, the time of its first masked event (NEVER if none)."""
        out = np.full(self.n_leads, NEVER, dtype=np.int64)
        if mask.sum() * 4 < mask.size:  # a few events: gather them
            np.minimum.at(out, self.lead[mask], self.at[mask])
        else:  # most events: mask the times rather than copy the leads too
            np.minimum.at(out, self.lead, np.where(mask, self.at, NEVER))
        return out

    def subset(self, mask: np.ndarray, *, by_lead: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Positions of the masked events and their leads and times, in time order or by (lead, at)."""
        pos = np.flatnonzero(mask)
        if by_lead:  # ties in row order: for "the last known value" of a lead
            pos = pos[np.argsort(self.lead[pos], kind="stable")]
        return pos, {"lead": self.lead[pos], "at": self.at[pos]}

    def text(self, name: str, pos: np.ndarray) -> pa.Array:
        """An optional string column at encoded positions ``pos``, as arrow strings (all null if absent)."""
        if name not in self.frame.columns:
            return pa.nulls(pos.size, pa.large_string())
        rows = pos if self.rows is None else self.rows[pos]
        return _strings(self.frame[name].iloc[rows])

    def column(self, name: str, pos: np.ndarray | None, kind: str) -> np.ndarray:
        """An optional input column at encoded positions ``pos`` (all if None)."""
        rows = self.rows if pos is None else (pos if self.rows is None else self.rows[pos])
        return _optional(self.frame, name, rows, kind, self.at.size if pos is None else pos.size)


def _stage_changes(ev: _Events) -> dict[str, np.ndarray]:
    """Stage changes that name a stage, by (lead, at), with the stage's code and rank; "names" decodes them."""
    pos, out = ev.subset(ev.is_type("stage_changed"), by_lead=True)
    codes, distinct = _encode(ev.text("stage", pos))
    named = codes >= 0
    stage_names = distinct.to_pylist()
    rank_of = {s: i for i, s in enumerate(STAGES)}
    out = {k: v[named] for k, v in out.items()}
    out["code"] = codes[named]
    out["rank"] = np.array([rank_of.get(s, 0) for s in stage_names], dtype=np.int32)[out["code"]]
    out["names"] = np.asarray(stage_names, dtype=object)
    return out


def _amounts(ev: _Events) -> dict[str, np.ndarray]:
    """Events with an amount, by (lead, at)."""
    amount = ev.column("amount", None, "float")
    pos, out = ev.subset(~np.isnan(amount), by_lead=True)
    return {**out, "amount": amount[pos]}


def _calls(ev: _Events) -> dict[str, np.ndarray]:
    """Calls: whether cold, and their duration."""
    pos, out = ev.subset(ev.is_type("call"))
    cold = pc.equal(ev.text("subtype", pos), COLD_CALL_SUBTYPE).fill_null(False)
    out["cold"] = cold.to_numpy(zero_copy_only=False).astype(bool)
    out["duration_s"] = ev.column("duration_s", pos, "float")
    return out


def _scheduling(ev: _Events) -> dict[str, dict[str, np.ndarray]]:
    """Scheduling and cancelling events, each with its (lead, scheduled_for) pair code; meetings and when due."""
    scheduled_for = ev.column("scheduled_for", None, "time")
    has_due = scheduled_for != NONE_YET
    pos_s, scheduling = ev.subset(has_due & ~ev.is_type(*NOT_SCHEDULING_TYPES))
    pos_c, cancelling = ev.subset(has_due & ev.is_type(*CANCELLING_TYPES))
    due_codes, distinct = pd.factorize(np.concatenate([scheduled_for[pos_s], scheduled_for[pos_c]]))
    n_due = max(len(distinct), 1)
    scheduling["scheduled_for"] = scheduled_for[pos_s]
    scheduling["pair"] = scheduling["lead"] * n_due + due_codes[: pos_s.size]
    cancelling["pair"] = cancelling["lead"] * n_due + due_codes[pos_s.size :]
    pos, meetings = ev.subset(ev.is_type("meeting_scheduled"))
    meetings["due"] = np.where(has_due[pos], scheduled_for[pos], meetings["at"])  # when it is to take place
    return {"scheduling": scheduling, "cancelling": cancelling, "meetings": meetings}


def reply_latency(lead: np.ndarray, at: np.ndarray, sent: np.ndarray, replied: np.ndarray) -> dict:
    """Per reply: hours since the latest email_sent of its lead at or before it (NaN if none), by merge_asof.

    ``at`` must be in time order. A reply and the send before it are both known at any cutoff the reply is known
    at, so a reply's latency does not depend on the cutoff and is computed once.
    """
    replies = pd.DataFrame({"lead": lead[replied], "at": at[replied]})
    sent_at = at[sent]
    sends = pd.DataFrame({"lead": lead[sent], "sent_at": sent_at, "send": np.arange(sent_at.size)})
    matched = pd.merge_asof(
        replies, sends, left_on="at", right_on="sent_at", by="lead", direction="backward", allow_exact_matches=True
    )
    send = matched["send"].to_numpy(dtype=np.float64, na_value=np.nan)
    reply_at = matched["at"].to_numpy(dtype=np.int64)
    ok = ~np.isnan(send)
    latency = np.full(reply_at.size, np.nan)
    latency[ok] = (reply_at[ok] - sent_at[send[ok].astype(np.int64)]) / HOUR_NS
    return {"lead": matched["lead"].to_numpy(dtype=np.int64), "at": reply_at, "latency_h": latency}
