"""The training set: snapshots of the open leads at a series of cutoffs, each labelled with its future.

A snapshot is a (lead, cutoff) pair for a lead open at the cutoff (created at or before it, not won or lost by
then). Its label is 1 if the lead is won within ``(cutoff, cutoff + horizon]``, else 0. A cutoff whose horizon
runs past the end of the data (``data.end``) cannot be labelled yet: its snapshots are censored (left out), not
labelled negative. Features come from :mod:`leadscore.features.builder`, computed from what was known at the cutoff.

Examples
--------
>>> import pandas as pd
>>> from leadscore.data.contracts import CrmData
>>> leads = pd.DataFrame({"lead_id": ["a", "b"], "created_at": ["2024-01-01", "2024-01-01"]})
>>> events = pd.DataFrame({"event_id": ["1", "2"], "lead_id": ["a", "b"], "type": ["won", "call"],
...                        "at": ["2024-01-20", "2024-06-01"]})
>>> data = CrmData.from_frames(leads, events)
>>> label_snapshots(data, ["2024-01-08"], horizon_days=30)[["lead_id", "label"]].to_dict("list")
{'lead_id': ['a', 'b'], 'label': [1, 0]}
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from leadscore.data.contracts import CrmData
from leadscore.data.times import DAY_NS
from leadscore.features.builder import features_at
from leadscore.features.catalogue import CATALOGUE_VERSION
from leadscore.features.history import PreparedEvents, cutoff_timestamp, prepare_events

HORIZON_DAYS = 90
_MONDAY = pd.Timestamp("1970-01-05", tz="UTC")  # weekly cutoffs fall on Mondays 00:00 UTC, like the simulator's


def weekly_cutoffs(
    data: CrmData,
    *,
    every_days: int = 7,
    start: object = None,
    end: object = None,
) -> pd.DatetimeIndex:
    """Cutoffs every ``every_days`` days at 00:00 UTC in ``(start, end]``.

    The grid is anchored on Mondays (with the default 7 days, every Monday), so that cutoffs from different
    data sets and from the simulator's ground truth line up. ``start`` defaults to the first lead's creation and
    ``end`` to ``data.end``; censoring by the horizon happens in :func:`label_snapshots`, not here.

    Examples
    --------
    >>> import pandas as pd
    >>> from leadscore.data.contracts import CrmData
    >>> leads = pd.DataFrame({"lead_id": ["a"], "created_at": ["2024-01-03"]})
    >>> events = pd.DataFrame({"event_id": ["1"], "lead_id": ["a"], "type": ["call"], "at": ["2024-01-30"]})
    >>> [str(t.date()) for t in weekly_cutoffs(CrmData.from_frames(leads, events))]
    ['2024-01-08', '2024-01-15', '2024-01-22', '2024-01-29']
    """
    if every_days < 1:
        raise ValueError(f"every_days must be at least 1, got {every_days}")
    if start is None and data.leads.empty:
        raise ValueError("the data set has no leads: give weekly_cutoffs a start")
    first = cutoff_timestamp(start) if start is not None else cutoff_timestamp(data.leads["created_at"].min())
    last = cutoff_timestamp(end) if end is not None else cutoff_timestamp(data.end)
    step = pd.Timedelta(days=every_days)
    n_steps = (first - _MONDAY) // step + 1  # the first grid point strictly after `first`
    grid = pd.date_range(_MONDAY + n_steps * step, last, freq=step)
    return grid.as_unit("ns")


def _as_cutoffs(cutoffs: Iterable[object]) -> list[pd.Timestamp]:
    return sorted({cutoff_timestamp(c) for c in cutoffs})


def _label_block(prepared: PreparedEvents, t: pd.Timestamp, horizon_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """Open leads at ``t`` (positions) and their labels: won within (t, t + horizon]."""
    rows = np.flatnonzero(prepared.open_at(t))
    won = prepared.first_won[rows]
    return rows, ((won > t.value) & (won <= t.value + horizon_ns)).astype(np.int8)


def _labelled_cutoffs(data: CrmData, cutoffs: Iterable[object] | None, horizon_days: float) -> list[pd.Timestamp]:
    """The cutoffs whose horizon ends within the data (the others are censored)."""
    if horizon_days <= 0:
        raise ValueError(f"horizon_days must be positive, got {horizon_days}")
    chosen = _as_cutoffs(weekly_cutoffs(data) if cutoffs is None else cutoffs)
    end = cutoff_timestamp(data.end)
    horizon = pd.Timedelta(days=horizon_days)
    return [t for t in chosen if t + horizon <= end]


def label_snapshots(
    data: CrmData,
    cutoffs: Iterable[object] | None = None,
    horizon_days: float = HORIZON_DAYS,
    *,
    prepared: PreparedEvents | None = None,
) -> pd.DataFrame:
    """Snapshots (lead, cutoff) of the leads open at each cutoff, with label = won within the horizon.

    Cutoffs whose horizon runs past ``data.end`` are censored: left out. Leads created after a cutoff or
    closed (won or lost) at or before it are not in that cutoff's snapshots.

    Parameters
    ----------
    data : CrmData
        The CRM data set.
    cutoffs : iterable of timestamp-like, optional
        Defaults to :func:`weekly_cutoffs` of ``data``.
    horizon_days : float
        The label's horizon H: won within ``(cutoff, cutoff + H]``.
    prepared : PreparedEvents, optional
        A preparation of ``data`` to reuse (see :func:`leadscore.features.history.prepare_events`).

    Returns
    -------
    DataFrame
        ``lead_id``, ``cutoff``, ``label`` (int8), by cutoff then in the leads table's order.

    Examples
    --------
    >>> import pandas as pd
    >>> from leadscore.data.contracts import CrmData
    >>> leads = pd.DataFrame({"lead_id": ["a"], "created_at": ["2024-01-01"]})
    >>> events = pd.DataFrame({"event_id": ["1"], "lead_id": ["a"], "type": ["won"], "at": ["2024-03-01"]})
    >>> data = CrmData.from_frames(leads, events)
    >>> label_snapshots(data, ["2024-01-15", "2024-02-15"], horizon_days=15)["label"].tolist()
    [0, 1]
    """
    prepared = prepared if prepared is not None else prepare_events(data.leads, data.events)
    horizon_ns = int(round(horizon_days * DAY_NS))
    frames = []
    for t in _labelled_cutoffs(data, cutoffs, horizon_days):
        rows, label = _label_block(prepared, t, horizon_ns)
        frames.append(
            pd.DataFrame(
                {
                    "lead_id": prepared.lead_ids.iloc[rows].reset_index(drop=True),
                    "cutoff": pd.Series(pd.DatetimeIndex([t] * rows.size, dtype="datetime64[ns, UTC]")),
                    "label": label,
                }
            )
        )
    if not frames:
        return pd.DataFrame(
            {
                "lead_id": pd.Series([], dtype="str"),
                "cutoff": pd.Series([], dtype="datetime64[ns, UTC]"),
                "label": pd.Series([], dtype="int8"),
            }
        )
    return pd.concat(frames, ignore_index=True)


def build_training_set(
    data: CrmData,
    cutoffs: Iterable[object] | None = None,
    horizon_days: float = HORIZON_DAYS,
    *,
    extra_types: Sequence[str] = (),
    prepared: PreparedEvents | None = None,
) -> pd.DataFrame:
    """Snapshots x open leads with their label and their point-in-time features.

    Parameters
    ----------
    data : CrmData
        The CRM data set.
    cutoffs : iterable of timestamp-like, optional
        Defaults to :func:`weekly_cutoffs` of ``data``; cutoffs whose horizon runs past ``data.end`` are left
        out (censored).
    horizon_days : float
        The label's horizon H: won within ``(cutoff, cutoff + H]``.
    extra_types : sequence of str
        Unknown event types with features of their own (see :func:`leadscore.features.builder.top_unknown_types`);
        use the same vocabulary when scoring. Recorded in ``result.attrs["extra_types"]``.
    prepared : PreparedEvents, optional
        A preparation of ``data`` to reuse.

    Returns
    -------
    DataFrame
        ``lead_id``, ``cutoff``, ``label`` (int8), then the features, by cutoff then in the leads table's order.
        ``attrs`` holds ``extra_types``, ``horizon_days`` and ``catalogue_version``.

    Examples
    --------
    >>> import pandas as pd
    >>> from leadscore.data.contracts import CrmData
    >>> leads = pd.DataFrame({"lead_id": ["a", "b"], "created_at": ["2024-01-01", "2024-01-01"]})
    >>> events = pd.DataFrame({"event_id": ["1", "2", "3"], "lead_id": ["a", "a", "b"],
    ...                        "type": ["call", "won", "call"], "at": ["2024-01-10", "2024-02-01", "2024-05-01"]})
    >>> ts = build_training_set(CrmData.from_frames(leads, events), ["2024-01-15"], horizon_days=30)
    >>> ts[["lead_id", "label", "call_total"]].to_dict("list")
    {'lead_id': ['a', 'b'], 'label': [1, 0], 'call_total': [1, 0]}
    """
    prepared = prepared if prepared is not None else prepare_events(data.leads, data.events)
    horizon_ns = int(round(horizon_days * DAY_NS))
    frames = []
    for t in _labelled_cutoffs(data, cutoffs, horizon_days):
        features = features_at(prepared, t, extra_types=extra_types)
        _, label = _label_block(prepared, t, horizon_ns)
        features.insert(2, "label", label)
        frames.append(features)
    if frames:
        result = pd.concat(frames, ignore_index=True)
    else:  # no labelled cutoff: an empty frame with the right columns and types
        empty = features_at(
            prepared, pd.Timestamp.min.tz_localize("UTC") + pd.Timedelta(days=1), extra_types=extra_types
        )
        empty.insert(2, "label", np.array([], dtype=np.int8))
        result = empty
    result.attrs.update(
        {"extra_types": tuple(extra_types), "horizon_days": horizon_days, "catalogue_version": CATALOGUE_VERSION}
    )
    return result
