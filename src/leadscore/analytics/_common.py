"""Shared steps of the analytics: resolving ranges, attributing events to reps, outcomes, groupings."""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.analytics.periods import PERIODS, as_ns, check_period, check_range, floor, utc
from leadscore.data.contracts import OUTBOUND_EVENT_TYPES, CrmData
from leadscore.data.times import DAY_NS

# Columns of the leads table that are not a grouping (identity and time).
_NOT_GROUPINGS = ("lead_id", "created_at")
# Events a salesperson does to move a lead: they count as a response and as activity.
OUTBOUND_TYPES: tuple[str, ...] = OUTBOUND_EVENT_TYPES


def resolve_range(data: CrmData, start=None, end=None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``[start, end)`` with defaults: from the first lead's day to the day after the data set's last event."""
    if start is None:
        first = [t for t in (data.leads["created_at"].min(), data.events["at"].min()) if pd.notna(t)]
        if not first:
            raise ValueError("the data set is empty: give start and end explicitly")
        start = min(first).floor("D")
    if end is None:
        end = utc(data.end).floor("D") + pd.Timedelta(days=1)
    return check_range(start, end)


def resolve_as_of(data: CrmData, as_of=None) -> pd.Timestamp:
    """The moment figures are computed at (exclusive); by default just after the data set's last event."""
    if as_of is None:
        return utc(data.end) + pd.Timedelta(1, "ns")
    return utc(as_of, "as_of")


def group_choices(leads: pd.DataFrame) -> list[str]:
    """Groupings a lead can be put in: ``period`` (of creation), ``owner`` and every attribute column."""
    attrs = [c for c in leads.columns if c not in _NOT_GROUPINGS and c != "owner_id"]
    return ["period", "owner", *attrs]


def check_group_by(leads: pd.DataFrame, group_by: str | None) -> str | None:
    """Return ``group_by`` if the leads can be grouped by it, else raise a ValueError listing the choices."""
    if group_by is None:
        return None
    choices = group_choices(leads)
    if group_by not in choices:
        raise ValueError(f"unknown grouping {group_by!r}; choose one of {choices}")
    return group_by


def lead_groups(leads: pd.DataFrame, group_by: str | None, period: str, times: pd.Series | None = None) -> pd.Series:
    """The group label of each lead (or of each time in ``times`` when grouping by period)."""
    if group_by == "period":
        check_period(period, PERIODS)
        return floor(leads["created_at"] if times is None else times, period)
    column = "owner_id" if group_by == "owner" else group_by
    return leads[column].astype("str").fillna("(none)")


def encode(values: pd.Series, categories) -> np.ndarray:
    """Position of each value in ``categories`` (int64), -1 for a value not among them or missing.

    Factorising first and looking up only the distinct values is many times faster than
    ``Index.get_indexer`` on millions of strings.

    Examples
    --------
    >>> encode(pd.Series(["b", "x", None, "a"]), ["a", "b"]).tolist()
    [1, -1, -1, 0]
    """
    codes, uniques = pd.factorize(values)
    # Reuse an Index as given: a new Index would rebuild its hash table (costly for 200,000 lead ids).
    index = categories if isinstance(categories, pd.Index) else pd.Index(categories)
    return take(index.get_indexer(uniques), codes)


def outcomes(data: CrmData, as_of: pd.Timestamp) -> pd.DataFrame:
    """Each closed lead's first closing event before ``as_of``.

    Returns columns ``lead_id``, ``outcome`` ("won"/"lost"), ``closed_at``, ``amount``, ``reason``, ``rep_id``.
    """
    ev = data.events
    mask = ev["type"].isin(("won", "lost")).to_numpy() & (as_ns(ev["at"]) < as_of.value)
    closing = ev.loc[mask, ["lead_id", "type", "at", "amount", "subtype", "rep_id"]]
    closing = closing.sort_values("at", kind="stable").drop_duplicates("lead_id", keep="first")
    names = {"type": "outcome", "at": "closed_at", "subtype": "reason"}
    return closing.rename(columns=names).reset_index(drop=True)


def take(lookup: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``lookup[codes]`` with -1 wherever ``codes`` is -1 (also when ``lookup`` is empty)."""
    return np.append(np.asarray(lookup, dtype=np.int64), -1)[codes]


class Encoded:
    """The events and leads as integer arrays, computed once and shared by every figure of one call.

    ``at``: event times (int64 ns); ``types``/``type_codes``: the event types present and each event's code;
    ``reps``: a sorted index of every rep id (event reps and lead owners); ``rep``: who each event counts for
    (its ``rep_id``, else the lead's owner; -1: no one); ``owner``: each lead's owner code.

    Examples
    --------
    >>> from leadscore.data.contracts import CrmData
    >>> data = CrmData.from_frames(
    ...     pd.DataFrame({"lead_id": ["a", "b"], "created_at": ["2024-01-01"] * 2, "owner_id": ["ann", None]}),
    ...     pd.DataFrame({"event_id": ["1", "2", "3"], "lead_id": ["a", "a", "b"], "at": ["2024-01-02"] * 3,
    ...                   "type": ["call"] * 3, "rep_id": ["bob", None, None]}))
    >>> enc = Encoded(data)
    >>> [enc.reps[c] if c >= 0 else None for c in enc.rep]
    ['bob', 'ann', None]
    """

    def __init__(self, data: CrmData):
        self.data = data
        ev, leads = data.events, data.leads
        self.lead_index = pd.Index(leads["lead_id"])
        self.at = as_ns(ev["at"])
        self.type_codes, self.types = pd.factorize(ev["type"])
        rep_codes, rep_names = pd.factorize(ev["rep_id"])
        owner_codes, owner_names = pd.factorize(leads["owner_id"])
        self.reps = pd.Index(sorted(set(rep_names) | set(owner_names)), dtype=object)
        self.owner = take(self.reps.get_indexer(owner_names), owner_codes)
        self.rep = take(self.reps.get_indexer(rep_names), rep_codes)
        missing = np.flatnonzero(self.rep < 0)
        if len(missing):
            self.rep[missing] = take(self.owner, self.lead_positions(ev["lead_id"].iloc[missing]))

    def lead_positions(self, lead_ids: pd.Series) -> np.ndarray:
        """Position of each lead id in the leads table (-1: unknown)."""
        return encode(lead_ids, self.lead_index)

    def type_code(self, names) -> np.ndarray:
        """Each event's position in ``names`` (-1: another type)."""
        return take(pd.Index(names).get_indexer(self.types), self.type_codes)

    def is_type(self, name: str) -> np.ndarray:
        """Mask of the events of one type."""
        code = self.types.get_indexer([name])[0]
        return self.type_codes == code if code >= 0 else np.zeros(len(self.type_codes), dtype=bool)

    def attribute_closings(self, closings: pd.DataFrame) -> np.ndarray:
        """Rep codes of closing events (from :func:`outcomes`): the event's rep, else the lead's owner."""
        codes, names = pd.factorize(closings["rep_id"])
        rep = take(self.reps.get_indexer(names), codes)
        missing = np.flatnonzero(rep < 0)
        if len(missing):
            rep[missing] = take(self.owner, self.lead_positions(closings["lead_id"].iloc[missing]))
        return rep


def days(ns: np.ndarray) -> np.ndarray:
    """Nanosecond durations as float days."""
    return np.asarray(ns, dtype="float64") / DAY_NS


def safe_ratio(num, den) -> np.ndarray:
    """``num / den`` with NaN where ``den`` is zero (a rate of nothing is unknown, not zero)."""
    num = np.asarray(num, dtype="float64")
    den = np.asarray(den, dtype="float64")
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out
