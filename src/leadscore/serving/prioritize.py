"""The manager's list: open leads ranked by probability of converting or by expected value, with what to do next.

Everything is derived from the point-in-time feature frame (:func:`leadscore.features.builder.build_features`), so the
list says exactly what the model saw: the last interaction, the next scheduled step, the stage and the deal
amount as known at the cutoff. A lead *needs follow-up* when nothing is scheduled, or when it has not been
touched for ``follow_up_days``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.data.contracts import CrmData

#: The columns of :func:`opportunities`, after ``lead_id``.
OPPORTUNITY_COLUMNS: tuple[str, ...] = (
    "owner_id",
    "source",
    "relationship_start",
    "stage",
    "deal_amount",
    "last_interaction",
    "next_scheduled",
    "days_since_last_touch",
    "needs_follow_up",
)
ORDERS: tuple[str, ...] = ("probability", "expected_value")
_DAY = pd.Timedelta(days=1)


def opportunities(features: pd.DataFrame, leads: pd.DataFrame, cutoff: object, follow_up_days: float) -> pd.DataFrame:
    """Where each open lead stands at ``cutoff``, from its feature row.

    Parameters
    ----------
    features
        :func:`~leadscore.features.builder.build_features` output (``lead_id``, ``days_since_last_interaction``,
        ``days_until_next_step``, ``has_next_step``, ``stage``, ``deal_amount``).
    leads
        The leads table (for the owner, the source and when the relationship started).
    cutoff
        The point in time of ``features``.
    follow_up_days
        A lead untouched for longer than this needs follow-up.

    Examples
    --------
    >>> feats = pd.DataFrame({"lead_id": ["a"], "days_since_last_interaction": [20.0],
    ...                       "days_until_next_step": [np.nan], "has_next_step": [0], "stage": ["qualified"],
    ...                       "deal_amount": [np.nan]})
    >>> leads = pd.DataFrame({"lead_id": ["a"], "created_at": pd.to_datetime(["2024-01-01"], utc=True),
    ...                       "owner_id": ["rep_1"], "source": ["web"]})
    >>> row = opportunities(feats, leads, "2024-03-01", follow_up_days=14).iloc[0]
    >>> str(row.last_interaction), float(row.days_since_last_touch), bool(row.needs_follow_up)
    ('2024-02-10 00:00:00+00:00', 20.0, True)
    """
    t = pd.Timestamp(cutoff)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    info = leads.set_index("lead_id").reindex(features["lead_id"])
    since_touch = features["days_since_last_interaction"].to_numpy(dtype=float)
    since_created = ((t - info["created_at"]) / _DAY).to_numpy(dtype=float)
    untouched = np.where(np.isnan(since_touch), since_created, since_touch)
    next_in = features["days_until_next_step"].to_numpy(dtype=float)
    has_next = features["has_next_step"].to_numpy(dtype=float) > 0
    return pd.DataFrame(
        {
            "lead_id": features["lead_id"].to_numpy(),
            "owner_id": info["owner_id"].to_numpy() if "owner_id" in info else None,
            "source": info["source"].to_numpy() if "source" in info else None,
            "relationship_start": info["created_at"].to_numpy(),
            "stage": features["stage"].to_numpy(),
            "deal_amount": features["deal_amount"].to_numpy(dtype=float),
            "last_interaction": _shift(t, -since_touch),
            "next_scheduled": _shift(t, next_in),
            "days_since_last_touch": np.round(untouched, 2),
            "needs_follow_up": ~has_next | (untouched > follow_up_days),
        }
    )


def _shift(t: pd.Timestamp, days: np.ndarray) -> pd.DatetimeIndex:
    """``t`` plus ``days`` (NaN → NaT), to the second."""
    return (t + pd.to_timedelta(days, unit="D")).round("s")


def features_for(scorer, leads: pd.DataFrame, events: pd.DataFrame, cutoff: object) -> tuple[pd.DataFrame, list[str]]:
    """The features of the leads open at ``cutoff``, ready for ``scorer``; also the model's features that the
    data lacks.

    Only the lead attributes the model reads (``scorer.attributes``) are read from ``leads``, whatever other
    custom fields it holds. One the model was trained with but that no lead here carries (a CRM that does not
    send ``company_size``, say) is added as missing rather than refused: the model treats it as unknown, as it
    does a single lead's missing value. The caller can report the list (attribute names, as the CRM calls them).
    """
    from leadscore.features import catalogue
    from leadscore.features.builder import build_features

    features = build_features(
        leads, events, cutoff, extra_types=tuple(scorer.card.extra_types), attributes=scorer.attributes
    )
    absent = []
    for name in scorer.features:
        if name in features.columns:
            continue
        if catalogue.attribute_column(name) in features.columns:  # a model of catalogue 1.0: no namespace yet
            features[name] = features[catalogue.attribute_column(name)]
            continue
        absent.append(catalogue.attribute_of(name) or name)
        numeric = scorer.card.kinds.get(name) == "numeric"
        features[name] = pd.Series(np.nan, index=features.index, dtype="float64" if numeric else "str")
    return features, absent


def score_open_leads(scorer, data: CrmData, cutoff: object, follow_up_days: float) -> pd.DataFrame:
    """Score every lead open at ``cutoff`` and say where each stands: one row per open lead.

    Columns: the scorer's (``probability``, ``grade``, ``percentile`` among these leads, reasons, ...), the
    :data:`OPPORTUNITY_COLUMNS` and ``expected_value`` (probability times the deal amount, NaN without one).
    """
    features, _ = features_for(scorer, data.leads, data.events, cutoff)
    scores = scorer.score_features(features, percentile_of="batch").reset_index(drop=True)
    where = opportunities(features, data.leads, cutoff, follow_up_days).drop(columns="lead_id")
    table = pd.concat([scores, where], axis=1)
    table["expected_value"] = table["probability"] * table["deal_amount"]
    return table


def rank(
    table: pd.DataFrame,
    *,
    by: str = "probability",
    owner: str | None = None,
    stage: str | None = None,
    grade: str | None = None,
    source: str | None = None,
    needs_follow_up: bool | None = None,
) -> pd.DataFrame:
    """Filter a :func:`score_open_leads` table and order it, best first (ties by ``lead_id``).

    Ordering by ``expected_value`` puts leads without a deal amount last.

    Examples
    --------
    >>> t = pd.DataFrame({"lead_id": ["a", "b", "c"], "probability": [0.2, 0.6, 0.4],
    ...                   "expected_value": [900.0, np.nan, 100.0], "owner_id": ["x", "x", "y"]})
    >>> rank(t)["lead_id"].tolist(), rank(t, by="expected_value")["lead_id"].tolist()
    (['b', 'c', 'a'], ['a', 'c', 'b'])
    >>> rank(t, owner="x")["lead_id"].tolist()
    ['b', 'a']
    """
    if by not in ORDERS:
        raise ValueError(f"cannot order by {by!r}; choose one of {list(ORDERS)}")
    keep = np.ones(len(table), dtype=bool)
    for column, wanted in (("owner_id", owner), ("stage", stage), ("grade", grade), ("source", source)):
        if wanted is not None:
            keep &= (table[column] == wanted).to_numpy()
    if needs_follow_up is not None:
        keep &= (table["needs_follow_up"] == needs_follow_up).to_numpy()
    chosen = table[keep]
    return chosen.sort_values([by, "lead_id"], ascending=[False, True], na_position="last", ignore_index=True)
