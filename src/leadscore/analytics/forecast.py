"""Will we hit this period's target? Actual so far plus what the open pipeline is expected to bring.

The probabilities come from outside (the model's ``Scorer.score`` output, or any other estimate), so this module
does not depend on the model: pass a frame with one row per open lead.

Each open lead ``i`` is won within the rest of the period with probability ``q_i`` and is worth ``v_i``. The
number of conversions is then a sum of independent Bernoulli variables (a Poisson-binomial variable) with mean
``sum q_i`` and variance ``sum q_i (1 - q_i)``; revenue has mean ``sum q_i v_i`` and variance
``sum q_i (1 - q_i) v_i^2``. The interval is the normal approximation around the mean, cut to what is possible
(no fewer than zero more, no more than every lead won).

From a probability ``p_i`` of winning within ``horizon_days`` (the Scorer's horizon, 90 days by default), the
probability of winning within the ``d`` days left in the period is ``1 - (1 - p_i) ** (d / horizon_days)``: a
constant chance per day, which is what is known without a model of timing. A frame that carries an
``expected_close_at`` column says the timing itself: leads expected to close by the period's end keep ``p_i``,
the others count for nothing this period.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from leadscore.analytics._common import Encoded, days, encode, outcomes, resolve_as_of
from leadscore.analytics.actuals import metric_points
from leadscore.analytics.goals import _bounds, active_goals
from leadscore.analytics.periods import as_ns, check_period
from leadscore.data.contracts import TEAM_SCOPE, CrmData


def _check_pipeline(pipeline: pd.DataFrame) -> None:
    missing = [c for c in ("lead_id", "probability") if c not in pipeline.columns]
    if missing:
        raise ValueError(f"the pipeline frame needs column(s) {missing}; it has {list(pipeline.columns)}")
    p = pd.to_numeric(pipeline["probability"], errors="coerce")
    bad = p.isna() | (p < 0) | (p > 1)
    if bad.any():
        ids = pipeline.loc[bad, "lead_id"].head(5).tolist()
        raise ValueError(f"probability must be a number in [0, 1]; it is not for lead(s) {ids}")
    dup = pipeline["lead_id"].duplicated()
    if dup.any():
        raise ValueError(f"lead(s) {pipeline.loc[dup, 'lead_id'].head(5).tolist()} appear more than once")


def _deal_values(
    data: CrmData, leads: pd.Series, given: pd.Series | None, as_of: pd.Timestamp, encoded: Encoded
) -> np.ndarray:
    """The deal value given, else the lead's latest stage amount, else the median won deal so far."""
    values = np.full(len(leads), np.nan) if given is None else pd.to_numeric(given, errors="coerce").to_numpy()
    ev = data.events
    priced = ev[(ev["type"] == "stage_changed").to_numpy() & ev["amount"].notna().to_numpy()]
    priced = priced[as_ns(priced["at"]) < as_of.value].sort_values("at", kind="stable")
    latest = priced.drop_duplicates("lead_id", keep="last").set_index("lead_id")["amount"]
    values = np.where(np.isnan(values), latest.reindex(leads).to_numpy(dtype="float64"), values)
    won = metric_points(data, "revenue", encoded=encoded)
    won_amounts = won.amount[won.at < as_of.value]
    fallback = float(np.median(won_amounts)) if len(won_amounts) else np.nan
    return np.where(np.isnan(values), fallback, values)


def forecast(
    data: CrmData,
    pipeline: pd.DataFrame,
    as_of=None,
    *,
    period: str = "month",
    scope: str = TEAM_SCOPE,
    horizon_days: float = 90.0,
    level: float = 0.9,
) -> pd.DataFrame:
    """Conversions and revenue expected by the end of the period holding ``as_of``, with an interval.

    Parameters
    ----------
    data : CrmData
        The validated data set (for the actuals, the owners, deal values and targets).
    pipeline : DataFrame
        One row per open lead: ``lead_id``, ``probability`` (of being won within ``horizon_days``), and
        optionally ``deal_value`` (else the lead's latest stage amount, else the median won deal so far) and
        ``expected_close_at``. Leads closed before ``as_of`` are left out; an unknown lead is an error.
    as_of : timestamp-like, optional
        "Now"; by default just after the last event.
    period : {"day", "week", "month"}
        The period whose end is forecast.
    scope : str
        ``"team"`` or a rep id (the leads that rep owns).
    horizon_days : float
        The horizon of ``probability``.
    level : float
        Coverage of the interval (0.9: a 90 % interval).

    Returns
    -------
    DataFrame
        Rows ``conversions`` and ``revenue``: ``actual_to_date``, ``expected_from_pipeline``, ``forecast``,
        ``std``, ``low``, ``high``, ``target`` (the goal in force, NaN if none), ``prob_reaching_target`` and
        ``pipeline_leads``.

    Examples
    --------
    >>> from leadscore.data.contracts import CrmData
    >>> data = CrmData.from_frames(
    ...     pd.DataFrame({"lead_id": ["a", "b", "c"], "created_at": ["2024-01-01"] * 3}),
    ...     pd.DataFrame({"event_id": ["1"], "lead_id": ["a"], "at": ["2024-01-02"], "type": ["won"],
    ...                   "amount": [100.0]}))
    >>> pipe = pd.DataFrame({"lead_id": ["b", "c"], "probability": [0.5, 0.5],
    ...                      "deal_value": [100.0, 300.0], "expected_close_at": ["2024-01-20", "2024-03-01"]})
    >>> f = forecast(data, pipe, "2024-01-10").set_index("metric")
    >>> f.loc["revenue", ["actual_to_date", "expected_from_pipeline", "forecast", "std"]].tolist()
    [100.0, 50.0, 150.0, 50.0]
    """
    check_period(period)
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1 (exclusive), got {level}")
    if horizon_days <= 0:
        raise ValueError(f"horizon_days must be positive, got {horizon_days}")
    _check_pipeline(pipeline)
    as_of_ts = resolve_as_of(data, as_of)
    _, lo, hi, _ = _bounds(as_of_ts, period)

    leads = data.leads
    pos = encode(pipeline["lead_id"], pd.Index(leads["lead_id"]))
    if (pos < 0).any():
        unknown = pipeline.loc[pos < 0, "lead_id"].head(5).tolist()
        raise ValueError(f"the pipeline names lead(s) not in the data set: {unknown}")
    closed = outcomes(data, as_of_ts)["lead_id"]
    keep = ~pipeline["lead_id"].isin(closed).to_numpy() & (as_ns(leads["created_at"])[pos] < as_of_ts.value)
    if scope != TEAM_SCOPE:
        keep &= leads["owner_id"].to_numpy(dtype=object)[pos] == scope
    pipe = pipeline[keep]

    p = pd.to_numeric(pipe["probability"]).to_numpy(dtype="float64")
    if "expected_close_at" in pipe.columns:
        close_at = pd.to_datetime(pipe["expected_close_at"], utc=True)
        q = np.where(as_ns(close_at) < hi, p, 0.0)
    else:
        q = 1.0 - (1.0 - p) ** (days(hi - as_of_ts.value) / horizon_days)
    encoded = Encoded(data)
    value = _deal_values(data, pipe["lead_id"], pipe.get("deal_value"), as_of_ts, encoded)

    z = float(norm.ppf(0.5 + level / 2))
    goals = active_goals(data.goals, as_of_ts)
    rows = []
    for metric, weights in (("conversions", np.ones(len(q))), ("revenue", value)):
        actual = metric_points(data, metric, encoded=encoded).for_scope(scope).total(lo, as_of_ts.value)
        mean = float(np.sum(q * weights))
        sd = float(np.sqrt(np.sum(q * (1 - q) * weights**2)))
        ceiling = float(np.sum(weights))
        target_rows = goals[(goals["metric"] == metric) & (goals["period"] == period) & (goals["scope"] == scope)]
        target = float(target_rows["target"].iloc[0]) if len(target_rows) else np.nan
        need = target - actual
        if metric == "conversions":
            need = np.ceil(need) - 0.5  # continuity correction: a count reaches n when it passes n - 0.5
        if np.isnan(need):
            reach = np.nan
        elif sd == 0:
            reach = float(mean >= need)
        else:
            reach = float(norm.sf((need - mean) / sd))
        rows.append(
            {
                "metric": metric,
                "actual_to_date": actual,
                "expected_from_pipeline": mean,
                "forecast": actual + mean,
                "std": sd,
                "low": actual + max(0.0, mean - z * sd),
                "high": actual + min(ceiling, mean + z * sd),
                "target": target,
                "prob_reaching_target": 1.0 if need <= 0 else reach,
                "pipeline_leads": int(len(q)),
            }
        )
    return pd.DataFrame(rows)
