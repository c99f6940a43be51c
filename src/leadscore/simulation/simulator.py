"""A simulated CRM: leads, their activity, goals and expenses, with the true conversion probability of each lead.

The demo, the tests and the benchmarks run on it. What it simulates, a sales manager would recognise: leads
arrive from web forms, paid ads, outbound prospecting, referrals, partners and trade shows; they belong to SMB,
mid-market or enterprise companies in a country and an industry; a team of salespeople of uneven skill and
workload emails, calls and meets them; they move through the pipeline stages and are won, lost for a reason
or left to go stale. Business slows down in August and at Christmas and speeds up at the end of the quarter.

Underneath, each lead has a hidden state (its stage and whether it is engaged or dormant) that moves as a
Markov chain whose rates depend on the lead's attributes, a latent interest and its salesperson
(:mod:`leadscore.simulation.process`); the activity in the CRM is emitted from that hidden state
(:mod:`leadscore.simulation.behaviour`), so behaviour reveals the interest without being the cause of the win.
Because the chain is known, the probability that a lead is won within 90 days of a cutoff is computed exactly:
``SimulatedCrm.truth`` is the oracle a model can be compared with.

Examples
--------
>>> sim = simulate(n_leads=300, n_reps=4, months=6, seed=1)
>>> sim.data.leads.columns[:4].tolist()
['lead_id', 'created_at', 'owner_id', 'source']
>>> sorted(sim.truth.columns)
['cutoff', 'lead_id', 'propensity']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.data.contracts import CrmData
from leadscore.simulation.behaviour import emit_events, labels
from leadscore.simulation.business import make_expenses, make_goals
from leadscore.simulation.drift import NewEventType, SourceDrift, doom_leads, new_type_events, seconds_of
from leadscore.simulation.process import (
    LOST,
    WON,
    BusinessClock,
    LeadDrivers,
    Paths,
    rate_matrix,
    sample_paths,
    state_at,
    win_probability,
)
from leadscore.simulation.types import (
    AD_CAMPAIGNS,
    COUNTRIES,
    INDUSTRIES,
    SEGMENT_DEAL,
    SEGMENT_PACE,
    SEGMENT_SIZE,
    SEGMENTS,
    SOURCES,
    LeadTable,
    Team,
)

HORIZON_DAYS = 90
CLOCK_MARGIN_DAYS = 400  # the clock runs past the data so that any horizon from any cutoff can be measured

# Lead attributes: (value, share of leads, effect on the lead's quality on the log-rate scale).
QUALITY_SHIFT = -0.6  # sets the overall conversion rate (about 10 %)
ATTRIBUTE_WEIGHT = 1.1  # how much what is known of the lead (source, segment, ...) moves the pipeline
INTEREST_WEIGHT = 0.3  # how much the latent interest does (it also drives the lead's behaviour)


@dataclass(kw_only=True)
class SimulatedCrm:
    """A simulated CRM data set and its ground truth.

    ``data`` holds the contract tables; ``truth`` holds, for every Monday 00:00 UTC in the period and every lead
    open then, the true probability that the lead is won within 90 days (``lead_id``, ``cutoff``,
    ``propensity``). ``truth_at`` gives the same for other cutoffs or horizons.
    """

    data: CrmData
    truth: pd.DataFrame
    leads: LeadTable = field(repr=False)
    paths: Paths = field(repr=False)
    rates: np.ndarray = field(repr=False)
    clock: BusinessClock = field(repr=False)
    # An injected SourceDrift: the leads that can no longer be won from doom_start_s (None: no such drift).
    doomed: np.ndarray | None = field(default=None, repr=False)
    doom_start_s: int | None = field(default=None, repr=False)

    def truth_at(self, cutoffs, horizon_days: float = HORIZON_DAYS) -> pd.DataFrame:
        """True P(won within ``horizon_days`` after each cutoff) for every lead open at that cutoff.

        Examples
        --------
        >>> sim = simulate(n_leads=300, n_reps=4, months=6, seed=1)
        >>> t = sim.truth_at(["2024-04-01"], horizon_days=30)
        >>> bool(t["propensity"].between(0, 1).all())
        True
        """
        cut = pd.DatetimeIndex(pd.to_datetime(list(cutoffs), utc=True))
        cut_s = (cut.as_unit("s").asi8).astype(np.int64)
        # Open at a cutoff: created by then and not closed by then (a close at exactly the cutoff counts).
        closing = np.isin(self.paths.next_state, (WON, LOST))
        close_s = np.full(len(self.leads.created_s), np.iinfo(np.int64).max)
        close_s[self.paths.lead[closing]] = self.paths.end_s[closing]
        is_open = (self.leads.created_s[None, :] <= cut_s[:, None]) & (close_s[None, :] > cut_s[:, None])
        which_cut, lead = np.nonzero(is_open)
        at = cut_s[which_cut]
        state = state_at(self.paths, lead, at)
        horizon = self.clock.to_op(at + horizon_days * 86_400.0) - self.clock.to_op(at.astype(float))
        prob = win_probability(self.rates, lead, state, horizon)
        if self.doomed is not None:
            # A doomed lead can be won only before the drift's start: zero from then, else the horizon ends there.
            doomed = self.doomed[lead]
            prob[doomed & (at >= self.doom_start_s)] = 0.0
            early = np.flatnonzero(doomed & (at < self.doom_start_s))
            until = np.minimum(at[early] + horizon_days * 86_400.0, self.doom_start_s)
            clipped = self.clock.to_op(until) - self.clock.to_op(at[early].astype(float))
            prob[early] = win_probability(self.rates, lead[early], state[early], clipped)
        return pd.DataFrame(
            {
                "lead_id": labels(lead, self.data.leads["lead_id"].to_numpy()),
                "cutoff": pd.to_datetime(at, unit="s", utc=True).as_unit("ns"),
                "propensity": prob,
            }
        )

    def flat_table(self, seed: int = 0) -> pd.DataFrame:
        """The leads as one flat export with a ``converted`` column and the status, grade and fit-score columns
        of real exports (:func:`leadscore.simulation.flat_export.flat_lead_table`).

        Examples
        --------
        >>> table = simulate(n_leads=300, n_reps=4, months=6, seed=1).flat_table()
        >>> sorted(table["converted"].unique())
        ['no', 'yes']
        """
        from leadscore.simulation.flat_export import flat_lead_table

        return flat_lead_table(self, seed=seed)

    def write(self, out_dir: str | Path, fmt: str = "csv", *, flat: bool = False) -> dict[str, Path]:
        """Write leads, events, goals, expenses and truth as ``<table>.csv`` (or ``.parquet``) in ``out_dir``.

        ``leadscore.data.io.load_dataset(out_dir)`` reads the four CRM tables back. With ``flat``, also the flat
        lead export (:meth:`flat_table`) as ``leads_flat.csv`` (or ``.parquet``), for ``leadscore train --table``.
        """
        from leadscore.data.io import write_dataset

        paths = write_dataset(self.data, out_dir, fmt)
        extra = {"truth": self.truth, **({"leads_flat": self.flat_table()} if flat else {})}
        for name, frame in extra.items():
            path = paths[name] = Path(out_dir) / f"{name}.{fmt}"
            if fmt == "parquet":
                frame.to_parquet(path, index=False)
            else:
                frame.to_csv(path, index=False, date_format="%Y-%m-%dT%H:%M:%S%z")
        return paths


def _pick(rng: np.random.Generator, table: tuple, n: int) -> np.ndarray:
    shares = np.array([row[1] for row in table], dtype=float)
    return rng.choice(len(table), size=n, p=shares / shares.sum())


def _effect(table: tuple, codes: np.ndarray) -> np.ndarray:
    return np.array([row[2] for row in table])[codes]


def make_team(n_reps: int, rng: np.random.Generator) -> Team:
    """Salespeople of uneven skill and workload; busier reps do less per lead and let dead leads linger."""
    width = max(2, len(str(n_reps)))
    rep_id = np.array([f"rep_{i + 1:0{width}d}" for i in range(n_reps)], dtype=object)
    skill = rng.normal(0.0, 0.1, n_reps)
    load = rng.lognormal(0.0, 0.35, n_reps)
    load /= load.sum()
    busy = load * n_reps  # 1 = an average share of the leads
    activity = busy**-0.35 * rng.lognormal(0.0, 0.15, n_reps)
    diligence = busy**-0.3 * rng.lognormal(0.0, 0.25, n_reps)
    return Team(rep_id=rep_id, skill=skill, load=load, activity=activity, diligence=diligence)


def make_leads(n: int, team: Team, clock: BusinessClock, end_s: int, rng: np.random.Generator) -> LeadTable:
    """Leads arriving throughout the period (growing ~2 % a month, at the pace of business), with attributes."""
    end_op = float(clock.to_op(end_s))
    # Arrival times: density proportional to exp(growth * u) on the business clock, by the inverse cdf.
    growth = 0.02 / 30.0
    u = np.log1p(rng.random(n) * np.expm1(growth * end_op)) / growth
    created = np.minimum(np.ceil(clock.to_calendar(u)), end_s - 1).astype(np.int64)
    source = _pick(rng, SOURCES, n)
    segment = _pick(rng, SEGMENTS, n)
    names = [s[0] for s in SOURCES]
    # Trade-show leads come in bursts: within three days of one of the shows, every two months.
    is_event = source == names.index("event")
    shows = np.arange(clock.start_s + 20 * 86_400, end_s - 4 * 86_400, 61 * 86_400)
    shows = shows if len(shows) else np.array([clock.start_s])  # a period too short for a show: one on day one
    show = rng.integers(0, len(shows), n)
    burst = shows[show] + rng.integers(0, 3, n) * 86_400 + rng.integers(9 * 3600, 18 * 3600, n)
    created = np.where(is_event, burst, created).astype(np.int64)
    campaigns = tuple(c for c, _ in AD_CAMPAIGNS) + tuple(
        pd.to_datetime(shows, unit="s").strftime("expo_%Y_%m").tolist()
    )
    ad = _pick(rng, tuple((c, s, 0.0) for c, s in AD_CAMPAIGNS), n)
    campaign = np.where(source == names.index("paid_ads"), ad, -1)
    campaign = np.where(is_event, len(AD_CAMPAIGNS) + show, campaign)
    seg_names = np.array([s[0] for s in SEGMENTS])[segment]
    median, spread, low, high = (np.array([SEGMENT_SIZE[s][i] for s in seg_names]) for i in range(4))
    company_size = np.clip(np.round(median * rng.lognormal(0.0, spread)), low, high).astype(np.int64)
    country, industry = _pick(rng, COUNTRIES, n), _pick(rng, INDUSTRIES, n)
    # Enterprise leads go mostly to the stronger salespeople.
    weight = team.load[None, :] * np.exp(np.where(seg_names == "enterprise", 2.0, 0.0)[:, None] * team.skill)
    cum = np.cumsum(weight / weight.sum(axis=1, keepdims=True), axis=1)
    owner = np.minimum((cum < rng.random(n)[:, None]).sum(axis=1), len(team.rep_id) - 1)
    interest = rng.standard_normal(n)
    size_effect = -0.08 * (np.log(company_size) - np.log(median))
    observable = (
        _effect(SOURCES, source)
        + _effect(SEGMENTS, segment)
        + _effect(COUNTRIES, country)
        + _effect(INDUSTRIES, industry)
        + size_effect
    )
    quality = QUALITY_SHIFT + ATTRIBUTE_WEIGHT * observable + INTEREST_WEIGHT * interest
    deal = np.array([SEGMENT_DEAL[s] for s in seg_names]) * (company_size / median) ** 0.3
    deal = np.round(deal * rng.lognormal(0.0, 0.35, n), -2)
    pace = np.array([SEGMENT_PACE[s] for s in seg_names])
    drivers = LeadDrivers(quality=quality, pace=pace, skill=team.skill[owner], diligence=team.diligence[owner])
    order = np.argsort(created, kind="stable")  # lead ids follow creation order
    fields = (created, owner, source, segment, country, industry, company_size, campaign)
    created, owner, source, segment, country, industry, company_size, campaign = (f[order] for f in fields)
    drivers = LeadDrivers(**{f: getattr(drivers, f)[order] for f in drivers.__dataclass_fields__})
    return LeadTable(
        created_s=created,
        owner=owner,
        source=source,
        segment=segment,
        country=country,
        industry=industry,
        company_size=company_size,
        campaign=campaign,
        campaigns=campaigns,
        interest=interest[order],
        deal_value=deal[order],
        drivers=drivers,
    )


def leads_frame(leads: LeadTable, team: Team) -> pd.DataFrame:
    """The leads contract table."""
    n = len(leads.created_s)
    width = max(6, len(str(n)))

    def names(table: tuple, codes: np.ndarray) -> pd.Series:
        return labels(codes, [row[0] for row in table])

    return pd.DataFrame(
        {
            "lead_id": "lead_" + pd.Series(np.arange(1, n + 1)).astype("str").str.zfill(width),
            "created_at": pd.to_datetime(leads.created_s, unit="s", utc=True).as_unit("ns"),
            "owner_id": labels(leads.owner, team.rep_id),
            "source": names(SOURCES, leads.source),
            "segment": names(SEGMENTS, leads.segment),
            "company_size": leads.company_size,
            "country": names(COUNTRIES, leads.country),
            "industry": names(INDUSTRIES, leads.industry),
            "campaign": labels(leads.campaign, leads.campaigns),
        }
    )


def weekly_mondays(start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    """Every Monday 00:00 UTC in (start, end)."""
    return pd.date_range(start + pd.Timedelta(days=1), end - pd.Timedelta(seconds=1), freq="W-MON", tz="UTC")


def simulate(
    n_leads: int = 20_000,
    n_reps: int = 12,
    months: int = 18,
    seed: int = 0,
    start: str | pd.Timestamp = "2024-01-01",
    drift: Sequence[SourceDrift | NewEventType] = (),
) -> SimulatedCrm:
    """Simulate a CRM: ``n_leads`` leads worked by ``n_reps`` salespeople over ``months`` months from ``start``.

    Deterministic for a seed. All timestamps are UTC and fall in [start, start + months). ``drift`` injects
    changes from given dates (:mod:`leadscore.simulation.drift`: a source converting half as often, a new event
    type); without it the output is what it always was.

    Examples
    --------
    >>> sim = simulate(n_leads=500, n_reps=5, months=6, seed=3)
    >>> len(sim.data.leads), sim.data.leads["owner_id"].nunique()
    (500, 5)
    >>> bool(sim.data.events["at"].max() < pd.Timestamp("2024-07-01", tz="UTC"))
    True
    """
    if n_leads < 1 or n_reps < 1 or months < 1:
        raise ValueError(f"n_leads, n_reps and months must be positive (got {n_leads}, {n_reps}, {months})")
    start_ts = pd.Timestamp(start)
    start_ts = start_ts.tz_localize("UTC") if start_ts.tzinfo is None else start_ts.tz_convert("UTC")
    end_ts = start_ts + pd.DateOffset(months=months)
    end_s = int(end_ts.timestamp())
    rng = np.random.default_rng(seed)
    clock = BusinessClock.build(start_ts, (end_ts - start_ts).days + CLOCK_MARGIN_DAYS)
    team = make_team(n_reps, rng)
    leads = make_leads(n_leads, team, clock, end_s, rng)
    rates = rate_matrix(leads.drivers)
    paths = sample_paths(rates, leads.created_s, clock, end_s, rng)
    # Drift draws from a generator of its own, so that the simulation without it stays the same.
    drift_rng = np.random.default_rng([seed, 16]) if drift else None
    doomed, doom_start_s = None, None
    for change in drift:
        if isinstance(change, SourceDrift):
            if doomed is not None:
                raise ValueError("one SourceDrift per simulation")
            paths, doomed = doom_leads(paths, leads, change, drift_rng)
            doom_start_s = seconds_of(change.start)
    leads_df = leads_frame(leads, team)
    events = emit_events(leads, team, paths, clock, end_s, leads_df["lead_id"].to_numpy(), rng)
    for change in drift:
        if isinstance(change, NewEventType):
            events = new_type_events(events, leads_df, leads, change, end_s, drift_rng)
    expenses = make_expenses(leads_df, events, team.rep_id, start_ts, end_ts, rng)
    goals = make_goals(leads_df, events, expenses, team.rep_id, start_ts, end_ts, rng)
    data = CrmData(leads=leads_df, events=events, goals=goals, expenses=expenses)
    sim = SimulatedCrm(
        data=data,
        truth=pd.DataFrame(),
        leads=leads,
        paths=paths,
        rates=rates,
        clock=clock,
        doomed=doomed,
        doom_start_s=doom_start_s,
    )
    sim.truth = sim.truth_at(weekly_mondays(start_ts, end_ts))
    return sim
