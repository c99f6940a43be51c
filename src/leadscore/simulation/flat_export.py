"""The simulated CRM as a flat lead export: one row per lead, a ``converted`` column, and the columns real exports
carry, the honest and the post-outcome ones.

Many CRMs export leads as one flat table, and ``leadscore train --table`` trains on such a table. Besides the lead's
attributes, this export holds three columns that real exports carry and that the leakage guard
(:mod:`leadscore.model.leakage`) must tell apart, because the simulator knows which is which:

- ``lead_status``: the status a salesperson keeps up to date by hand. It is written *after* the outcome is
  known ("closed" once the deal is won, "lost to competitor", "not interested" or "call back next week" once it
  is lost), reads "interested" or "call back next week" while the lead is being worked, and is blank for leads
  still early (open and never moved past the first stage). Salespeople are not diligent: some won leads keep
  "interested" and some are never given a status, some lost ones keep "interested". A post-outcome leak.
- ``lead_quality``: a grade A to D that the salesperson gives once the lead is closed, in hindsight (won leads
  mostly A or B, lost ones mostly C or D); blank while the lead is open. A post-outcome leak.
- ``fit_score``: a company-fit score from 0 to 100 that an enrichment service gives the lead when it is created,
  from what is known of the company then. The simulator draws it from the lead's hidden quality (the true
  chance of a win as the lead is created, with noise): strongly predictive, and honest, since nothing after
  the lead's creation goes into it.

``converted`` is "yes" for the leads won by the time of the export, "no" for the others (lost, or still open):
what a real export says. ``created_at`` orders the rows in time (``--time-column created_at``).

Examples
--------
>>> from leadscore.simulation.simulator import simulate
>>> table = flat_lead_table(simulate(n_leads=300, n_reps=3, months=6, seed=1))
>>> table.columns.tolist()[-4:]
['fit_score', 'lead_status', 'lead_quality', 'converted']
>>> sorted(table["lead_status"].dropna().unique())[:2]
['call back next week', 'closed']
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.simulation.process import LOST, N_STAGES, N_TRANSIENT, STALE, WON, state_at, win_probability

FIT_HORIZON_DAYS = 180  # the fit score reflects the chance of a win within this many days of creation
FIT_NOISE = 0.35  # noise on the fit score's log-odds scale (the enrichment service sees the company imperfectly)

# What a salesperson's status says, by what happened to the lead (shares; the rest of each row's mass is blank).
# Won: mostly "closed", but some keep the "interested" of the last call and some are never given a status.
WON_STATUS = {"closed": 0.55, "interested": 0.38}
# Lost, by the reason recorded with the loss; some keep their "interested".
LOST_STATUS = {
    "competitor": "lost to competitor",
    "timing": "call back next week",
    "price": "not interested",
    "no_budget": "not interested",
    "no_response": "not interested",
}
LOST_KEEPS_INTERESTED = 0.2
# Graded in hindsight once the lead is closed: the shares of A, B, C and D.
GRADES = ("A", "B", "C", "D")
WON_GRADES = (0.5, 0.35, 0.15, 0.0)
LOST_GRADES = (0.03, 0.12, 0.32, 0.53)


def flat_lead_table(sim, *, seed: int = 0) -> pd.DataFrame:
    """One row per lead as a CRM would export it at the end of the simulated period.

    Parameters
    ----------
    sim : SimulatedCrm
        The simulated CRM (:func:`leadscore.simulation.simulator.simulate`; not imported here, since the
        simulator imports this module for ``SimulatedCrm.flat_table``).
    seed : int, default=0
        Seeds the salespeople's bookkeeping and the fit score's noise.

    Returns
    -------
    DataFrame
        The lead attributes (``lead_id``, ``created_at``, ``owner_id``, ``source``, ``segment``,
        ``company_size``, ``country``, ``industry``, ``campaign``), then ``fit_score``, ``lead_status``,
        ``lead_quality`` and ``converted`` (see the module docstring).
    """
    rng = np.random.default_rng(seed)
    leads = sim.data.leads
    n = len(leads)
    export_s = int(sim.data.end.timestamp())
    state = state_at(sim.paths, np.arange(n), np.full(n, export_s, dtype=np.int64))
    won, lost = state == WON, state == LOST
    return leads.assign(
        fit_score=_fit_score(sim, rng),
        lead_status=_status(sim, state, rng),
        lead_quality=_grade(won, lost, rng),
        converted=np.where(won, "yes", "no"),
    )


def _fit_score(sim, rng: np.random.Generator) -> np.ndarray:
    """0-100: the true chance of a win within FIT_HORIZON_DAYS of creation, on the log-odds scale, with noise."""
    created = sim.leads.created_s
    everyone = np.arange(len(created))
    horizon = sim.clock.to_op(created + FIT_HORIZON_DAYS * 86_400.0) - sim.clock.to_op(created.astype(float))
    p = np.clip(win_probability(sim.rates, everyone, np.zeros(len(created), dtype=np.int64), horizon), 1e-6, 1 - 1e-6)
    log_odds = np.log(p / (1 - p))
    z = (log_odds - log_odds.mean()) / log_odds.std() + FIT_NOISE * rng.standard_normal(len(created))
    return np.clip(np.round(50 + 15 * z), 0, 100).astype(np.int64)


def _status(sim, state: np.ndarray, rng: np.random.Generator) -> pd.Series:
    """The rep-maintained status at the export (blank: not filled in)."""
    n = len(state)
    status = pd.Series(pd.NA, index=range(n), dtype="object")
    draw = rng.random(n)
    won = state == WON
    status[won & (draw < WON_STATUS["closed"])] = "closed"
    status[won & (draw >= WON_STATUS["closed"]) & (draw < sum(WON_STATUS.values()))] = "interested"
    lost = state == LOST
    events = sim.data.events
    reasons = events.loc[events["type"] == "lost"].set_index("lead_id")["subtype"]
    reason = sim.data.leads["lead_id"].map(reasons).map(LOST_STATUS).fillna("not interested")
    status[lost] = np.where(draw[lost] < LOST_KEEPS_INTERESTED, "interested", reason[lost])
    # Open leads: blank while early (never past the first stage), then what the last conversation said.
    engaged = (state >= 0) & (state < N_STAGES)
    dormant = (state >= N_STAGES) & (state < N_TRANSIENT)
    early = np.isin(state, (0, N_STAGES))
    status[engaged & ~early] = "interested"
    status[dormant & ~early] = "call back next week"
    status[(state == STALE) & (draw < 0.5)] = "not interested"
    return status


def _grade(won: np.ndarray, lost: np.ndarray, rng: np.random.Generator) -> pd.Series:
    """A to D, given in hindsight once the lead is closed; blank while it is open."""
    n = len(won)
    cumulative = np.cumsum(np.where(won[:, None], WON_GRADES, LOST_GRADES), axis=1)
    code = np.minimum((cumulative < rng.random(n)[:, None]).sum(axis=1), len(GRADES) - 1)
    grade = pd.Series(np.array(GRADES, dtype=object)[code], dtype="object")
    return grade.where(won | lost, pd.NA)
