"""Context features: what other leads' outcomes say about a lead, from outcomes known at the cutoff only.

Unlike :mod:`leadscore.features.builder`, these depend on more than the lead's own rows (a salesperson's record is made
of other leads), so they are not partition invariant and are kept as a separate, explicit step (docs/architecture.md):
compute the feature frame (per partition, if need be), then join the context onto it.

The owner's win rate at ``t`` counts the leads of the same owner closed (won or lost) at or before ``t`` and
shrinks it towards the team's rate at ``t``: ``(wins + k * team_rate) / (closed + k)``. A lead scored at ``t``
is open at ``t``, so its own outcome is never part of it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.data.contracts import CLOSING_EVENT_TYPES
from leadscore.features.history import require_columns

CONTEXT_COLUMNS = ("owner_win_rate", "owner_closed_leads")


def _outcomes(leads: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Each closed lead's owner, when it closed (its first won/lost event) and whether it was won, by time."""
    closing = events.loc[events["type"].isin(CLOSING_EVENT_TYPES), ["lead_id", "at", "type"]]
    first = closing.sort_values("at", kind="stable").drop_duplicates("lead_id", keep="first")
    out = first.merge(leads[["lead_id", "owner_id"]], on="lead_id", how="inner")
    out = out.assign(won=(out["type"] == "won").astype(np.int64), closed=1).sort_values("at", kind="stable")
    out["owner_id"] = out["owner_id"].astype("str").fillna("")
    return out[["owner_id", "at", "won", "closed"]].reset_index(drop=True)


def add_owner_context(
    frame: pd.DataFrame, leads: pd.DataFrame, events: pd.DataFrame, *, prior_strength: float = 10.0
) -> pd.DataFrame:
    """``frame`` (with ``lead_id`` and ``cutoff``) plus the owner's smoothed win rate and closed leads at cutoff.

    Parameters
    ----------
    frame : DataFrame
        A feature frame or training set: ``lead_id`` and ``cutoff`` columns, any number of cutoffs.
    leads, events : DataFrame
        The canonical tables; ``leads`` needs ``owner_id``.
    prior_strength : float
        How many closed leads the team's rate counts for in the shrinkage.

    Examples
    --------
    >>> import pandas as pd
    >>> leads = pd.DataFrame({"lead_id": ["a", "b", "c"], "owner_id": ["ann", "ann", "ann"]})
    >>> events = pd.DataFrame({"lead_id": ["a", "b"], "type": ["won", "lost"],
    ...                        "at": pd.to_datetime(["2024-01-02", "2024-01-03"], utc=True)})
    >>> frame = pd.DataFrame({"lead_id": ["c", "c"],
    ...                       "cutoff": pd.to_datetime(["2024-01-01", "2024-01-05"], utc=True)})
    >>> add_owner_context(frame, leads, events, prior_strength=2)[["owner_closed_leads", "owner_win_rate"]]
       owner_closed_leads  owner_win_rate
    0                   0             0.5
    1                   2             0.5
    """
    require_columns(frame, ("lead_id", "cutoff"), "the feature frame")
    require_columns(leads, ("lead_id", "owner_id"), "leads")
    require_columns(events, ("lead_id", "at", "type"), "events")
    outcomes = _outcomes(leads, events)
    team = outcomes[["won", "closed"]].cumsum().assign(at=outcomes["at"])
    per_owner = outcomes.groupby("owner_id", sort=False)[["won", "closed"]].cumsum()
    per_owner = per_owner.assign(owner_id=outcomes["owner_id"], at=outcomes["at"])

    owners = frame[["lead_id", "cutoff"]].merge(leads[["lead_id", "owner_id"]], on="lead_id", how="left")
    query = pd.DataFrame(
        {
            "row": np.arange(len(frame)),
            "cutoff": frame["cutoff"].to_numpy(),
            "owner_id": owners["owner_id"].astype("str").fillna("").to_numpy(),
        }
    ).sort_values("cutoff", kind="stable")
    cutoff_type = query["cutoff"].dtype
    team = team.astype({"at": cutoff_type})
    per_owner = per_owner.astype({"at": cutoff_type})
    at_team = pd.merge_asof(query, team, left_on="cutoff", right_on="at", direction="backward")
    at_owner = pd.merge_asof(query, per_owner, left_on="cutoff", right_on="at", by="owner_id", direction="backward")
    team_won = at_team["won"].fillna(0).to_numpy()
    team_closed = at_team["closed"].fillna(0).to_numpy()
    team_rate = (team_won + 1.0) / (team_closed + 2.0)
    won = at_owner["won"].fillna(0).to_numpy()
    closed = at_owner["closed"].fillna(0).to_numpy()
    rate = (won + prior_strength * team_rate) / (closed + prior_strength)

    out = frame.copy()
    order = query["row"].to_numpy()
    out["owner_win_rate"] = np.empty(len(frame))
    out["owner_closed_leads"] = np.zeros(len(frame), dtype=np.int64)
    out.iloc[order, out.columns.get_loc("owner_win_rate")] = rate
    out.iloc[order, out.columns.get_loc("owner_closed_leads")] = closed.astype(np.int64)
    return out
