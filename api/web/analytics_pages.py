"""Team performance, goals and the funnel: the manager's follow-up pages, over :mod:`leadscore.store_analytics`.

Each page asks the database the same questions as ``GET /api/v1/reps/performance``, ``/goals/progress`` and
``/funnel`` (the ranges are picked from a short list rather than typed), reading only the rows each needs, never
the whole store; the goals page also forecasts the month from the open leads' scores (the cached table of
today's leads), once per table (:class:`ForecastMemo`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from cachetools import LRUCache
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict

from leadscore import analytics, store_analytics
from leadscore.api.champion import LoadedModel
from leadscore.api.deps import ModelHolderDep, RepoDep, SettingsDep
from leadscore.api.open_leads import open_leads_table
from leadscore.api.web import i18n
from leadscore.api.web.charts import Line, bar_chart, line_chart
from leadscore.api.web.render import PREFIX, Lang, Viewer, page
from leadscore.data.records import records
from leadscore.settings import Settings
from leadscore.store import Repository

router = APIRouter(prefix=PREFIX, include_in_schema=False)

Range = Literal["month", "last_month", "90d", "365d", "all"]
RANGE_NAMES: dict[str, str] = {
    "month": "This month",
    "last_month": "Last month",
    "90d": "Last 90 days",
    "365d": "Last 12 months",
    "all": "All time",
}

#: The seed's measures of a salesperson, in the order a manager reads them: (column, English name, digits).
TEAM_MEASURES: tuple[tuple[str, str, int], ...] = (
    ("emails_sent", "Emails sent", 0),
    ("emails_opened", "Emails opened", 0),
    ("emails_replied", "Emails replied", 0),
    ("cold_calls", "Cold calls", 0),
    ("avg_call_minutes", "Average call (min)", 1),
    ("meetings_scheduled", "Meetings scheduled", 0),
    ("meetings_rejected", "Meetings rejected", 0),
    ("meetings_cancelled", "Meetings cancelled", 0),
    ("lost", "Lost", 0),
    ("won", "Wins", 0),
    ("revenue", "Revenue", 0),
)
#: A salesperson with at least this many measures well behind the team median is flagged as needing help.
HELP_AFTER = 3


def date_range(choice: str, now: pd.Timestamp) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """``[start, end)`` of a named range ending at ``now`` (``all``: no bounds).

    Examples
    --------
    >>> now = pd.Timestamp("2025-03-14 10:00", tz="UTC")
    >>> [str(t.date()) for t in date_range("last_month", now)], str(date_range("month", now)[0].date())
    (['2025-02-01', '2025-03-01'], '2025-03-01')
    """
    month_start = now.normalize().replace(day=1)
    if choice == "month":
        return month_start, None
    if choice == "last_month":
        return month_start - pd.DateOffset(months=1), month_start
    if choice in ("90d", "365d"):
        return now.normalize() - pd.Timedelta(days=int(choice[:-1])), None
    return None, None


class TeamQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    range: Range = "90d"


@router.get("/team", response_class=HTMLResponse)
def team_performance(
    request: Request, viewer: Viewer, lang: Lang, repo: RepoDep, query: Annotated[TeamQuery, Query()]
) -> HTMLResponse:
    """Per salesperson, the seed's measures against the team median; who needs help is flagged."""
    start, end = date_range(query.range, pd.Timestamp.now(tz="UTC"))
    performance = store_analytics.rep_performance(repo, start, end)
    performance["avg_call_minutes"] = performance["avg_call_duration_s"] / 60
    versus = analytics.vs_team_median(performance)
    behind = versus[(versus["flag"] == "needs attention") & versus["metric"].isin([m for m, _, _ in TEAM_MEASURES])]
    behind_by_rep = behind.groupby("rep_id")["metric"].apply(list).to_dict()
    reps = performance[~performance["rep_id"].isin(["team", "team_median"])]
    median = performance[performance["rep_id"] == "team_median"]
    rows = [
        {
            **row,
            "behind": behind_by_rep.get(row["rep_id"], []),
            "needs_help": len(behind_by_rep.get(row["rep_id"], [])) >= HELP_AFTER,
        }
        for row in records(reps)
    ]
    reasons = store_analytics.lost_reasons(repo, start, end, group_by="owner")
    return page(
        request,
        "team.html",
        lang,
        viewer=viewer,
        rows=rows,
        median=records(median)[0] if len(median) else {},
        measures=TEAM_MEASURES,
        ranges=RANGE_NAMES,
        chosen=query,
        lost_reasons=records(reasons),
        help_after=HELP_AFTER,
    )


class GoalsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    metric: Literal["revenue", "conversions", "expenses"] = "revenue"
    scope: str = "team"


@router.get("/goals", response_class=HTMLResponse)
def goals(
    request: Request,
    viewer: Viewer,
    lang: Lang,
    repo: RepoDep,
    holder: ModelHolderDep,
    settings: SettingsDep,
    query: Annotated[GoalsQuery, Query()],
) -> HTMLResponse:
    """Daily, weekly and monthly goals: progress, the rate now needed, the month's burn-up, this month against
    last, and the open pipeline's forecast against the month's goal."""
    scopes = ["team", *store_analytics.owners(repo)]
    scope = query.scope if query.scope in scopes else "team"
    progress = store_analytics.goal_progress(repo, scope=scope)
    progress = progress[progress["metric"].isin(["revenue", "conversions", "expenses"])]
    # The month's target is in the progress rows already read: the burn-up need not read the goals again.
    target = month_target(progress, query.metric)
    burnup = store_analytics.goal_burnup(repo, query.metric, period="month", scope=scope, target=target)
    daily = store_analytics.month_over_month_daily(repo, query.metric, scope=scope)
    money = query.metric != "conversions"
    y_format = (lambda v: i18n.fmt_number(v, lang)) if money else (lambda v: i18n.fmt_number(v, lang, 1))
    metric_name = i18n.translate(query.metric, lang)
    burnup_svg = line_chart(
        [
            Line(i18n.translate("Actual", lang), _finite(burnup["cumulative"])),
            Line(i18n.translate("Goal", lang), _finite(burnup["target_cumulative"]), css="series-3", dashed=True),
        ],
        [i18n.fmt_day(d.date(), lang) for d in burnup["day"]],
        title=f"{i18n.translate('Cumulative this month against the goal', lang)}: {metric_name}",
        y_format=y_format,
    )
    month_svg = line_chart(
        [
            Line(i18n.translate("This month", lang), _finite(daily["this_month"])),
            Line(i18n.translate("Last month", lang), _finite(daily["last_month"]), css="series-2", dashed=True),
        ],
        [str(d) for d in daily["day_of_month"]],
        title=f"{i18n.translate('This month against last', lang)}: {metric_name}",
        y_format=y_format,
    )
    model = holder.current
    forecast = None
    if model is not None and model.scorer.card.source == "crm":
        forecast = month_forecast(request, repo, model, settings, scope)
    return page(
        request,
        "goals.html",
        lang,
        viewer=viewer,
        progress=records(progress),
        burnup_svg=burnup_svg,
        month_svg=month_svg,
        forecast=forecast,
        chosen=query,
        scope=scope,
        scopes=scopes,
    )


def month_target(progress: pd.DataFrame, metric: str) -> float:
    """The month's target of ``metric`` in goal-progress rows of one scope (NaN when no goal is set).

    Examples
    --------
    >>> rows = pd.DataFrame({"metric": ["revenue", "revenue"], "period": ["week", "month"], "target": [5.0, 20.0]})
    >>> month_target(rows, "revenue"), month_target(rows, "expenses")
    (20.0, nan)
    """
    target = progress.loc[(progress["metric"] == metric) & (progress["period"] == "month"), "target"]
    return float(target.iloc[0]) if len(target) else float("nan")


class ForecastMemo:
    """The goals page's forecasts, each kept with the scored table of open leads it was made from and reused
    only while that table is the one in use (a new table, after ingestion or when the old one expired, is
    forecast again). Bounded: the latest ``max_entries`` (model version, scope) pairs.

    Examples
    --------
    >>> memo, table = ForecastMemo(), pd.DataFrame({"lead_id": ["a"], "probability": [0.5]})
    >>> memo.get(("1", "team"), table, lambda: ["made"]), memo.get(("1", "team"), table, lambda: ["again"])
    (['made'], ['made'])
    >>> memo.get(("1", "team"), table.copy(), lambda: ["from the new table"])
    ['from the new table']
    """

    def __init__(self, max_entries: int = 32):
        self._answers: LRUCache[tuple[str, str], tuple[pd.DataFrame, list[dict[str, Any]]]] = LRUCache(max_entries)
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str], table: pd.DataFrame, build: Callable[[], list[dict[str, Any]]]):
        with self._lock:
            kept = self._answers.get(key)
        if kept is not None and kept[0] is table:
            return kept[1]
        answer = build()
        with self._lock:
            self._answers[key] = (table, answer)
        return answer


def month_forecast(
    request: Request, repo: Repository, model: LoadedModel, settings: Settings, scope: str
) -> list[dict[str, Any]]:
    """The open pipeline's forecast of the month in ``scope``, from the scored table of open leads (the cached one
    the list and the API share); made once per table, so switching the page's metric does not forecast again."""
    _, table = open_leads_table(request, repo, model, settings)

    def build() -> list[dict[str, Any]]:
        pipeline = table[["lead_id", "probability"]]
        answer = store_analytics.forecast(
            repo, pipeline, period="month", scope=scope, horizon_days=model.scorer.card.horizon_days
        )
        return records(answer)

    return request.app.state.web_forecasts.get((model.version, scope), table, build)


def _finite(values: pd.Series) -> list[float | None]:
    return [None if v is None or not np.isfinite(v) else float(v) for v in values.astype(float)]


class FunnelQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    range: Range = "365d"
    group_by: Literal["", "period", "owner", "source"] = ""


@router.get("/funnel", response_class=HTMLResponse)
def funnel(
    request: Request, viewer: Viewer, lang: Lang, repo: RepoDep, query: Annotated[FunnelQuery, Query()]
) -> HTMLResponse:
    """Stage conversion, drop-off and time in stage of the leads created in the range, with the lost reasons;
    overall or by period, salesperson or source."""
    start, end = date_range(query.range, pd.Timestamp.now(tz="UTC"))
    group_by = query.group_by or None
    stages = store_analytics.funnel(repo, start, end, group_by=group_by)
    group_column = stages.columns[0] if group_by else None
    # The chart is the whole cohort: each lead is in one group, so its counts are the groups' sums (no second
    # question to the database).
    reached = (
        stages.groupby("stage", sort=False)["leads_reached"].sum()
        if group_by
        else stages.set_index("stage")["leads_reached"]
    )
    chart = bar_chart(
        [i18n.translate(s, lang) for s in reached.index],
        reached.astype(float).tolist(),
        title=i18n.translate("Stage conversion", lang),
        value_format=lambda v: i18n.fmt_number(v, lang),
    )
    reasons = store_analytics.lost_reasons(repo, start, end)
    return page(
        request,
        "funnel.html",
        lang,
        viewer=viewer,
        stages=records(stages),
        group_column=group_column,
        chart=chart,
        lost_reasons=records(reasons),
        ranges=RANGE_NAMES,
        chosen=query,
        generated=datetime.now(UTC),
    )
