"""Analytics answered by the store: the funnel and lost reasons, salesperson performance, goal progress, burn-up,
month over month and forecast, computed by the database (SQL aggregates over a read model kept on ingest, and
indexes) instead of by loading every lead and event into pandas.

The answers equal those of :mod:`leadscore.analytics` on the same data (the pandas functions stay the reference
for notebooks and files; ``tests/test_store_analytics.py`` holds the two together on SQLite and PostgreSQL).
This layer sits above both: it asks :mod:`leadscore.store` for the sums and rows a question needs, and finishes
them with the pandas path's own code.
"""

from leadscore.store_analytics.answers import (
    forecast,
    funnel,
    goal_burnup,
    goal_progress,
    lost_reasons,
    month_over_month_daily,
    owners,
    rep_performance,
)

__all__ = [
    "forecast",
    "funnel",
    "goal_burnup",
    "goal_progress",
    "lost_reasons",
    "month_over_month_daily",
    "owners",
    "rep_performance",
]
