"""Sales follow-up analytics: the funnel, salesperson performance and goals, as pandas DataFrames.

Every function takes a validated :class:`~leadscore.data.contracts.CrmData` and plain parameters (``start``, ``end``,
``period``, ``group_by``, ``as_of``, ``scope``) so the API, the notebooks and the ``leadscore report`` command
call the same code. Ranges are half-open ``[start, end)`` in UTC; weeks start on Monday
(:mod:`leadscore.analytics.periods`). Bad parameters raise a ValueError that names them.
"""

from leadscore.analytics.actuals import actuals, metric_points
from leadscore.analytics.forecast import forecast
from leadscore.analytics.funnel import FUNNEL_STAGES, cohorts, funnel, funnel_summary, lost_opportunities, lost_reasons
from leadscore.analytics.goals import (
    active_goals,
    expenses_vs_budget,
    goal_burnup,
    goal_progress,
    month_over_month,
    month_over_month_daily,
)
from leadscore.analytics.performance import METRICS, rep_performance, vs_team_median
from leadscore.analytics.periods import PERIODS

__all__ = [
    "FUNNEL_STAGES",
    "METRICS",
    "PERIODS",
    "active_goals",
    "actuals",
    "cohorts",
    "expenses_vs_budget",
    "forecast",
    "funnel",
    "funnel_summary",
    "goal_burnup",
    "goal_progress",
    "lost_opportunities",
    "lost_reasons",
    "metric_points",
    "month_over_month",
    "month_over_month_daily",
    "rep_performance",
    "vs_team_median",
]
