"""Sales follow-up for managers: the funnel, salesperson performance and goal progress, over the stored data.

Thin routes over :mod:`leadscore.analytics`: each parses its query, loads the stored data set, calls one library
function and returns its table as rows. A parameter the library refuses (an unknown grouping, a range that ends
before it starts, ...) is a 422 naming the parameter.

A table split into periods has at most :data:`~leadscore.analytics.periods.MAX_PERIODS` of them (the library
refuses more). When the query gives the range, that is checked before the store is read, so a range of centuries
costs nothing; without one, the data's own span decides, checked before the table is computed. Dates are
within pandas' range (1678 to 2262), refused by the query's schema otherwise.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from leadscore import analytics
from leadscore.analytics.periods import check_period_count
from leadscore.api.deps import ReadKey, RepoDep
from leadscore.api.errors import RequestProblem, error_responses
from leadscore.api.schemas import Timestamp
from leadscore.data.records import records

router = APIRouter(tags=["analytics"])

ERRORS = error_responses("read", invalid="A parameter the analytics cannot use; `loc` names it.")

Period = Literal["day", "week", "month"]
START = "Start of the half-open range [start, end), ISO 8601 (UTC if no offset)."
END = "End of the half-open range [start, end), ISO 8601."
AS_OF = "Count only what was known at this moment (default: now / the data's end)."


class FunnelQuery(BaseModel):
    """The funnel's range, grouping and form (unknown parameters are refused)."""

    model_config = ConfigDict(extra="forbid")
    start: Timestamp | None = Field(None, description=START)
    end: Timestamp | None = Field(None, description=END)
    group_by: str | None = Field(None, description="period, owner, source, segment or another lead column.")
    period: Period = Field("month", description="Bucket of `group_by=period`.")
    as_of: Timestamp | None = Field(None, description=AS_OF)
    summary: bool = Field(False, description="One row of totals (win rate, cycle time, ...) instead of stages.")


class PerformanceQuery(BaseModel):
    """The range and form of salesperson performance (unknown parameters are refused)."""

    model_config = ConfigDict(extra="forbid")
    start: Timestamp | None = Field(None, description=START)
    end: Timestamp | None = Field(None, description=END)
    period: Period | None = Field(None, description="Split the range into days, weeks or months.")
    as_of: Timestamp | None = Field(None, description=AS_OF)
    against_median: bool = Field(False, description="Long form: each figure against the team median.")


class GoalsQuery(BaseModel):
    """Which goals' progress, as of when (unknown parameters are refused)."""

    model_config = ConfigDict(extra="forbid")
    as_of: Timestamp | None = Field(None, description=AS_OF)
    scope: str | None = Field(None, description="'team' or a salesperson's id (default: every scope).")
    metric: str | None = Field(None, description="revenue, conversions, expenses, new_leads, meetings, calls, emails.")
    period: Period | None = Field(None, description="Only goals of this period.")


class Table(BaseModel):
    """One analytics table: its rows, column names in order, and the parameters it was computed with."""

    columns: list[str]
    rows: list[dict[str, Any]]
    parameters: dict[str, Any] = Field(default_factory=dict)

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "columns": ["stage", "leads_reached", "conversion_to_next"],
                    "rows": [{"stage": "new", "leads_reached": 1200, "conversion_to_next": 0.64}],
                    "parameters": {"period": "month", "group_by": None},
                }
            ]
        }
    }


def _table(frame: pd.DataFrame, **parameters: Any) -> Table:
    frame = frame.reset_index() if frame.index.name or isinstance(frame.index, pd.MultiIndex) else frame
    rows = records(frame)
    shown = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in parameters.items()}
    return Table(columns=[str(c) for c in frame.columns], rows=rows, parameters=shown)


def _plain(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value.item() if hasattr(value, "item") else value


# Which query parameter a library message is about, judged by its first clause (before any list of choices).
PARAMETER_OF_MESSAGE = (
    ("grouping", "group_by"),
    ("ends before it starts", "end"),
    ("range is empty", "end"),
    ("metric", "metric"),
    ("scope", "scope"),
    ("period", "period"),
    ("as_of", "as_of"),
)


def _call(function, *args, **kwargs) -> pd.DataFrame:
    """Run a library function; its ValueError is a 422 pointing at the parameter it is about."""
    try:
        return function(*args, **kwargs)
    except ValueError as err:
        message = str(err)
        first_clause = message.split(";")[0].lower()
        named = next((param for words, param in PARAMETER_OF_MESSAGE if words in first_clause), None)
        raise RequestProblem(["query", named] if named else ["query"], message) from err


def _check_periods(start: datetime | None, end: datetime | None, period: str) -> None:
    """Refuse a range given in full that spans too many periods, before the store is read (a range left to the
    data's span is checked by the library)."""
    if start is not None and end is not None:
        _call(check_period_count, start, end, period)


@router.get("/funnel", response_model=Table, summary="The sales funnel", responses=ERRORS)
def get_funnel(principal: ReadKey, repo: RepoDep, query: Annotated[FunnelQuery, Query()]) -> Table:
    """Stage-to-stage conversion, drop-off and time in stage of the leads created in [start, end); with
    `summary=true`, leads, wins, win rate, revenue and cycle times instead. Needs `read`."""
    if query.group_by == "period":
        _check_periods(query.start, query.end, query.period)
    data = repo.load_crm()
    function = analytics.funnel_summary if query.summary else analytics.funnel
    frame = _call(
        function, data, query.start, query.end, group_by=query.group_by, period=query.period, as_of=query.as_of
    )
    return _table(frame, **query.model_dump())


@router.get("/reps/performance", response_model=Table, summary="Salesperson performance", responses=ERRORS)
def get_rep_performance(principal: ReadKey, repo: RepoDep, query: Annotated[PerformanceQuery, Query()]) -> Table:
    """Per salesperson and for the team: emails, calls, meetings, wins, losses, revenue, response time, each
    with the team median (or, with `against_median=true`, flagged where a person needs help). Needs `read`."""
    if query.period is not None:
        _check_periods(query.start, query.end, query.period)
    data = repo.load_crm()
    frame = _call(analytics.rep_performance, data, query.start, query.end, period=query.period, as_of=query.as_of)
    if query.against_median:
        frame = analytics.vs_team_median(frame)
    return _table(frame, **query.model_dump())


@router.get("/goals/progress", response_model=Table, summary="Progress against goals", responses=ERRORS)
def get_goal_progress(principal: ReadKey, repo: RepoDep, query: Annotated[GoalsQuery, Query()]) -> Table:
    """For each goal in force: actual to date, % of target, the daily rate now needed, on track or behind, and
    last period to the same point. Set goals with `POST /api/v1/goals`. Needs `read`."""
    data = repo.load_crm()
    frame = _call(
        analytics.goal_progress, data, query.as_of, scope=query.scope, metric=query.metric, period=query.period
    )
    return _table(frame, **query.model_dump())
