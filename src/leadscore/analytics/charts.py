"""PNG charts of the analytics frames: funnel, salesperson leaderboard, goal burn-up, month against month.

Each function takes the frame its analytics function returns and a path, draws with matplotlib's object API
(no pyplot state, so it is safe inside a web server) and returns the path written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from leadscore.data.contracts import TEAM_SCOPE

_BLUE, _GREY, _ORANGE = "#2b6cb0", "#a0aec0", "#dd6b20"


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def plot_funnel(funnel_frame: pd.DataFrame, path: str | Path, *, title: str = "Sales funnel") -> Path:
    """Horizontal bars of the leads reaching each stage, labelled with the conversion from the stage before.

    Examples
    --------
    >>> f = pd.DataFrame({"stage": ["new", "won"], "leads_reached": [10, 4], "conversion_to_next": [0.4, None]})
    >>> plot_funnel(f, "/tmp/funnel.png").name
    'funnel.png'
    """
    if "stage" not in funnel_frame or "leads_reached" not in funnel_frame:
        raise ValueError("plot_funnel needs the columns 'stage' and 'leads_reached' (the output of funnel())")
    frame = funnel_frame.groupby("stage", sort=False)["leads_reached"].sum()
    fig = Figure(figsize=(7, 0.55 * len(frame) + 1.2))
    ax = fig.add_subplot()
    y = np.arange(len(frame))[::-1]
    ax.barh(y, frame.to_numpy(), color=_BLUE)
    ax.set_yticks(y, frame.index)
    previous = np.r_[np.nan, frame.to_numpy()[:-1]]
    for yi, value, before in zip(y, frame.to_numpy(), previous, strict=True):
        label = f"{value:,.0f}" if np.isnan(before) or before == 0 else f"{value:,.0f}  ({value / before:.0%})"
        ax.text(value, yi, "  " + label, va="center", fontsize=9)
    ax.set_xlabel("leads")
    ax.set_xlim(0, max(frame.max(), 1) * 1.3)
    ax.set_title(title)
    return _save(fig, path)


def plot_leaderboard(
    performance: pd.DataFrame, path: str | Path, *, metric: str = "revenue", top: int = 20, title: str | None = None
) -> Path:
    """Reps ranked on one figure of :func:`~leadscore.analytics.performance.rep_performance`, with the median.

    Examples
    --------
    >>> perf = pd.DataFrame({"rep_id": ["ann", "bob", "team", "team_median"], "revenue": [5.0, 3.0, 8.0, 4.0]})
    >>> plot_leaderboard(perf, "/tmp/board.png").name
    'board.png'
    """
    if metric not in performance.columns:
        raise ValueError(f"metric {metric!r} is not a column of the performance frame")
    reps = performance[~performance["rep_id"].isin((TEAM_SCOPE, "team_median"))]
    reps = reps.sort_values(metric, ascending=False).head(top)
    median = performance.loc[performance["rep_id"] == "team_median", metric]
    fig = Figure(figsize=(7, 0.35 * len(reps) + 1.5))
    ax = fig.add_subplot()
    y = np.arange(len(reps))[::-1]
    ax.barh(y, reps[metric].fillna(0).to_numpy(), color=_BLUE)
    ax.set_yticks(y, reps["rep_id"].astype(str))
    if len(median) and pd.notna(median.iloc[0]):
        ax.axvline(float(median.iloc[0]), color=_ORANGE, linestyle="--", label="team median")
        ax.legend(loc="lower right")
    ax.set_xlabel(metric.replace("_", " "))
    ax.set_title(title or f"Salesperson leaderboard: {metric.replace('_', ' ')}")
    return _save(fig, path)


def plot_burnup(burnup: pd.DataFrame, path: str | Path, *, title: str = "Goal burn-up") -> Path:
    """Cumulative actual against the target's straight line, through the period (from ``goal_burnup``).

    Examples
    --------
    >>> b = pd.DataFrame({"day": pd.date_range("2024-01-01", periods=3, tz="UTC"),
    ...                   "cumulative": [1.0, 3.0, None], "target_cumulative": [2.0, 4.0, 6.0]})
    >>> plot_burnup(b, "/tmp/burnup.png").name
    'burnup.png'
    """
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    # Each cumulative figure is as of the end of its day; the lines start from zero at the period's start.
    day = burnup["day"].dt.tz_localize(None)
    x = pd.concat([day.iloc[:1], day + pd.Timedelta(days=1)], ignore_index=True)
    zero = pd.Series([0.0])
    target = pd.concat([zero, burnup["target_cumulative"]], ignore_index=True)
    actual = pd.concat([zero, burnup["cumulative"]], ignore_index=True)
    ax.plot(x, target, color=_GREY, linestyle="--", label="target")
    ax.plot(x, actual, color=_BLUE, marker="o", markersize=3, label="actual")
    ax.set_ylabel("cumulative")
    ax.legend(loc="upper left")
    ax.set_title(title)
    fig.autofmt_xdate()
    return _save(fig, path)


def plot_month_over_month(daily: pd.DataFrame, path: str | Path, *, title: str = "This month vs last month") -> Path:
    """Cumulative totals by day of month, this month against last (from ``month_over_month_daily``).

    Examples
    --------
    >>> d = pd.DataFrame({"day_of_month": [1, 2], "this_month": [1.0, None], "last_month": [2.0, 3.0]})
    >>> plot_month_over_month(d, "/tmp/mom.png").name
    'mom.png'
    """
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    ax.plot(daily["day_of_month"], daily["last_month"], color=_GREY, label="last month")
    ax.plot(daily["day_of_month"], daily["this_month"], color=_BLUE, marker="o", markersize=3, label="this month")
    ax.set_xlabel("day of month")
    ax.set_ylabel("cumulative")
    ax.legend(loc="upper left")
    ax.set_title(title)
    return _save(fig, path)
