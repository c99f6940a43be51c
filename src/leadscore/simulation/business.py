"""The simulated CRM's money and targets: what the team spends, and the goals it is held to.

Expenses follow the activity: ad spend per campaign per day follows the paid-ads leads it bought, trade shows
cost a booth fee, meetings in person cost travel, and every salesperson costs a monthly tools licence. Goals
are set the way a sales manager sets them: monthly targets a little above the recent run rate (so some months
are met and some are missed), broken down into weekly and daily targets, for the team and for each salesperson.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CPL = {"google_search": 140.0, "linkedin_ads": 260.0, "meta_ads": 75.0}  # cost per lead bought
BOOTH_FEE = (8_000.0, 30_000.0)
TRAVEL = {"enterprise": 450.0, "mid-market": 160.0}  # per meeting held in person (SMB meetings are online)
IN_PERSON = 0.4
TOOLS_PER_REP = 95.0  # monthly CRM and dialler licences


def _day(ts: pd.Series) -> pd.Series:
    return ts.dt.floor("D")


def make_expenses(
    leads: pd.DataFrame,
    events: pd.DataFrame,
    rep_ids: np.ndarray,
    start: pd.Timestamp,
    end: pd.Timestamp,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Ads (daily, per campaign), trade shows, travel (per meeting held in person, per rep) and tools (monthly)."""
    parts = []
    ads = leads[leads["campaign"].isin(list(CPL))]
    per_day = ads.groupby([_day(ads["created_at"]), "campaign"]).size().rename("leads").reset_index()
    cpl = per_day["campaign"].map(CPL).to_numpy()
    # A daily budget: the leads bought plus some spend that bought none.
    spend = cpl * (per_day["leads"].to_numpy() * rng.lognormal(0, 0.25, len(per_day)) + 0.3)
    at = per_day["created_at"] + pd.Timedelta(hours=23, minutes=30)
    parts.append(pd.DataFrame({"at": at, "amount": spend, "campaign": per_day["campaign"], "category": "ads"}))

    shows = leads.loc[leads["campaign"].str.startswith("expo_", na=False)]
    first = shows.groupby("campaign")["created_at"].min().reset_index()
    fee = rng.uniform(*BOOTH_FEE, len(first))
    parts.append(
        pd.DataFrame(
            {
                "at": _day(first["created_at"]) + pd.Timedelta(hours=8),
                "amount": fee,
                "campaign": first["campaign"],
                "category": "events",
            }
        )
    )

    held = events[events["type"] == "meeting_held"]
    segment = held["lead_id"].map(leads.set_index("lead_id")["segment"])
    cost = segment.map(TRAVEL).fillna(0.0).to_numpy()
    travel = (cost > 0) & (rng.random(len(held)) < IN_PERSON)
    amount = cost[travel] * rng.lognormal(0, 0.3, travel.sum())
    parts.append(
        pd.DataFrame(
            {
                "at": held["at"][travel] + pd.Timedelta(hours=2),
                "amount": amount,
                "rep_id": held["rep_id"][travel],
                "category": "travel",
            }
        )
    )

    months = pd.date_range(start, end, freq="MS", inclusive="left")
    parts.append(
        pd.DataFrame(
            {
                "at": np.repeat(months, len(rep_ids)),
                "amount": TOOLS_PER_REP,
                "rep_id": np.tile(rep_ids, len(months)),
                "category": "tools",
            }
        )
    )
    out = pd.concat(parts, ignore_index=True)
    out = out[(out["at"] >= start) & (out["at"] < end)]
    out = out.sort_values(["at", "category"], kind="stable").reset_index(drop=True)
    out["amount"] = out["amount"].round(2)
    return pd.DataFrame(
        {
            "at": out["at"].astype("datetime64[ns, UTC]"),
            "amount": out["amount"].astype(float),
            "rep_id": out["rep_id"].astype("str"),
            "campaign": out["campaign"].astype("str"),
            "category": out["category"].astype("str"),
        }
    )


TEAM_DAILY = ("revenue", "conversions", "meetings", "calls", "emails")
TEAM_WEEKLY = ("conversions", "meetings", "calls", "emails", "new_leads")
REP_MONTHLY = ("revenue", "conversions", "meetings", "calls", "emails")
REP_WEEKLY = ("meetings", "calls")


def _month_start(ts: pd.Series | pd.DatetimeIndex):
    """The first instant of each timestamp's month (UTC)."""
    day = ts.floor("D") if isinstance(ts, pd.DatetimeIndex) else ts.dt.floor("D")
    offset = pd.to_timedelta((day.day if isinstance(ts, pd.DatetimeIndex) else day.dt.day) - 1, unit="D")
    return day - offset


def _actuals(leads: pd.DataFrame, events: pd.DataFrame, expenses: pd.DataFrame) -> pd.DataFrame:
    """What happened, one row per fact: rep (or missing), month, metric, value."""
    kinds = {"won": "conversions", "meeting_held": "meetings", "call": "calls", "email_sent": "emails"}
    counted = events[events["type"].isin(list(kinds))]
    won = events[events["type"] == "won"]
    parts = [
        pd.DataFrame(
            {"rep": counted["rep_id"], "at": counted["at"], "metric": counted["type"].map(kinds), "value": 1.0}
        ),
        pd.DataFrame({"rep": won["rep_id"], "at": won["at"], "metric": "revenue", "value": won["amount"]}),
        pd.DataFrame({"rep": leads["owner_id"], "at": leads["created_at"], "metric": "new_leads", "value": 1.0}),
        pd.DataFrame(
            {"rep": expenses["rep_id"], "at": expenses["at"], "metric": "expenses", "value": expenses["amount"]}
        ),
    ]
    out = pd.concat(parts, ignore_index=True)
    out["month"] = _month_start(out["at"])
    return out


def _nice(x: np.ndarray) -> np.ndarray:
    """Round a target the way people write them: two significant figures."""
    x = np.asarray(x, dtype=float)
    scale = 10.0 ** np.floor(np.log10(np.maximum(x, 1.0)) - 1)
    return np.round(x / scale) * scale


def _long(targets: np.ndarray, starts: pd.DatetimeIndex, metrics, period: str, scopes) -> pd.DataFrame:
    """Goal rows from a (scope, start, metric) array of targets."""
    n_scopes, n_starts, n_metrics = targets.shape
    return pd.DataFrame(
        {
            "metric": np.tile(np.asarray(metrics, dtype=object), n_scopes * n_starts),
            "period": period,
            "target": _nice(targets.ravel()),
            "start": np.tile(np.repeat(starts, n_metrics), n_scopes),
            "scope": np.repeat(np.asarray(scopes, dtype=object), n_starts * n_metrics),
        }
    )


def make_goals(
    leads: pd.DataFrame,
    events: pd.DataFrame,
    expenses: pd.DataFrame,
    rep_ids: np.ndarray,
    start: pd.Timestamp,
    end: pd.Timestamp,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Team targets per month, week and day; each salesperson's per month and week.

    A monthly target is the run rate of the three months around it raised a little, with the manager's own
    noise; weekly and daily targets spread it over the month's working days (weekends get a target of zero).
    """
    actual = _actuals(leads, events, expenses)
    months = pd.date_range(_month_start(pd.DatetimeIndex([start]))[0], end, freq="MS", inclusive="left")
    team = actual.pivot_table(index="month", columns="metric", values="value", aggfunc="sum")
    team = team.reindex(index=months, columns=list(dict.fromkeys(["revenue", *TEAM_WEEKLY, "expenses"])))
    run_rate = team.fillna(0.0).rolling(3, center=True, min_periods=1).mean()
    stretch = rng.uniform(0.95, 1.2, run_rate.shape)
    stretch[:, -1] = rng.uniform(1.0, 1.1, len(months))  # the expenses target is a budget
    monthly = run_rate * stretch

    days = pd.date_range(start, end, freq="D", inclusive="left")
    working = days.day_of_week < 5
    month_of = _month_start(days)
    workdays = pd.Series(working, index=days).groupby(month_of).transform("sum").to_numpy()
    per_workday = monthly.loc[month_of].to_numpy() / workdays[:, None]
    per_workday = pd.DataFrame(per_workday, index=days, columns=monthly.columns)
    daily = per_workday[list(TEAM_DAILY)].to_numpy() * working[:, None]
    mondays = days[days.day_of_week == 0]
    weekly = per_workday.loc[mondays] * 5

    # A salesperson's share of a metric is their share of it over the whole period.
    by_rep = actual.dropna(subset=["rep"]).pivot_table(index="rep", columns="metric", values="value", aggfunc="sum")
    share = (by_rep / by_rep.sum()).reindex(index=rep_ids, columns=monthly.columns).fillna(1.0 / len(rep_ids))
    rep_month = monthly[list(REP_MONTHLY)].to_numpy()[None] * share[list(REP_MONTHLY)].to_numpy()[:, None]
    rep_week = weekly[list(REP_WEEKLY)].to_numpy()[None] * share[list(REP_WEEKLY)].to_numpy()[:, None]
    team_scope = ["team"]
    out = pd.concat(
        [
            _long(monthly.to_numpy()[None], months, monthly.columns, "month", team_scope),
            _long(weekly[list(TEAM_WEEKLY)].to_numpy()[None], mondays, TEAM_WEEKLY, "week", team_scope),
            _long(daily[None], days, TEAM_DAILY, "day", team_scope),
            _long(rep_month, months, REP_MONTHLY, "month", rep_ids),
            _long(rep_week, mondays, REP_WEEKLY, "week", rep_ids),
        ],
        ignore_index=True,
    )
    return pd.DataFrame(
        {
            "metric": out["metric"].astype("str"),
            "period": out["period"].astype("str"),
            "target": out["target"].astype(float),
            "start": pd.to_datetime(out["start"], utc=True).astype("datetime64[ns, UTC]"),
            "scope": out["scope"].astype("str"),
        }
    )
