"""Why a lead was not scored at a cutoff: only leads open at the cutoff are scored (created by then, not closed)."""

from __future__ import annotations

from collections.abc import Collection

import pandas as pd

from leadscore.data.contracts import CLOSING_EVENT_TYPES


def why_not_scored(
    leads: pd.DataFrame, events: pd.DataFrame, scored: Collection[str], cutoff: pd.Timestamp
) -> dict[str, str]:
    """For each lead of ``leads`` whose id is not in ``scored``, why: created after the cutoff, or closed.

    Examples
    --------
    >>> created = pd.to_datetime(["2024-01-01", "2024-03-01"], utc=True)
    >>> leads = pd.DataFrame({"lead_id": ["a", "b"], "created_at": created})
    >>> events = pd.DataFrame({"lead_id": ["a"], "type": ["won"], "at": pd.to_datetime(["2024-01-20"], utc=True)})
    >>> why_not_scored(leads, events, set(), pd.Timestamp("2024-02-01", tz="UTC"))["b"]
    'created at 2024-03-01T00:00:00+00:00, after the cutoff'
    """
    left = leads.loc[~leads["lead_id"].isin(scored), ["lead_id", "created_at"]]
    if left.empty:
        return {}
    closing = events[events["type"].isin(CLOSING_EVENT_TYPES) & (events["at"] <= cutoff)]
    first_close = closing.sort_values("at").drop_duplicates("lead_id").set_index("lead_id")
    reasons = {}
    for lead_id, created in zip(left["lead_id"], left["created_at"], strict=True):
        if created > cutoff:
            reason = f"created at {created.isoformat()}, after the cutoff"
        elif lead_id in first_close.index:
            row = first_close.loc[lead_id]
            reason = f"closed ({row['type']}) at {row['at'].isoformat()}: closed leads are not scored"
        else:
            reason = "not open at the cutoff"
        reasons[str(lead_id)] = reason
    return reasons
