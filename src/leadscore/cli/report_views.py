"""The three views a sales manager reads every morning, as tables and PNG charts (what `leadscore report` prints).

1. Funnel: where deals stall (all leads in the data, and the win rate of each recent period's new leads).
2. Salespeople: who needs coaching on what (the period to date, each figure against the team median).
3. Goals: will we hit this period's targets (progress, this month against last, spend against budget).

Apart from the command (:mod:`leadscore.cli.report`), so that the command line loads pandas, matplotlib and
scipy only when a report is asked for.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from leadscore.analytics import charts
from leadscore.analytics.funnel import funnel, funnel_summary, lost_reasons
from leadscore.analytics.goals import (
    expenses_vs_budget,
    goal_burnup,
    goal_progress,
    month_over_month,
    month_over_month_daily,
)
from leadscore.analytics.performance import rep_performance, vs_team_median
from leadscore.analytics.periods import PERIODS, period_start, utc
from leadscore.data.contracts import CrmData

console = Console()

# Columns holding a share (shown as a percentage) and the figures a coach looks at first.
_SHARES = ("share_of_entered", "conversion_to_next", "drop_off", "share", "share_won", "change_vs_same_point")
_COACHING = (
    "open_rate",
    "reply_rate",
    "calls",
    "cold_calls",
    "avg_call_duration_s",
    "show_rate",
    "win_rate",
    "revenue",
    "median_first_response_h",
    "activity_per_open_lead",
)


def _fmt(column: str, value) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return "-"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | float | np.number):
        if column.endswith("_rate") and not column.startswith(("needed", "daily")) or column in _SHARES:
            return f"{value:.0%}"
        if column.startswith("pct_"):
            return f"{value:.0f}%"
        if float(value).is_integer() or abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:,.1f}"
    return str(value)


def print_frame(frame: pd.DataFrame, title: str, columns: list[str] | None = None) -> None:
    """Print a frame as a rich table, formatting each column by what its name says it holds."""
    columns = [c for c in (columns or list(frame.columns)) if c in frame.columns]
    table = Table(title=title, title_justify="left")
    for c in columns:
        table.add_column(c.replace("_", " "), justify="left" if frame[c].dtype == object else "right")
    for row in frame[columns].itertuples(index=False):
        table.add_row(*(_fmt(c, v) for c, v in zip(columns, row, strict=True)))
    console.print(table)


def build_report(data: CrmData, period: str, out: Path, as_of=None) -> dict[str, Path]:
    """Print the three views and write the four charts to ``out``; returns the chart paths by name."""
    if period not in PERIODS:
        raise typer.BadParameter(f"unknown period {period!r}; choose one of {list(PERIODS)}", param_hint="--period")
    now = utc(as_of, "--as-of") if as_of else utc(data.end) + pd.Timedelta(1, "ns")
    window_start = period_start(now, period)
    console.rule(f"[bold]leadscore report[/bold] as of {now:%Y-%m-%d %H:%M} UTC; {period} from {window_start:%Y-%m-%d}")

    stages = funnel(data, as_of=now)
    print_frame(stages, "Funnel: every lead in the data")
    recent = funnel_summary(data, group_by="period", period="month", as_of=now).tail(6)
    print_frame(
        recent,
        "New leads by month of creation: what became of them",
        ["period", "leads", "open", "won", "lost", "win_rate", "won_revenue", "median_cycle_days"],
    )
    lost = lost_reasons(data, window_start, now + pd.Timedelta(1, "ns"), as_of=now)
    if len(lost):
        print_frame(lost.head(8), f"Lost this {period}, by reason")

    perf = rep_performance(data, window_start, now + pd.Timedelta(1, "ns"), as_of=now)
    print_frame(
        perf,
        f"Salespeople, this {period} to date: activity",
        [
            "rep_id",
            "emails_sent",
            "open_rate",
            "reply_rate",
            "calls",
            "cold_calls",
            "avg_call_duration_s",
            "meetings_held",
            "show_rate",
        ],  # fmt: skip
    )
    print_frame(
        perf,
        f"Salespeople, this {period} to date: results",
        [
            "rep_id",
            "won",
            "lost",
            "win_rate",
            "revenue",
            "avg_deal_size",
            "median_first_response_h",
            "activity_per_open_lead",
        ],  # fmt: skip
    )
    flags = vs_team_median(perf)
    needs = flags[(flags["flag"] == "needs attention") & flags["metric"].isin(_COACHING)]
    attention = needs.groupby("rep_id")["metric"].agg(", ".join).reset_index()
    if len(attention):
        print_frame(attention.rename(columns={"metric": "behind the team median on"}), "Who needs help where")

    progress = goal_progress(data, now, scope="team")
    print_frame(
        progress,
        "Team goals",
        ["metric", "period", "target", "actual", "pct_of_target", "status", "daily_target", "needed_daily_rate"],
    )
    print_frame(month_over_month(data, now), "This month against last month (to the same point)")
    three_months_ago = period_start(period_start(now, "month") - pd.Timedelta(days=61), "month")
    spend = expenses_vs_budget(data, three_months_ago, now + pd.Timedelta(1, "ns"), period="month")
    print_frame(spend, "Spend against budget")

    out.mkdir(parents=True, exist_ok=True)
    metric = "revenue" if (progress["metric"] == "revenue").any() or progress.empty else progress["metric"].iloc[0]
    paths = {
        "funnel": charts.plot_funnel(stages, out / "funnel.png"),
        "leaderboard": charts.plot_leaderboard(perf, out / "leaderboard.png", metric="revenue"),
        "burnup": charts.plot_burnup(
            goal_burnup(data, metric, now, period="month"), out / "burnup.png", title=f"Team {metric}: month burn-up"
        ),
        "month_over_month": charts.plot_month_over_month(
            month_over_month_daily(data, "revenue", now), out / "month_over_month.png", title="Revenue: month vs month"
        ),
    }
    console.print("charts: " + ", ".join(str(p) for p in paths.values()))
    return paths
