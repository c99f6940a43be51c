"""What the CRM records of the hidden sales process: emails, calls, meetings, web visits, stage changes, closings.

Activity is *emitted* by the hidden state (stage, engaged or dormant) and the lead's latent interest, never the
other way round: each activity is a Poisson process on the business clock whose rate is set by the state of
the stay it falls in, and whatever follows from it (an email opened, a meeting held or cancelled) is decided by
the state at the moment it happens. So what is visible at a cutoff depends on the past only, and the hidden
state at the cutoff carries everything there is to know about the future: the truth probabilities are the
best possible predictor. Everything here is vectorised over all stays of all leads at once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from leadscore.data.contracts import STAGES
from leadscore.simulation.process import LOST, N_STAGES, N_TRANSIENT, WON, BusinessClock, Paths, state_at
from leadscore.simulation.types import LeadTable, Team

TYPES = (
    "stage_changed",
    "form_submitted",
    "web_visit",
    "email_sent",
    "email_opened",
    "email_replied",
    "call",
    "meeting_scheduled",
    "meeting_rejected",
    "meeting_cancelled",
    "meeting_held",
    "won",
    "lost",
)
T = {name: i for i, name in enumerate(TYPES)}
SUBTYPES = ("cold", "follow_up", "discovery", "no_show", "price", "competitor", "no_budget", "no_response", "timing")
S = {name: i for i, name in enumerate(SUBTYPES)}
INBOUND_SOURCES = ("web", "paid_ads")

# Rates per operational day by stage (new, contacted, qualified, proposal, negotiation), for an engaged lead.
EMAILS = np.array([0.30, 0.20, 0.18, 0.20, 0.22])  # sent by the salesperson (x their activity)
DORMANT_ACTIVITY = 0.4  # salespeople sense a lead going cold: fewer emails and calls to a dormant lead
WEB_VISITS = np.array([0.15, 0.13, 0.15, 0.18, 0.15])  # x (1 + exp(interest)) / 2; a dormant lead: 2 % of it
FORMS = 0.006  # demo requests, pricing page forms: x exp(0.7 interest), engaged leads only
COLD_CALLS = 0.10  # stage new, x activity (x DORMANT_ACTIVITY for a dormant lead, as emails and calls)
FOLLOW_UP_CALLS = np.array([0.0, 0.05, 0.05, 0.06, 0.07])  # x activity
MEETINGS = np.array([0.0, 0.03, 0.05, 0.05, 0.06])  # scheduled, x exp(0.7 interest); dormant: 0.003
# Why deals are lost, by the stage they are lost at (engaged leads); dormant leads are mostly no_response.
LOST_REASONS = ("price", "competitor", "no_budget", "no_response", "timing")
REASON_SHARES = np.array(
    [
        [0.05, 0.10, 0.35, 0.15, 0.35],
        [0.10, 0.20, 0.30, 0.10, 0.30],
        [0.25, 0.30, 0.25, 0.00, 0.20],
        [0.40, 0.35, 0.10, 0.00, 0.15],
        [0.45, 0.40, 0.05, 0.00, 0.10],
    ]
)


def labels(codes: np.ndarray, names) -> pd.Series:
    """A string column from integer codes into ``names`` (-1: missing), built in Arrow without Python objects."""
    codes = np.asarray(codes)
    indices = pa.array(codes, mask=codes < 0, type=pa.int32())
    dictionary = pa.array([str(n) for n in names], type=pa.large_string())
    return pd.Series(pd.array(pa.DictionaryArray.from_arrays(indices, dictionary).cast(pa.large_string()), dtype="str"))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class _Events:
    """Accumulates events as column arrays; codes index TYPES, SUBTYPES, STAGES and the team (-1: none)."""

    def __init__(self) -> None:
        self.parts: list[dict[str, np.ndarray]] = []

    def add(self, lead, at, kind, *, rep=None, duration=None, scheduled=None, stage=None, amount=None, subtype=None):
        n = len(lead)

        def full(value, fill, dtype):
            return np.full(n, fill, dtype=dtype) if value is None else np.broadcast_to(value, n).astype(dtype)

        self.parts.append(
            {
                "lead": np.asarray(lead, dtype=np.int64),
                "at": np.asarray(at, dtype=np.int64),
                "type": full(kind, -1, np.int64),
                "rep": full(rep, -1, np.int64),
                "duration": full(duration, np.nan, float),
                "scheduled": full(scheduled, -1, np.int64),
                "stage": full(stage, -1, np.int64),
                "amount": full(amount, np.nan, float),
                "subtype": full(subtype, -1, np.int64),
            }
        )

    def columns(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate([p[k] for p in self.parts]) for k in self.parts[0]}


def _poisson_times(rate: np.ndarray, paths: Paths, clock: BusinessClock, rng: np.random.Generator):
    """Times of a Poisson process with ``rate`` per operational day during each stay: (stay index, second)."""
    count = rng.poisson(rate * (paths.end_op - paths.start_op))
    stay = np.repeat(np.arange(len(count)), count)
    op = paths.start_op[stay] + rng.random(stay.size) * (paths.end_op - paths.start_op)[stay]
    return stay, np.ceil(clock.to_calendar(op)).astype(np.int64)


def _business_slot(t_s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A meeting slot: on the day of ``t_s`` or after, at a full hour from 9:00 to 16:00, Monday to Friday."""
    day = t_s // 86_400
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    day = day + np.where(weekday == 5, 2, np.where(weekday == 6, 1, 0))
    return day * 86_400 + rng.integers(9, 17, len(t_s)) * 3600


def emit_events(
    leads: LeadTable,
    team: Team,
    paths: Paths,
    clock: BusinessClock,
    end_s: int,
    lead_ids: np.ndarray,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """All events of all leads, as the validated events contract table, with ids ``ev_0000001``, ... in time order."""
    ev = _Events()
    _pipeline_events(ev, leads, paths, rng)
    # Activity comes from stays in transient states only: a stale lead emits nothing, as nobody works it.
    interest = leads.interest[paths.lead]
    stage = paths.state % N_STAGES
    engaged = paths.state < N_STAGES
    owner = leads.owner[paths.lead]
    activity = team.activity[owner]

    # Emails: sent by the owner; opened and replied according to the state when they were sent.
    rate = EMAILS[stage] * activity * np.where(engaged, 1.0, DORMANT_ACTIVITY)
    stay, at = _poisson_times(rate, paths, clock, rng)
    lead = paths.lead[stay]
    ev.add(lead, at, T["email_sent"], rep=owner[stay])
    z, on = interest[stay], engaged[stay]
    opened = rng.random(stay.size) < np.where(on, _sigmoid(1.4 + 0.6 * z), 0.02)
    open_at = at + np.ceil(3600 * rng.lognormal(np.log(2.0), 1.0, stay.size)).astype(np.int64)
    ev.add(lead[opened], open_at[opened], T["email_opened"], rep=owner[stay][opened])
    p_reply = np.where(on, _sigmoid(-1.2 + 1.4 * z + 0.25 * stage[stay]), 0.01)
    replied = opened & (rng.random(stay.size) < p_reply)
    reply_at = open_at + np.ceil(3600 * rng.lognormal(np.log(4.0), 1.0, stay.size)).astype(np.int64)
    ev.add(lead[replied], reply_at[replied], T["email_replied"], rep=owner[stay][replied])

    # Web visits and forms: the prospect's own doing, so they reveal interest most directly.
    rate = WEB_VISITS[stage] * (0.5 + 0.5 * np.exp(interest)) * np.where(engaged, 1.0, 0.02)
    stay, at = _poisson_times(rate, paths, clock, rng)
    ev.add(paths.lead[stay], at, T["web_visit"])
    # The first visit session, around the lead's creation: the more interested, the more pages seen.
    n = len(leads.created_s)
    pages = rng.poisson(2.0 * np.exp(0.9 * leads.interest))
    who = np.repeat(np.arange(n), pages)
    ev.add(who, leads.created_s[who] + np.ceil(rng.exponential(3 * 3600, who.size)).astype(np.int64), T["web_visit"])
    stay, at = _poisson_times(FORMS * np.exp(0.7 * interest) * engaged, paths, clock, rng)
    ev.add(paths.lead[stay], at, T["form_submitted"])

    # Calls: cold calls to new leads, follow-ups later; connected calls last longer with interested prospects.
    for kind, rate in (("cold", COLD_CALLS * (stage == 0)), ("follow_up", FOLLOW_UP_CALLS[stage])):
        stay, at = _poisson_times(rate * activity * np.where(engaged, 1.0, DORMANT_ACTIVITY), paths, clock, rng)
        z, on = interest[stay], engaged[stay]
        base = 0.4 * (kind == "follow_up")
        connected = rng.random(stay.size) < np.where(on, _sigmoid(base - 0.3 + 0.6 * z), 0.05)
        talk = rng.lognormal(np.log(150.0 if kind == "cold" else 420.0) + 0.4 * z, 0.4)
        duration = np.where(connected, np.round(talk), rng.integers(5, 40, stay.size))
        ev.add(paths.lead[stay], at, T["call"], rep=owner[stay], duration=duration, subtype=S[kind])

    _meetings(ev, paths, interest, engaged, stage, owner, clock, rng)
    return _frame(ev, leads, paths, end_s, lead_ids, team)


def _pipeline_events(ev: _Events, leads: LeadTable, paths: Paths, rng: np.random.Generator) -> None:
    """Creation (stage new, the inbound form), stage changes, wins with amounts, losses with reasons."""
    n = len(leads.created_s)
    everyone = np.arange(n)
    ev.add(everyone, leads.created_s, T["stage_changed"], rep=leads.owner, stage=0)
    inbound = np.isin(leads.source_name, INBOUND_SOURCES)
    ev.add(everyone[inbound], leads.created_s[inbound], T["form_submitted"])

    moved = paths.next_state >= 0
    lead, src, dst, at = paths.lead[moved], paths.state[moved], paths.next_state[moved], paths.end_s[moved]
    owner, value = leads.owner[lead], leads.deal_value[lead]
    advance = (dst < N_TRANSIENT) & (dst % N_STAGES > src % N_STAGES)
    new_stage = dst % N_STAGES
    quote = np.where(new_stage >= 3, value * rng.lognormal(0.0, 0.12, lead.size), np.nan)
    ev.add(
        lead[advance],
        at[advance],
        T["stage_changed"],
        rep=owner[advance],
        stage=new_stage[advance],
        amount=np.round(quote[advance], -2),
    )
    # First contact: the call that reached the prospect (a cold call for outbound leads).
    first = advance & (new_stage == 1)
    outbound = leads.source_name[lead] == "outbound"
    subtype = np.where(outbound, S["cold"], S["discovery"])[first]
    talk = np.round(rng.lognormal(np.log(360.0), 0.5, lead.size))[first]
    ev.add(lead[first], at[first], T["call"], rep=owner[first], duration=talk, subtype=subtype)
    # A dormant lead that wakes up shows it: a visit to the site.
    revive = (src >= N_STAGES) & (dst < N_STAGES)
    ev.add(lead[revive], at[revive], T["web_visit"])

    won = dst == WON
    amount = np.round(value[won] * rng.uniform(0.85, 1.0, won.sum()), -2)
    ev.add(lead[won], at[won], T["won"], rep=owner[won], amount=amount)
    lost = dst == LOST
    shares = np.where(
        (src[lost] >= N_STAGES)[:, None], [[0.0, 0.05, 0.05, 0.8, 0.1]], REASON_SHARES[src[lost] % N_STAGES]
    )
    reason = (np.cumsum(shares, axis=1) < rng.random(lost.sum())[:, None]).sum(axis=1)
    reason = np.minimum(reason, len(LOST_REASONS) - 1)
    codes = np.array([S[r] for r in LOST_REASONS])[reason]
    ev.add(lead[lost], at[lost], T["lost"], rep=owner[lost], subtype=codes)


def _meetings(ev, paths, interest, engaged, stage, owner, clock, rng) -> None:
    """Meetings: scheduled ahead; then rejected, cancelled, missed or held, each decided by the state then."""
    rate = np.where(engaged, MEETINGS[stage] * np.exp(0.7 * interest), 0.003 * (stage > 0))
    stay, at = _poisson_times(rate, paths, clock, rng)
    lead, rep, z = paths.lead[stay], owner[stay], interest[stay]
    slot = _business_slot(at + np.ceil(86_400 * (1 + rng.exponential(3.0, stay.size))).astype(np.int64), rng)
    ev.add(lead, at, T["meeting_scheduled"], rep=rep, scheduled=slot)
    # Rejected within hours, more often by an uninterested or dormant prospect.
    rejected = rng.random(stay.size) < np.where(engaged[stay], _sigmoid(-2.4 - 0.6 * z), 0.4)
    reject_at = np.minimum(at + np.ceil(rng.exponential(6 * 3600, stay.size)).astype(np.int64), slot - 1)
    ev.add(lead[rejected], reject_at[rejected], T["meeting_rejected"], rep=rep[rejected], scheduled=slot[rejected])
    # Cancelled some time before the slot, mostly when the prospect has gone quiet by then.
    cancel_at = at + np.floor(rng.random(stay.size) * (slot - at)).astype(np.int64)
    then = state_at(paths, lead, cancel_at)
    p_cancel = np.where(then < N_STAGES, 0.06, np.where(then < N_TRANSIENT, 0.5, 0.0))
    cancelled = ~rejected & (rng.random(stay.size) < p_cancel)
    ev.add(lead[cancelled], cancel_at[cancelled], T["meeting_cancelled"], rep=rep[cancelled], scheduled=slot[cancelled])
    # At the slot: held if the prospect is engaged, a no-show if dormant (nothing if the deal has closed).
    left = ~rejected & ~cancelled
    then = state_at(paths, lead[left], slot[left])
    held = then < N_STAGES
    no_show = (then >= N_STAGES) & (then < N_TRANSIENT)
    l_lead, l_rep, l_slot = lead[left], rep[left], slot[left]
    length = np.round(60 * rng.choice([30, 45, 60], held.sum()) * rng.lognormal(0, 0.15, held.sum()))
    ev.add(l_lead[held], l_slot[held], T["meeting_held"], rep=l_rep[held], duration=length, scheduled=l_slot[held])
    ev.add(
        l_lead[no_show],
        l_slot[no_show],
        T["meeting_cancelled"],
        rep=l_rep[no_show],
        scheduled=l_slot[no_show],
        subtype=S["no_show"],
    )


def _frame(ev: _Events, leads, paths: Paths, end_s: int, lead_ids: np.ndarray, team) -> pd.DataFrame:
    """Drop what falls after the lead closed or after the end of the data; sort, number and type the columns."""
    c = ev.columns()
    closing = np.isin(paths.next_state, (WON, LOST))
    close_s = np.full(len(leads.created_s), np.iinfo(np.int64).max)
    close_s[paths.lead[closing]] = paths.end_s[closing]
    kept = np.flatnonzero((c["at"] < end_s) & (c["at"] <= close_s[c["lead"]]))
    kept = kept[np.lexsort((c["type"][kept], c["lead"][kept], c["at"][kept]))]
    c = {k: v[kept] for k, v in c.items()}
    n = len(kept)
    width = max(7, len(str(n)))

    def stamp(seconds: np.ndarray) -> pd.Series:
        return pd.Series(pd.to_datetime(seconds, unit="s", utc=True).as_unit("ns"))

    scheduled = stamp(np.where(c["scheduled"] >= 0, c["scheduled"], 0))
    scheduled[c["scheduled"] < 0] = pd.NaT
    return pd.DataFrame(
        {
            "event_id": "ev_" + pd.Series(np.arange(1, n + 1)).astype("str").str.zfill(width),
            "lead_id": labels(c["lead"], lead_ids),
            "at": stamp(c["at"]),
            "type": labels(c["type"], TYPES),
            "rep_id": labels(c["rep"], team.rep_id),
            "duration_s": c["duration"],
            "scheduled_for": scheduled,
            "stage": labels(c["stage"], STAGES),
            "amount": c["amount"],
            "subtype": labels(c["subtype"], SUBTYPES),
        }
    )
