"""The manager's list: open leads ranked by probability of converting or by expected value, with what to do next.

Everything is derived from the point-in-time feature frame (:func:`leadscore.features.builder.build_features`), so the
list says exactly what the model saw: the last interaction, the next scheduled step, the stage and the deal
amount as known at the cutoff.

**Needs follow-up** is what a manager would chase today (:func:`follow_up`): a lead worth the time that has gone
quiet with nothing planned. All three must hold:

1. *no next step*: nothing is scheduled after the cutoff;
2. *silent for longer than usual*: the days since its last touch exceed its own cadence, the median gap between
   its interactions (when it has at least :data:`MIN_GAPS` gaps), else the usual gap of the open leads in its
   stage (the median of their cadences); never less than a day, and never more than ``follow_up_days`` (a lead
   with a slow rhythm is not left alone for months);
3. *worth chasing*: its probability is at least the median probability of the open leads (the upper half of the
   list), so the flag points at the leads where a call changes most.

A flag on every quiet lead is no flag: on a simulated CRM most grade C and D leads have no next step and are
quiet, and the rule flags well under half of them (``tests/test_follow_up.py``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.data.contracts import CrmData
from leadscore.features.history import NOT_INTERACTION_TYPES, cutoff_timestamp

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
#: Gaps between interactions a lead needs before its own cadence is trusted (else its stage's usual gap is used).
MIN_GAPS = 2
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
        Here a lead needs follow-up when it has no next step and has been untouched for longer than this; the
        list (:func:`score_open_leads`) refines it with the lead's cadence and probability (:func:`follow_up`).

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
            "needs_follow_up": ~has_next & (untouched > follow_up_days),
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
    from leadscore.features.builder import build_features

    features = build_features(
        leads, events, cutoff, extra_types=tuple(scorer.card.extra_types), attributes=scorer.attributes
    )
    return with_absent_features(scorer, features)


def with_absent_features(scorer, features: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """``features`` with the model's features that they lack added as missing; also the names of those (lead
    attributes by their CRM names)."""
    from leadscore.features import catalogue

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
    :data:`OPPORTUNITY_COLUMNS` (``needs_follow_up`` by :func:`follow_up`), ``cadence_days`` (the gap after which
    the lead counts as quiet) and ``expected_value`` (probability times the deal amount, NaN without one).
    """
    features, _ = features_for(scorer, data.leads, data.events, cutoff)
    scores = scorer.score_features(features, percentile_of="batch").reset_index(drop=True)
    where = opportunities(features, data.leads, cutoff, follow_up_days).drop(columns="lead_id")
    table = pd.concat([scores, where], axis=1)
    table["expected_value"] = table["probability"] * table["deal_amount"]
    own = interaction_cadence(data.events, cutoff).reindex(table["lead_id"]).to_numpy()
    table["needs_follow_up"], table["cadence_days"] = follow_up(
        probability=table["probability"].to_numpy(dtype=float),
        days_since_last_touch=table["days_since_last_touch"].to_numpy(dtype=float),
        has_next_step=table["next_scheduled"].notna().to_numpy(),
        stage=table["stage"],
        own_cadence=own,
        follow_up_days=follow_up_days,
    )
    return table


def interaction_cadence(events: pd.DataFrame, cutoff: object) -> pd.Series:
    """Each lead's cadence: the median gap in days between the days it was touched (any interaction known at
    ``cutoff``; several on one day are one touch), for leads with at least :data:`MIN_GAPS` gaps.

    Examples
    --------
    >>> at = ["2024-01-01 08:00", "2024-01-03 09:00", "2024-01-03 10:00", "2024-01-04 08:00", "2024-01-09 08:00",
    ...       "2024-01-02 08:00"]
    >>> ev = pd.DataFrame({"lead_id": ["a"] * 5 + ["b"], "type": ["call", "email_sent", "email_opened",
    ...                    "stage_changed", "call", "call"], "at": pd.to_datetime(at, utc=True)})
    >>> interaction_cadence(ev, "2024-02-01").to_dict()
    {'a': 4.0}
    """
    t = cutoff_timestamp(cutoff)
    known = (events["at"] <= t) & ~events["type"].isin(NOT_INTERACTION_TYPES)
    day = events.loc[known, "at"].to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64)
    touched = pd.DataFrame({"lead_id": events.loc[known, "lead_id"].to_numpy(), "day": day}).drop_duplicates()
    touched = touched.sort_values(["lead_id", "day"], kind="stable")
    same_lead = touched["lead_id"].eq(touched["lead_id"].shift()).to_numpy()
    gaps = pd.DataFrame({"lead_id": touched["lead_id"].to_numpy(), "gap": touched["day"].diff().to_numpy()})[same_lead]
    grouped = gaps.groupby("lead_id", sort=False)["gap"]
    stats = pd.DataFrame({"median": grouped.median().astype(float), "n": grouped.size()})
    return stats.loc[stats["n"] >= MIN_GAPS, "median"]


def follow_up(
    *,
    probability: np.ndarray,
    days_since_last_touch: np.ndarray,
    has_next_step: np.ndarray,
    stage: pd.Series,
    own_cadence: np.ndarray,
    follow_up_days: float,
    min_probability: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Which open leads need follow-up (the rule in the module docstring), and the gap each was held to.

    Parameters
    ----------
    probability, days_since_last_touch, has_next_step
        Per open lead.
    stage
        Each lead's stage, for the stage's usual gap.
    own_cadence
        Each lead's median gap between interactions in days (NaN when it has too few interactions).
    follow_up_days
        The longest a lead may stay quiet with nothing planned, whatever its rhythm.
    min_probability
        The probability a lead must reach to be worth chasing; default the median of ``probability``.

    Returns
    -------
    (needs_follow_up, cadence_days)

    Examples
    --------
    >>> flag, gap = follow_up(probability=np.array([0.6, 0.5, 0.05, 0.4]),
    ...     days_since_last_touch=np.array([10.0, 3.0, 30.0, 10.0]),
    ...     has_next_step=np.array([False, False, False, True]), stage=pd.Series(["new"] * 4),
    ...     own_cadence=np.array([4.0, 7.0, 2.0, 1.0]), follow_up_days=14)
    >>> flag.tolist(), gap.tolist()
    ([True, False, False, False], [4.0, 7.0, 2.0, 1.0])
    """
    stage_keys = stage.fillna("").astype(str).to_numpy()
    frame = pd.DataFrame({"stage": stage_keys, "own": own_cadence})
    usual = frame.groupby("stage")["own"].transform("median").to_numpy(dtype=float)
    overall = np.nanmedian(own_cadence) if np.isfinite(own_cadence).any() else float(follow_up_days)
    usual = np.where(np.isnan(usual), overall, usual)
    cadence = np.clip(np.where(np.isnan(own_cadence), usual, own_cadence), 1.0, float(follow_up_days))
    floor = float(np.median(probability)) if min_probability is None and len(probability) else (min_probability or 0.0)
    flag = ~has_next_step & (days_since_last_touch > cadence) & (probability >= floor)
    return flag, np.round(cadence, 2)


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
