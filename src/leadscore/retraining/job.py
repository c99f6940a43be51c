"""One retraining: a challenger trained on the latest data, judged by the gate and the retraining rules.

:func:`retrain` is the work itself (data in, a registered version and its decision out). :func:`run_due` is what
a schedule calls: it works out whether a retraining is due (a schedule slot not done yet, or a drift alert after
the cool-down), takes the store's lease (:mod:`leadscore.retraining.lock`) so that no other service retrains at
the same time or for the same slot, retrains, and records the slot as done with its outcome.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

import pandas as pd
from sqlalchemy.engine import Engine

from leadscore.data.contracts import CrmData
from leadscore.registry.gate import GateDecision
from leadscore.retraining import lock
from leadscore.retraining.rules import DriftEvidence, Evidence, RetrainPolicy, decide

log = logging.getLogger("leadscore.retraining")

LEASE_NAME = "retrain"
DEFAULT_EVERY_DAYS = 15.0
DEFAULT_DRIFT_COOLDOWN_DAYS = 7.0
#: What a scheduled retraining trains by default: the regularised logistic regression alone, so that the champion
#: changes with the data, not by flipping between model families every fortnight (``leadscore train`` compares
#: gradient boosting, naive Bayes and a blend too; ``--candidates`` gives a retraining the same choice). In the
#: simulated year on seed 7 (README, "Scheduled retraining") it kept the champion within 0.0165 of the best
#: version, where logistic + gradient boosting switched family 10 times and fell 0.0215 short once, for a 0.005
#: higher mean AUC; on seed 11 one bad fit fell 0.0875 short for a fortnight (the README says why).
DEFAULT_CANDIDATES = ("logistic",)

#: Judges drift for the champion on the data: the report's alert and reasons, or None when it cannot say.
DriftCheck = Callable[[CrmData, pd.Timestamp], DriftEvidence | None]


@dataclass
class RetrainOutcome:
    """What a retraining (or a tick of the schedule) did, and the evidence it decided on."""

    ran: bool
    trigger: str
    slot: str
    skipped: str = ""
    version: str = ""
    promoted: bool = False
    rule: str = ""
    reason: str = ""
    evidence: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """The outcome as JSON-safe values (for the CLI, the lease's record and logs)."""
        return asdict(self)


def schedule_slot(now: object, every_days: float) -> str:
    """The schedule slot ``now`` falls in: periods of ``every_days`` counted from 1970-01-01 UTC, named by the
    period's first moment, so that every service on a store agrees on the slot without talking.

    Examples
    --------
    >>> schedule_slot("2026-12-05T10:00Z", 15)
    '15d@2026-12-03T00:00:00+00:00'
    >>> schedule_slot("2026-12-17T23:59Z", 15) == schedule_slot("2026-12-03T00:00Z", 15)
    True
    """
    t = pd.Timestamp(now)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    period = pd.Timedelta(days=every_days)
    start = pd.Timestamp(0, tz="UTC") + period * math.floor((t - pd.Timestamp(0, tz="UTC")) / period)
    return f"{every_days:g}d@{start.isoformat()}"


def retrain(
    data: CrmData,
    *,
    tracking_uri: str | None = None,
    policy: RetrainPolicy | None = None,
    drift: DriftEvidence | None = None,
    trigger: str = "manual",
    horizon_days: int = 90,
    candidates=DEFAULT_CANDIDATES,
    calibration: str = "sigmoid",
    validation_fraction: float = 0.2,
    still_allowed: Callable[[], bool] | None = None,
    progress: Callable[[str], None] | None = None,
):
    """Train a challenger on ``data``, register it and let the gate and the rules decide on ``champion``.

    ``still_allowed`` is asked just before the decision is recorded (the lease still held); when it says no the
    challenger stays a challenger (rule ``lease_lost``). Returns the :class:`~leadscore.registry.Registered`.
    """
    from leadscore.model.attribute_selection import AttributeSelection
    from leadscore.registry.workflow import crm_training_data, train_and_register

    policy = policy or RetrainPolicy()
    evidence = Evidence(drift=drift, trigger=trigger)

    def judge(gate: GateDecision, result, champion) -> GateDecision:
        decision = decide(gate, result, champion, policy, evidence)
        if decision.promote and still_allowed is not None and not still_allowed():
            reason = f"the retraining lost its lease before the decision; not promoted ({decision.reason})"
            return GateDecision(False, reason, decision.comparison, "lease_lost", decision.evidence)
        return decision

    if progress:
        progress(f"building snapshots and point-in-time features up to {data.end}")
    labelled, vocabulary = crm_training_data(
        data, horizon_days=horizon_days, attributes=AttributeSelection(), validation_fraction=validation_fraction
    )
    _, registered = train_and_register(
        labelled,
        extra_types=vocabulary,
        tracking_uri=tracking_uri,
        progress=progress,
        policy=judge,
        candidates=list(candidates),
        calibration=calibration,
        validation_fraction=validation_fraction,
    )
    return registered


def run_due(
    engine: Engine,
    load_data: Callable[[], CrmData],
    *,
    now: object | None = None,
    every_days: float = DEFAULT_EVERY_DAYS,
    drift_check: DriftCheck | None = None,
    drift_cooldown_days: float = DEFAULT_DRIFT_COOLDOWN_DAYS,
    force: bool = False,
    lease_ttl_s: float = lock.DEFAULT_TTL_SECONDS,
    **retrain_options,
) -> RetrainOutcome:
    """Retrain if due, under the store's lease: the schedule's tick (and ``leadscore retrain`` on a store).

    Due means: the current slot of the ``every_days`` schedule has not been done by any service on this store,
    or (``drift_check`` given) the drift report alerts and the last retraining finished at least
    ``drift_cooldown_days`` ago. ``force`` retrains even so (still one service at a time). ``now`` is the
    schedule's clock (default the wall clock; a replayed history passes its own).
    """
    when = pd.Timestamp(now) if now is not None else pd.Timestamp(datetime.now(UTC))
    when = when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")
    slot = schedule_slot(when, every_days)
    last = lock.last_done(engine, LEASE_NAME) or {}
    slot_done = last.get("done_slot") == slot
    trigger, data, drift = ("forced" if force else "schedule"), None, None
    cooldown = timedelta(days=drift_cooldown_days)
    if slot_done and not force:
        done_at = last.get("done_at")
        cooled = done_at is None or done_at <= when.to_pydatetime() - cooldown
        if drift_check is None or not cooled:
            why = "this schedule slot is done" + ("" if drift_check is None else " and the drift cool-down runs")
            return RetrainOutcome(False, "schedule", slot, skipped=why)
        data = load_data()
        drift = drift_check(data, when)
        if drift is None or not drift.alert:
            return RetrainOutcome(False, "drift", slot, skipped="this schedule slot is done and no drift alert")
        trigger = "drift"
    redo = None if trigger == "schedule" else (timedelta(0) if force else cooldown)
    lease = lock.acquire(engine, LEASE_NAME, slot, ttl_s=lease_ttl_s, now=when.to_pydatetime(), redo_after=redo)
    if lease is None:
        return RetrainOutcome(False, trigger, slot, skipped="another service holds the lease or did this slot")
    with lease:
        try:
            data = data if data is not None else load_data()
            if drift is None and drift_check is not None:
                drift = drift_check(data, when)
            registered = retrain(data, drift=drift, trigger=trigger, still_allowed=lease.still_held, **retrain_options)
        except Exception:
            log.exception("retraining for slot %s failed; the slot stays open for the next tick", slot)
            lease.release()
            raise
        outcome = RetrainOutcome(
            True,
            trigger,
            slot,
            version=registered.version,
            promoted=registered.promoted,
            rule=registered.rule,
            reason=registered.reason,
            evidence=registered.evidence,
        )
        lease.finish(_json_safe(outcome.as_dict()), done_at=when.to_pydatetime())
    log.info("retraining %s (%s): version %s %s", slot, trigger, outcome.version, outcome.rule)
    return outcome


def _json_safe(value):
    """Figures as JSON values (numpy scalars to floats, NaN to None) for the lease's record."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, bool | str) or value is None:
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return None if math.isnan(number) else (int(number) if isinstance(value, int) else number)
