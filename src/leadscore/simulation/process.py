"""The hidden sales process behind the simulated CRM, and its exact conversion probabilities.

Each lead follows a continuous-time Markov chain over hidden states: a pipeline stage (new, contacted,
qualified, proposal, negotiation) crossed with whether the prospect is *engaged* or has gone *dormant*; it ends
in ``won`` or ``lost`` (closed, with a reason), or goes *stale*: its salesperson stops working a dormant lead
without closing it, and nothing more happens to it (it stays open in the CRM, with no chance of a win). The
transition rates depend on the lead's quality (its attributes plus a latent interest), its segment's pace and
its salesperson's skill (mostly at closing) and diligence (in closing or abandoning dormant leads).

Time runs on a *business clock*: every rate is per operational day, and an operational day passes quickly in
working hours, slowly at night, at weekends, in August and over Christmas, and quickly in the end-of-quarter
push. Because the clock scales all rates alike, the chain is a time-changed homogeneous chain, so the
probability of a win within a horizon is computed exactly by uniformisation: that is the oracle that models
are benchmarked against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

N_STAGES = 5
N_TRANSIENT = 2 * N_STAGES  # stage s engaged = s, stage s dormant = N_STAGES + s
WON, LOST, STALE = N_TRANSIENT, N_TRANSIENT + 1, N_TRANSIENT + 2  # absorbing; a stale lead is still open
N_STATES = N_TRANSIENT + 3

# Base rates per operational day, by stage (new, contacted, qualified, proposal, negotiation).
ADVANCE = np.array([1 / 6, 1 / 12, 1 / 16, 1 / 14, 1 / 16])  # engaged: to the next stage (negotiation: won)
LOSE = np.array([1 / 90, 1 / 75, 1 / 40, 1 / 25, 1 / 20])  # engaged: lost with a reason
GO_DORMANT = np.array([1 / 60, 1 / 100, 1 / 150, 1 / 180, 1 / 200])  # engaged: stops responding
# How much a salesperson's skill speeds each step: a good closer shows most at the end of the pipeline.
CLOSING_SKILL = np.array([0.2, 0.2, 0.3, 0.5, 1.0])
REVIVE = 1 / 50  # dormant: engages again
GIVE_UP = 1 / 40  # dormant: the salesperson closes it as lost (scaled by their diligence)
ABANDON = 1 / 300  # dormant: the salesperson stops working it, without closing it (divided by their diligence)

# Hour-of-day and day-of-week pace of business (UTC, a European working day), normalised below.
_HOURS = np.array([3, 2, 2, 2, 2, 3, 5, 30, 90, 100, 100, 100, 70, 95, 100, 100, 90, 60, 30, 20, 15, 10, 6, 4])
_WEEKDAYS = np.array([1.0, 1.0, 1.0, 1.0, 0.9, 0.08, 0.05])
_MONTHS = np.array([0.9, 1.0, 1.05, 1.0, 1.0, 1.05, 0.9, 0.55, 1.0, 1.05, 1.0, 0.85])
QUARTER_PUSH = 1.3  # last ten days of March, June, September
HOLIDAYS = 0.3  # from 22 December to 1 January


def pace(calendar_s: np.ndarray) -> np.ndarray:
    """Relative pace of business at calendar times (seconds since the epoch, UTC); averages about 1."""
    t = pd.to_datetime(np.asarray(calendar_s, dtype="int64"), unit="s")
    hourly = _HOURS[t.hour] / _HOURS.mean()
    weekly = _WEEKDAYS[t.day_of_week] / _WEEKDAYS.mean()
    month = t.month.to_numpy()
    day = t.day.to_numpy()
    seasonal = _MONTHS[month - 1].copy()
    seasonal[np.isin(month, (3, 6, 9)) & (day > 20)] *= QUARTER_PUSH
    seasonal[((month == 12) & (day >= 22)) | ((month == 1) & (day == 1))] *= HOLIDAYS
    return hourly * weekly * seasonal


@dataclass(frozen=True)
class BusinessClock:
    """Maps calendar seconds to operational days and back (piecewise linear on an hourly grid).

    Examples
    --------
    >>> clock = BusinessClock.build(pd.Timestamp("2024-01-01", tz="UTC"), days=30)
    >>> t = clock.start_s + 3 * 86_400
    >>> bool(abs(clock.to_calendar(clock.to_op(t)) - t) < 1e-3)
    True
    """

    start_s: int
    grid_s: np.ndarray
    op: np.ndarray

    @classmethod
    def build(cls, start: pd.Timestamp, days: int) -> BusinessClock:
        start_s = int(start.timestamp())
        grid = start_s + 3600 * np.arange(24 * days + 1, dtype=np.int64)
        mid = pace(grid[:-1] + 1800)
        op = np.concatenate([[0.0], np.cumsum(mid) / 24.0])
        return cls(start_s, grid.astype(float), op)

    def to_op(self, calendar_s: np.ndarray | float) -> np.ndarray:
        return np.interp(calendar_s, self.grid_s, self.op)

    def to_calendar(self, op_days: np.ndarray | float) -> np.ndarray:
        return np.interp(op_days, self.op, self.grid_s)


@dataclass(frozen=True, kw_only=True)
class LeadDrivers:
    """What sets each lead's transition rates: quality (attributes + latent interest), pace, rep factors."""

    quality: np.ndarray
    pace: np.ndarray  # the segment's speed (enterprise deals are slow)
    skill: np.ndarray  # the owner's skill (log scale)
    diligence: np.ndarray  # how quickly the owner closes dormant leads (and how rarely they abandon them)


def rate_matrix(d: LeadDrivers) -> np.ndarray:
    """Transition rates per operational day, shape (n_leads, N_TRANSIENT, N_STATES); the diagonal is zero."""
    n = len(d.quality)
    q, skill = d.quality[:, None], d.skill[:, None]
    speed = d.pace[:, None]
    advance = ADVANCE * speed * np.exp(0.45 * q + CLOSING_SKILL * skill)
    lose = LOSE * speed * np.exp(-0.35 * q - 0.5 * skill)
    dormant = GO_DORMANT * speed * np.exp(-0.45 * q)
    rates = np.zeros((n, N_TRANSIENT, N_STATES))
    stages = np.arange(N_STAGES)
    nxt = np.where(stages < N_STAGES - 1, stages + 1, WON)
    rates[:, stages, nxt] = advance
    rates[:, stages, LOST] = lose
    rates[:, stages, N_STAGES + stages] = dormant
    rates[:, N_STAGES + stages, stages] = (REVIVE * d.pace * np.exp(0.5 * d.quality))[:, None]
    rates[:, N_STAGES + stages, LOST] = (GIVE_UP * d.diligence)[:, None]
    rates[:, N_STAGES + stages, STALE] = (ABANDON / d.diligence)[:, None]
    return rates


@dataclass
class Paths:
    """Sampled hidden paths: one row per stay in a transient state, sorted by lead then time.

    Calendar times are whole seconds since the epoch (transition times are rounded up, so a stay that starts at
    second ``t`` is already in force at a cutoff ``t``, as an event stamped ``t`` is visible at ``t``).
    """

    lead: np.ndarray
    state: np.ndarray
    start_s: np.ndarray  # int64: the stay begins (the lead's creation or a transition)
    end_s: np.ndarray  # int64: the stay ends (a transition), or END_OPEN if it lasts past the end of the data
    start_op: np.ndarray
    end_op: np.ndarray  # operational time, clipped to the end of the data
    next_state: np.ndarray  # -1 when the stay lasts past the end of the data


END_OPEN = np.iinfo(np.int64).max


def sample_paths(
    rates: np.ndarray, created_s: np.ndarray, clock: BusinessClock, end_s: int, rng: np.random.Generator
) -> Paths:
    """Sample every lead's path through the chain: all leads at once, one transition per round."""
    n = len(created_s)
    end_op = float(clock.to_op(end_s))
    state = np.zeros(n, dtype=np.int64)
    now_op = clock.to_op(created_s.astype(float))
    now_s = created_s.astype(np.int64).copy()
    active = np.arange(n)
    parts: list[tuple[np.ndarray, ...]] = []
    while active.size:
        r = rates[active, state[active]]
        total = r.sum(axis=1)
        leave = now_op[active] + rng.exponential(1.0, active.size) / total
        pick = rng.random(active.size) * total
        nxt = np.minimum((np.cumsum(r, axis=1) < pick[:, None]).sum(axis=1), N_STATES - 1)
        censored = leave >= end_op
        nxt[censored] = -1
        leave_s = np.ceil(clock.to_calendar(np.minimum(leave, end_op))).astype(np.int64)
        leave_s = np.maximum(leave_s, now_s[active])
        leave_s[censored] = END_OPEN
        parts.append((active, state[active], now_s[active], leave_s, now_op[active], np.minimum(leave, end_op), nxt))
        moving = ~censored
        active, nxt, leave, leave_s = active[moving], nxt[moving], leave[moving], leave_s[moving]
        state[active], now_op[active], now_s[active] = nxt, leave, leave_s
        active = active[nxt < N_TRANSIENT]
    cols = [np.concatenate(c) for c in zip(*parts, strict=True)]
    order = np.lexsort((cols[2], cols[0]))  # stable: same-second stays keep their order
    return Paths(*(c[order] for c in cols))


def state_at(paths: Paths, lead: np.ndarray, t_s: np.ndarray) -> np.ndarray:
    """The hidden state of ``lead`` at calendar second ``t_s`` (a transition at exactly ``t_s`` included).

    Returns -1 where the lead does not exist yet, and WON, LOST or STALE where it has left the pipeline.
    """
    base = int(paths.start_s.min()) if len(paths.start_s) else 0
    key = (paths.lead.astype(np.int64) << 32) + (paths.start_s - base)
    query = (np.asarray(lead, dtype=np.int64) << 32) + (np.asarray(t_s, dtype=np.int64) - base)
    idx = np.searchsorted(key, query, side="right") - 1
    safe = np.maximum(idx, 0)
    valid = (idx >= 0) & (paths.lead[safe] == lead)
    out = np.where(valid, paths.state[safe], -1)
    return np.where(valid & (t_s >= paths.end_s[safe]), paths.next_state[safe], out)


def win_probability(
    rates: np.ndarray, lead: np.ndarray, state: np.ndarray, horizon_op: np.ndarray, sd: float = 8.0
) -> np.ndarray:
    """P(won within ``horizon_op`` operational days | hidden ``state``) for (lead, state) pairs, exactly.

    Uniformisation: with Λ the lead's largest exit rate and P = I + Q/Λ (won absorbing),
    P(won by u) = Σ_k Poisson(k; Λu) [P^k]_{state, won}. Each k costs one small matrix-vector product per lead;
    a pair stops once k is ``sd`` standard deviations past its Poisson mean (the tail left is below 1e-12).

    Examples
    --------
    >>> from leadscore.simulation.process import LeadDrivers, rate_matrix
    >>> one = np.ones(1)
    >>> q = rate_matrix(LeadDrivers(quality=0 * one, pace=one, skill=0 * one, diligence=one))
    >>> p = win_probability(q, np.array([0, 0]), np.array([0, 4]), np.array([90.0, 90.0]))
    >>> bool(0 < p[0] < p[1] < 1)
    True
    """
    lead, state = np.asarray(lead), np.asarray(state)
    horizon_op = np.broadcast_to(np.asarray(horizon_op, dtype=float), lead.shape)
    if (state >= N_TRANSIENT).any():  # stale: open in the CRM, never to be won
        out = np.zeros(len(state))
        live = state < N_TRANSIENT
        out[live] = win_probability(rates, lead[live], state[live], horizon_op[live], sd)
        return out
    used, pair_lead = np.unique(lead, return_inverse=True)
    rates = rates[used]
    exit_rate = rates.sum(axis=2)  # (n, N_TRANSIENT)
    lam = exit_rate.max(axis=1)
    mean = lam[pair_lead] * horizon_op
    last = np.ceil(mean + sd * np.sqrt(mean) + 10).astype(np.int64)
    # Order leads, then pairs, by how many terms they need: those still summing at step k form a prefix.
    lead_last = np.zeros(len(used), dtype=np.int64)
    np.maximum.at(lead_last, pair_lead, last)
    by_lead = np.argsort(-lead_last, kind="stable")
    rank = np.empty_like(by_lead)
    rank[by_lead] = np.arange(len(by_lead))
    rates, lam, lead_last, pair_lead = rates[by_lead], lam[by_lead], lead_last[by_lead], rank[pair_lead]
    exit_rate = exit_rate[by_lead]
    step = rates[:, :, :N_TRANSIENT] / lam[:, None, None]
    step[:, np.arange(N_TRANSIENT), np.arange(N_TRANSIENT)] += 1.0 - exit_rate / lam[:, None]
    to_won = rates[:, :, WON] / lam[:, None]
    by_pair = np.argsort(-last, kind="stable")
    pair_lead, state, mean, last = pair_lead[by_pair], np.asarray(state)[by_pair], mean[by_pair], last[by_pair]
    log_mean = np.log(np.maximum(mean, 1e-300))
    log_w = -mean  # log Poisson(k; mean), updated in place
    b = np.zeros((len(lam), N_TRANSIENT))  # b_k(x) = [P^k]_{x, won}; b_0 = 0 on transient states
    prob = np.zeros(len(mean))
    for k in range(1, int(last.max(initial=0)) + 1):
        n_pairs = int(np.searchsorted(-last, -k, side="right"))
        n_leads = int(np.searchsorted(-lead_last, -k, side="right"))
        b[:n_leads] = np.matmul(step[:n_leads], b[:n_leads, :, None])[:, :, 0] + to_won[:n_leads]
        log_w[:n_pairs] += log_mean[:n_pairs] - np.log(k)
        prob[:n_pairs] += np.exp(log_w[:n_pairs]) * b[pair_lead[:n_pairs], state[:n_pairs]]
    out = np.empty_like(prob)
    out[by_pair] = prob
    return out
