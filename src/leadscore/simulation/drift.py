"""Drift to inject into a simulated CRM from a given date, with the truth kept exact: what the monitor must catch.

- :class:`SourceDrift`: from ``start``, a source's leads convert ``factor`` times as often. Each lead of the
  source is, with probability ``1 - factor``, *doomed*: its first transition at or after ``start`` closes it
  as lost (whatever the hidden chain would have done), so it can no longer be won after ``start``. Because the
  doomed leads are drawn independently of everything else, the source's chance of a win after ``start`` is
  multiplied by exactly ``factor``, and the truth stays exact: a doomed lead's win probability is its chance of
  a win before ``start`` (zero from ``start`` on).
- :class:`NewEventType`: from ``start``, events of a type never seen before (a webinar, say) happen to open
  leads, as a Poisson process of ``rate`` a day scaled by the lead's interest (as web visits are). They carry
  no information the chain does not already hold, so the truth is unchanged.

Both draw from a generator of their own (seeded from the simulation's seed), so a simulation without drift is
the same as before, byte for byte.

Examples
--------
>>> from leadscore.simulation.simulator import simulate
>>> sim = simulate(n_leads=300, n_reps=4, months=6, seed=1, drift=[NewEventType(start="2024-04-01")])
>>> bool((sim.data.events.loc[sim.data.events["type"] == "webinar", "at"] >= "2024-04-01").all())
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadscore.simulation.process import LOST, Paths
from leadscore.simulation.types import SOURCES, LeadTable


def seconds_of(when) -> int:
    stamp = pd.Timestamp(when)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.timestamp())


@dataclass(frozen=True)
class SourceDrift:
    """From ``start``, the leads of ``source`` convert ``factor`` times as often (default: half)."""

    source: str = "web"
    start: str | pd.Timestamp = "2024-10-01"
    factor: float = 0.5

    def __post_init__(self):
        names = [s[0] for s in SOURCES]
        if self.source not in names:
            raise ValueError(f"source {self.source!r} is not one of the simulated sources {names}")
        if not 0.0 <= self.factor <= 1.0:
            raise ValueError(f"factor must be in [0, 1] (a conversion rate can only be cut), got {self.factor}")


@dataclass(frozen=True)
class NewEventType:
    """From ``start``, events of ``type`` happen to open leads, ``rate`` a day for a lead of average interest."""

    type: str = "webinar"
    start: str | pd.Timestamp = "2024-10-01"
    rate: float = 0.05


def doom_leads(
    paths: Paths, leads: LeadTable, drift: SourceDrift, rng: np.random.Generator
) -> tuple[Paths, np.ndarray]:
    """The paths with the doomed leads lost at their first transition from ``drift.start`` on; also the mask of
    doomed leads."""
    code = [s[0] for s in SOURCES].index(drift.source)
    n = len(leads.created_s)
    doomed = (leads.source == code) & (rng.random(n) < 1.0 - drift.factor)
    start_s = seconds_of(drift.start)
    # Each doomed lead's first stay that ends (by a transition) at or after the start: it ends in a loss instead.
    ends_later = doomed[paths.lead] & (paths.end_s >= start_s) & (paths.next_state >= 0)
    idx = np.flatnonzero(ends_later)
    first = idx[np.r_[True, paths.lead[idx][1:] != paths.lead[idx][:-1]]] if len(idx) else idx
    cut = np.full(n, np.iinfo(np.int64).max)
    cut[paths.lead[first]] = first  # the row index of the turning stay, per lead
    keep = np.arange(len(paths.lead)) <= cut[paths.lead]
    next_state = paths.next_state.copy()
    next_state[first] = LOST
    fields = {f: getattr(paths, f) for f in paths.__dataclass_fields__}
    fields["next_state"] = next_state
    return Paths(**{f: v[keep] for f, v in fields.items()}), doomed


def new_type_events(
    events: pd.DataFrame,
    leads_df: pd.DataFrame,
    leads: LeadTable,
    drift: NewEventType,
    end_s: int,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """``events`` with the new type's events added (ids ``evn_...``), for every lead open from ``drift.start``."""
    start_s = seconds_of(drift.start)
    closing = events[events["type"].isin(("won", "lost"))].groupby("lead_id")["at"].min()
    close_s = leads_df["lead_id"].map(closing).map(lambda t: t.timestamp(), na_action="ignore")
    close_s = close_s.fillna(end_s).to_numpy(dtype=float)
    begin = np.maximum(leads.created_s.astype(float), start_s)
    stop = np.minimum(close_s, end_s)
    days = np.clip(stop - begin, 0.0, None) / 86_400.0
    counts = rng.poisson(drift.rate * days * (1.0 + np.exp(leads.interest)) / 2.0)
    lead = np.repeat(np.arange(len(days)), counts)
    at = np.floor(begin[lead] + rng.random(len(lead)) * (stop[lead] - begin[lead])).astype(np.int64)
    width = max(7, len(str(len(lead))))
    added = pd.DataFrame(
        {
            "event_id": "evn_" + pd.Series(np.arange(1, len(lead) + 1)).astype("str").str.zfill(width),
            "lead_id": leads_df["lead_id"].to_numpy()[lead],
            "at": pd.to_datetime(at, unit="s", utc=True).as_unit("ns"),
            "type": drift.type,
        }
    )
    out = pd.concat([events, added.astype({c: events[c].dtype for c in added.columns})], ignore_index=True)
    return out.sort_values(["at", "lead_id"], kind="stable").reset_index(drop=True)
