"""The sales funnel: how far leads get, how long they stay in each stage, and how often they are won.

The funnel follows a *cohort*: the leads created in ``[start, end)``, and everything that happened to them
before ``as_of`` (by default, everything the data set knows). Stage flow comes from ``stage_changed`` events
(stages in :data:`leadscore.data.contracts.STAGES`) and the lead's first ``won``/``lost`` event.

Conventions, so every figure can be checked by hand:

- Every lead is in ``new`` from its creation. The funnel is monotone: a lead that reached ``proposal`` counts as
  having reached every stage before it, and a won lead as having reached every stage; a stage name outside
  :data:`~leadscore.data.contracts.STAGES` moves no one forward.
- Only a lead's first closing event counts; stage changes after it are ignored.
- Time in a stage is the time from entering it to the lead's next stage change or closing, summed over the
  lead's visits to that stage. A stay that has not ended by ``as_of`` is left out (it is censored, not short),
  and so is a stay of no length (a lead created straight into a later stage never waited in ``new``).
  Median and 90th percentile are taken over leads.
- Win rate is won / (won + lost); conversion rate is won / leads.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.analytics._common import (
    check_group_by,
    days,
    encode,
    lead_groups,
    outcomes,
    resolve_as_of,
    resolve_range,
    safe_ratio,
)
from leadscore.analytics.periods import as_ns, check_period, check_period_count, period_starts
from leadscore.data.contracts import STAGES, CrmData

FUNNEL_STAGES: tuple[str, ...] = (*STAGES, "won")
_WON_RANK = len(STAGES) + 1
_OPEN, _WON, _LOST = 0, 1, 2


def stage_rank(stage: pd.Series) -> np.ndarray:
    """1-based position of each stage in :data:`STAGES`; 0 for any other stage name."""
    return encode(stage, STAGES) + 1


class _Cohort:
    """The leads created in a range, with their furthest stage, outcome and completed stage stays."""

    def __init__(self, data: CrmData, start, end, as_of, group_by: str | None, period: str):
        check_period(period)
        check_group_by(data.leads, group_by)
        self.start, self.end = resolve_range(data, start, end)
        if group_by == "period":
            check_period_count(self.start, self.end, period)  # before any work: a group per period
        self.as_of = resolve_as_of(data, as_of)
        created_all = as_ns(data.leads["created_at"])
        keep = (created_all >= self.start.value) & (created_all < self.end.value) & (created_all < self.as_of.value)
        self.leads = data.leads[keep].reset_index(drop=True)
        self.created = created_all[keep]
        n = len(self.leads)
        index = pd.Index(self.leads["lead_id"])

        out = outcomes(data, self.as_of)
        pos = encode(out["lead_id"], index)
        out, pos = out[pos >= 0], pos[pos >= 0]
        self.outcome = np.zeros(n, dtype=np.int64)
        self.outcome[pos] = np.where(out["outcome"].to_numpy() == "won", _WON, _LOST)
        self.closed = np.full(n, np.iinfo(np.int64).max)
        self.closed[pos] = as_ns(out["closed_at"])
        self.amount = np.full(n, np.nan)
        self.amount[pos] = out["amount"].to_numpy(dtype="float64")

        ev = data.events
        stage_mask = (ev["type"] == "stage_changed").to_numpy() & (as_ns(ev["at"]) < self.as_of.value)
        st = ev[stage_mask]
        spos = encode(st["lead_id"], index)
        st, spos = st[spos >= 0], spos[spos >= 0]
        sat = as_ns(st["at"])
        srank = stage_rank(st["stage"])
        after_close = sat > self.closed[spos]
        st, spos, sat, srank = st[~after_close], spos[~after_close], sat[~after_close], srank[~after_close]

        self.max_rank = np.ones(n, dtype=np.int64)
        np.maximum.at(self.max_rank, spos, srank)
        self.max_rank[self.outcome == _WON] = _WON_RANK
        self._spells(n, spos, sat, srank)
        self._groups(group_by, period)

    @classmethod
    def from_parts(
        cls,
        leads: pd.DataFrame,
        start: pd.Timestamp,
        end: pd.Timestamp,
        as_of: pd.Timestamp,
        *,
        outcome: np.ndarray,
        closed: np.ndarray,
        amount: np.ndarray,
        max_rank: np.ndarray | None,
        stay_days: np.ndarray | None,
        has_stay: np.ndarray | None,
        group_by: str | None,
        period: str,
    ) -> _Cohort:
        """A cohort from its per-lead facts, computed elsewhere (the store's read model): ``leads`` are the
        cohort's rows (``lead_id``, ``created_at``, the group column), ``outcome`` "won"/"lost"/None, ``closed``
        (ns, int64 max when open), the closing's ``amount``; ``max_rank`` (won leads included: set here) and the
        summed completed stays (n x ranks) may be None when only the summary is asked for."""
        check_period(period)
        check_group_by(leads, group_by)
        if group_by == "period":
            check_period_count(start, end, period)
        c = cls.__new__(cls)
        c.start, c.end, c.as_of = start, end, as_of
        c.leads = leads.reset_index(drop=True)
        c.created = as_ns(c.leads["created_at"])
        outcome = np.asarray(outcome, dtype=object)
        c.outcome = np.select([outcome == "won", outcome == "lost"], [_WON, _LOST], _OPEN).astype(np.int64)
        c.closed = np.asarray(closed, dtype=np.int64)
        c.amount = np.asarray(amount, dtype="float64")
        if max_rank is not None:
            c.max_rank = np.maximum(np.asarray(max_rank, dtype=np.int64), 1)
            c.max_rank[c.outcome == _WON] = _WON_RANK
            c.stay_days, c.has_stay = stay_days, has_stay
        c._groups(group_by, period)
        return c

    def _groups(self, group_by: str | None, period: str) -> None:
        n = len(self.leads)
        if group_by is None:
            self.group_codes = np.zeros(n, dtype=np.int64)
            self.group_values = None
        else:
            labels = lead_groups(self.leads, group_by, period)
            if group_by == "period":
                cats = period_starts(self.start, self.end, period)
                self.group_codes = cats.get_indexer(labels)
            else:
                self.group_codes, cats = pd.factorize(labels, sort=True)
            self.group_values = pd.Index(cats)
        self.group_by = group_by
        self.n_groups = 1 if self.group_values is None else len(self.group_values)

    def _spells(self, n: int, spos: np.ndarray, sat: np.ndarray, srank: np.ndarray) -> None:
        """Summed completed stay per (lead, stage rank): ``self.stay_days`` and ``self.has_stay`` (n x ranks)."""
        closed = self.outcome != _OPEN
        cpos = np.flatnonzero(closed)
        pos = np.concatenate([np.arange(n), spos, cpos])
        at = np.concatenate([self.created, sat, self.closed[cpos]])
        rank = np.concatenate([np.ones(n, dtype=np.int64), srank, np.full(len(cpos), -1)])
        order = np.concatenate([np.zeros(n, np.int8), np.ones(len(spos), np.int8), np.full(len(cpos), 2, np.int8)])
        sort = np.lexsort((order, at, pos))
        pos, at, rank, order = pos[sort], at[sort], rank[sort], order[sort]
        # A stage change to the stage the lead is already in is not a new stay.
        same_lead_prev = np.r_[False, pos[1:] == pos[:-1]]
        repeat = same_lead_prev & (order == 1) & np.r_[False, rank[1:] == rank[:-1]]
        keep = ~repeat
        pos, at, rank, order = pos[keep], at[keep], rank[keep], order[keep]
        has_next = np.r_[pos[1:] == pos[:-1], False]
        ends = np.r_[at[1:], 0]
        done = has_next & (order != 2) & (rank >= 1) & (ends > at)
        n_ranks = len(STAGES) + 1
        key = pos[done] * n_ranks + rank[done]
        stay = np.bincount(key, weights=days(ends[done] - at[done]), minlength=n * n_ranks)
        count = np.bincount(key, minlength=n * n_ranks)
        self.stay_days = stay.reshape(n, n_ranks)
        self.has_stay = count.reshape(n, n_ranks) > 0

    def frame(self, columns: dict) -> pd.DataFrame:
        """A per-group frame with the group column first (when grouped)."""
        out = pd.DataFrame(columns)
        if self.group_values is not None:
            name = self.group_by
            reps = len(out) // self.n_groups if self.n_groups else 0  # no lead in the range: no group
            out.insert(0, name, np.repeat(self.group_values.to_numpy(), reps))
        return out

    def group_quantiles(self, values: np.ndarray, codes: np.ndarray, q: float) -> np.ndarray:
        """The q-quantile of ``values`` within each group code; NaN for a group without values."""
        result = np.full(self.n_groups, np.nan)
        if len(values):
            by = pd.Series(values).groupby(codes).quantile(q)
            result[by.index.to_numpy()] = by.to_numpy()
        return result


def funnel(
    data: CrmData,
    start=None,
    end=None,
    *,
    group_by: str | None = None,
    period: str = "month",
    as_of=None,
) -> pd.DataFrame:
    """Stage-to-stage conversion, drop-off and time in stage for the leads created in ``[start, end)``.

    Parameters
    ----------
    data : CrmData
        The validated data set.
    start, end : timestamp-like, optional
        The half-open creation range of the cohort; by default the whole data set.
    group_by : {None, "period", "owner", "source", "segment", ...}
        ``period`` groups by creation period; any other name is a lead column (``owner`` is ``owner_id``).
    period : {"day", "week", "month"}
        The period length when ``group_by="period"``.
    as_of : timestamp-like, optional
        Events at or after it are ignored; by default none are.

    Returns
    -------
    DataFrame
        One row per (group,) stage of :data:`FUNNEL_STAGES`: ``leads_reached``, ``share_of_entered``,
        ``conversion_to_next``, ``drop_off``, ``lost_here`` and ``open_here`` (leads whose furthest stage it is),
        ``median_days_in_stage`` and ``p90_days_in_stage``.

    Examples
    --------
    >>> import pandas as pd
    >>> from leadscore.data.contracts import CrmData
    >>> data = CrmData.from_frames(
    ...     pd.DataFrame({"lead_id": ["a", "b"], "created_at": ["2024-01-01", "2024-01-02"]}),
    ...     pd.DataFrame({"event_id": ["1", "2"], "lead_id": ["a", "a"], "at": ["2024-01-03", "2024-01-05"],
    ...                   "type": ["stage_changed", "won"], "stage": ["contacted", None]}))
    >>> funnel(data).set_index("stage")["leads_reached"].tolist()
    [2, 1, 1, 1, 1, 1]
    """
    return funnel_table(_Cohort(data, start, end, as_of, group_by, period))


def funnel_table(c: _Cohort) -> pd.DataFrame:
    """:func:`funnel`'s table of a cohort (shared with the store's answer, which builds the cohort from its read
    model)."""
    n_ranks = _WON_RANK + 1
    key = c.group_codes * n_ranks + c.max_rank
    furthest = np.bincount(key, minlength=c.n_groups * n_ranks).reshape(c.n_groups, n_ranks)
    reached = np.cumsum(furthest[:, ::-1], axis=1)[:, ::-1][:, 1:]  # ranks 1..won
    lost = np.bincount(key[c.outcome == _LOST], minlength=c.n_groups * n_ranks).reshape(c.n_groups, n_ranks)
    still_open = np.bincount(key[c.outcome == _OPEN], minlength=c.n_groups * n_ranks).reshape(c.n_groups, n_ranks)
    conversion = np.full(reached.shape, np.nan)
    conversion[:, :-1] = safe_ratio(reached[:, 1:], reached[:, :-1])

    median = np.full(reached.shape, np.nan)
    p90 = np.full(reached.shape, np.nan)
    for r in range(1, _WON_RANK):
        has = c.has_stay[:, r]
        median[:, r - 1] = c.group_quantiles(c.stay_days[has, r], c.group_codes[has], 0.5)
        p90[:, r - 1] = c.group_quantiles(c.stay_days[has, r], c.group_codes[has], 0.9)

    return c.frame(
        {
            "stage": np.tile(FUNNEL_STAGES, c.n_groups),
            "leads_reached": reached.ravel(),
            "share_of_entered": safe_ratio(reached, reached[:, :1]).ravel(),
            "conversion_to_next": conversion.ravel(),
            "drop_off": (1.0 - conversion).ravel(),
            "lost_here": lost[:, 1:].ravel(),
            "open_here": still_open[:, 1:].ravel(),
            "median_days_in_stage": median.ravel(),
            "p90_days_in_stage": p90.ravel(),
        }
    )


def funnel_summary(
    data: CrmData,
    start=None,
    end=None,
    *,
    group_by: str | None = None,
    period: str = "month",
    as_of=None,
) -> pd.DataFrame:
    """Outcomes of the leads created in ``[start, end)``: win rate, conversion, revenue and cycle times.

    Parameters are those of :func:`funnel`.

    Returns
    -------
    DataFrame
        One row per group: ``leads``, ``open``, ``won``, ``lost``, ``win_rate`` (won / closed),
        ``conversion_rate`` (won / leads), ``won_revenue``, ``avg_deal_size``, ``median_cycle_days`` and
        ``p90_cycle_days`` (creation to won), ``median_days_to_close`` (creation to won or lost).

    Examples
    --------
    >>> import pandas as pd
    >>> from leadscore.data.contracts import CrmData
    >>> data = CrmData.from_frames(
    ...     pd.DataFrame({"lead_id": ["a", "b"], "created_at": ["2024-01-01", "2024-01-02"]}),
    ...     pd.DataFrame({"event_id": ["1", "2"], "lead_id": ["a", "b"], "at": ["2024-01-05", "2024-01-04"],
    ...                   "type": ["won", "lost"], "amount": [100, None]}))
    >>> funnel_summary(data)[["won", "lost", "win_rate", "median_cycle_days"]].to_dict("records")
    [{'won': 1, 'lost': 1, 'win_rate': 0.5, 'median_cycle_days': 4.0}]
    """
    return funnel_summary_table(_Cohort(data, start, end, as_of, group_by, period))


def funnel_summary_table(c: _Cohort) -> pd.DataFrame:
    """:func:`funnel_summary`'s table of a cohort (shared with the store's answer)."""
    g = c.group_codes
    counts = np.bincount(g * 3 + c.outcome, minlength=c.n_groups * 3).reshape(c.n_groups, 3)
    leads = counts.sum(axis=1)
    won, lost = counts[:, _WON], counts[:, _LOST]
    is_won = c.outcome == _WON
    revenue = np.bincount(g[is_won], weights=np.nan_to_num(c.amount[is_won]), minlength=c.n_groups)
    closed = c.outcome != _OPEN
    to_close = days(c.closed[closed] - c.created[closed])
    to_win = days(c.closed[is_won] - c.created[is_won])
    return c.frame(
        {
            "leads": leads,
            "open": counts[:, _OPEN],
            "won": won,
            "lost": lost,
            "win_rate": safe_ratio(won, won + lost),
            "conversion_rate": safe_ratio(won, leads),
            "won_revenue": revenue,
            "avg_deal_size": safe_ratio(revenue, won),
            "median_cycle_days": c.group_quantiles(to_win, g[is_won], 0.5),
            "p90_cycle_days": c.group_quantiles(to_win, g[is_won], 0.9),
            "median_days_to_close": c.group_quantiles(to_close, g[closed], 0.5),
        }
    )


def cohorts(data: CrmData, start=None, end=None, *, max_months: int = 12, as_of=None) -> pd.DataFrame:
    """Monthly cohorts: of the leads created in month M, the share won by the end of month M + k.

    A cell whose month M + k has not ended by ``as_of`` is NaN: not yet known, rather than low.

    Returns
    -------
    DataFrame
        One row per (cohort, months_after) with ``cohort`` (month start), ``leads``, ``months_after`` (k),
        ``won`` (won by the end of month M + k) and ``share_won``.

    Examples
    --------
    >>> import pandas as pd
    >>> from leadscore.data.contracts import CrmData
    >>> data = CrmData.from_frames(
    ...     pd.DataFrame({"lead_id": ["a", "b"], "created_at": ["2024-01-10", "2024-01-20"]}),
    ...     pd.DataFrame({"event_id": ["1"], "lead_id": ["a"], "at": ["2024-02-03"], "type": ["won"]}))
    >>> cohorts(data, "2024-01-01", "2024-02-01", max_months=1, as_of="2024-03-01")["share_won"].tolist()
    [0.0, 0.5]
    """
    if max_months < 0:
        raise ValueError(f"max_months must be 0 or more, got {max_months}")
    c = _Cohort(data, start, end, as_of, "period", "month")
    months_created = c.created.view("datetime64[ns]").astype("datetime64[M]").astype(np.int64)
    is_won = c.outcome == _WON
    won_after = c.closed[is_won].view("datetime64[ns]").astype("datetime64[M]").astype(np.int64)
    won_after = won_after - months_created[is_won]
    n_k = max_months + 1
    key = c.group_codes[is_won] * n_k + np.clip(won_after, 0, max_months)
    won_by = np.bincount(key[won_after <= max_months], minlength=c.n_groups * n_k).reshape(c.n_groups, n_k)
    won_by = np.cumsum(won_by, axis=1)
    leads = np.bincount(c.group_codes, minlength=c.n_groups)
    cohort_month = c.group_values.tz_localize(None).to_numpy().astype("datetime64[M]")
    ends = (cohort_month[:, None] + np.arange(1, n_k + 1)).astype("datetime64[ns]")
    known = ends.view(np.int64) <= c.as_of.value
    share = np.where(known, safe_ratio(won_by, leads[:, None]), np.nan)
    won = pd.array(won_by.ravel(), dtype="Int64")
    won[~known.ravel()] = pd.NA
    return pd.DataFrame(
        {
            "cohort": np.repeat(c.group_values, n_k),
            "leads": np.repeat(leads, n_k),
            "months_after": np.tile(np.arange(n_k), c.n_groups),
            "won": won,
            "share_won": share.ravel(),
        }
    )


def lost_opportunities(data: CrmData, start=None, end=None, *, as_of=None) -> pd.DataFrame:
    """Every lead lost in ``[start, end)``, with its reason, its furthest stage and how long it was open.

    Returns
    -------
    DataFrame
        ``lead_id``, ``lost_at``, ``reason`` (the ``lost`` event's subtype, ``"(unspecified)"`` when blank),
        ``furthest_stage``, ``days_open``, ``rep_id`` and the lead's own columns (owner, source, segment, ...).

    Examples
    --------
    >>> import pandas as pd
    >>> from leadscore.data.contracts import CrmData
    >>> data = CrmData.from_frames(
    ...     pd.DataFrame({"lead_id": ["a"], "created_at": ["2024-01-01"]}),
    ...     pd.DataFrame({"event_id": ["1"], "lead_id": ["a"], "at": ["2024-01-11"], "type": ["lost"],
    ...                   "subtype": ["price"]}))
    >>> lost_opportunities(data)[["lead_id", "reason", "days_open"]].to_dict("records")
    [{'lead_id': 'a', 'reason': 'price', 'days_open': 10.0}]
    """
    window_start, window_end = resolve_range(data, start, end)
    c = _Cohort(data, None, None, as_of, None, "month")
    lost = (c.outcome == _LOST) & (c.closed >= window_start.value) & (c.closed < window_end.value)
    idx = np.flatnonzero(lost)
    out = pd.DataFrame(
        {
            "lead_id": c.leads["lead_id"].to_numpy()[idx],
            "lost_at": pd.DatetimeIndex(c.closed[idx].view("datetime64[ns]")).tz_localize("UTC"),
            "furthest_stage": np.asarray(FUNNEL_STAGES)[c.max_rank[idx] - 1],
            "days_open": days(c.closed[idx] - c.created[idx]),
        }
    )
    closings = outcomes(data, c.as_of).set_index("lead_id")
    out.insert(2, "reason", closings["reason"].reindex(out["lead_id"]).fillna("(unspecified)").to_numpy())
    out["rep_id"] = closings["rep_id"].reindex(out["lead_id"]).to_numpy()
    extra = c.leads.iloc[idx].drop(columns=["lead_id"]).reset_index(drop=True)
    return pd.concat([out, extra], axis=1).sort_values(["lost_at", "lead_id"], ignore_index=True)


def lost_reasons(
    data: CrmData, start=None, end=None, *, group_by: str | None = None, period: str = "month", as_of=None
) -> pd.DataFrame:
    """Leads lost in ``[start, end)`` counted by reason (and group), with each reason's share of the losses.

    ``group_by="period"`` groups by the period of the loss; any other grouping is a lead column.

    Examples
    --------
    >>> import pandas as pd
    >>> from leadscore.data.contracts import CrmData
    >>> data = CrmData.from_frames(
    ...     pd.DataFrame({"lead_id": ["a", "b", "c"], "created_at": ["2024-01-01"] * 3}),
    ...     pd.DataFrame({"event_id": ["1", "2", "3"], "lead_id": ["a", "b", "c"], "at": ["2024-01-11"] * 3,
    ...                   "type": ["lost"] * 3, "subtype": ["price", "price", "timing"]}))
    >>> lost_reasons(data)[["reason", "lost", "share"]].to_dict("records")[0]
    {'reason': 'price', 'lost': 2, 'share': 0.6666666666666666}
    """
    check_period(period)
    check_group_by(data.leads, group_by)
    lost = lost_opportunities(data, start, end, as_of=as_of)
    keys = ["reason"]
    if group_by is not None:
        lost[group_by] = lead_groups(lost, group_by, period, times=lost["lost_at"]).to_numpy()
        keys = [group_by, "reason"]
    grouped = lost.groupby(keys, sort=True)
    out = grouped.agg(lost=("lead_id", "size"), median_days_open=("days_open", "median")).reset_index()
    totals = out.groupby(keys[:-1])["lost"].transform("sum") if group_by else out["lost"].sum()
    out.insert(len(keys) + 1, "share", out["lost"] / totals)
    return out.sort_values([*keys[:-1], "lost"], ascending=[True] * (len(keys) - 1) + [False], ignore_index=True)
