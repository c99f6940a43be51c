"""The promotion rules of a retraining: the gate as it is, then a maximum champion age and drift.

A retrained challenger first meets the promotion gate (:func:`leadscore.registry.gate.compare`: no worse log loss
and ROC AUC than the champion's on the same newest holdout, within tolerances). When the gate refuses it, two rules
may still promote it, each only if it clears the **quality bar**: a ROC AUC of at least ``min_auc_ratio`` times
the champion's on that same holdout (and a trained, not cold-start, model):

- ``champion_age``: the champion's training data ends more than ``max_champion_age_days`` before the
  challenger's (the age of what the champion knows, in data time, so a replayed or simulated history ages the
  same way a live one does). Dynamics 365 publishes a model at least 95 % as accurate as the active one, or when
  the active one is over three months old; our bar is on ROC AUC, which moves less than accuracy, so the default
  ratio is stricter (0.98).
- ``drift``: the drift report (:mod:`leadscore.monitoring.drift`) raised an alert: the population the champion
  learned from has moved, so a model of the newer data that is nearly as good replaces it.

Otherwise the champion stays (``kept``). Each decision names its rule and carries its figures, which the gate
records on the version (``registry.decisions``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from leadscore.registry.card import ModelCard
from leadscore.registry.gate import GateDecision

DEFAULT_MAX_CHAMPION_AGE_DAYS = 90.0
DEFAULT_MIN_AUC_RATIO = 0.98


@dataclass(frozen=True)
class DriftEvidence:
    """What the drift report said, as the rules use it: whether it alerted, and why (for the record)."""

    alert: bool
    reasons: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        """The evidence as JSON-safe values."""
        return {"drift_alert": self.alert, "drift_reasons": list(self.reasons)[:20]}


@dataclass(frozen=True)
class RetrainPolicy:
    """The knobs of the rules (``LEADSCORE_RETRAIN_*`` settings, ``leadscore retrain`` flags).

    ``max_champion_age_days`` None never promotes on age; ``promote_on_drift`` False lets drift only start a
    retraining, not overrule the gate.
    """

    max_champion_age_days: float | None = DEFAULT_MAX_CHAMPION_AGE_DAYS
    min_auc_ratio: float = DEFAULT_MIN_AUC_RATIO
    promote_on_drift: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.min_auc_ratio <= 1:
            raise ValueError(f"min_auc_ratio must be in (0, 1], not {self.min_auc_ratio}")
        if self.max_champion_age_days is not None and self.max_champion_age_days <= 0:
            raise ValueError(f"max_champion_age_days must be positive, not {self.max_champion_age_days}")


@dataclass(frozen=True)
class Evidence:
    """What a retraining knows beyond the gate's comparison: the drift report, if one was made."""

    drift: DriftEvidence | None = None
    trigger: str = "schedule"
    extra: dict[str, object] = field(default_factory=dict)


def champion_age_days(result, champion: ModelCard | None) -> float | None:
    """How much newer the challenger's data is than the champion's (days between their last label times), or
    None when either has no absolute time (a flat table in row order)."""
    if champion is None or champion.trained_until is None:
        return None
    data = result.data
    if data.time_kind == "row order" or len(data.times) == 0:
        return None
    return float(data.times.max() + data.horizon) - float(champion.trained_until)


def decide(
    gate: GateDecision, result, champion: ModelCard | None, policy: RetrainPolicy, evidence: Evidence
) -> GateDecision:
    """The final decision on a retrained challenger: the gate's, unless the age or drift rule overrules it.

    Examples
    --------
    >>> refused = GateDecision(False, "ROC AUC lower", {"challenger_roc_auc": 0.79, "champion_roc_auc": 0.80})
    >>> class Card: cold_start, trained_until = False, 100.0
    >>> class Data: time_kind, times, horizon = "cutoff", __import__("numpy").array([150.0]), 90.0
    >>> class Result: cold_start, data = False, Data
    >>> d = decide(refused, Result, Card, RetrainPolicy(max_champion_age_days=90), Evidence())
    >>> d.promote, d.rule, d.evidence["champion_age_days"], d.evidence["auc_ratio"]
    (True, 'champion_age', 140.0, 0.9875)
    >>> decide(refused, Result, Card, RetrainPolicy(max_champion_age_days=200), Evidence()).rule
    'kept'
    """
    age = champion_age_days(result, champion)
    figures: dict[str, object] = {
        "trigger": evidence.trigger,
        "champion_age_days": None if age is None else round(age, 3),
        "max_champion_age_days": policy.max_champion_age_days,
        "min_auc_ratio": policy.min_auc_ratio,
        **(evidence.drift.as_dict() if evidence.drift is not None else {"drift_alert": None}),
        **evidence.extra,
    }
    new_auc = gate.comparison.get("challenger_roc_auc")
    old_auc = gate.comparison.get("champion_roc_auc")
    ratio = None if new_auc is None or not old_auc else float(new_auc) / float(old_auc)
    figures["auc_ratio"] = None if ratio is None else round(ratio, 6)
    merged = {**gate.evidence, **figures}
    if gate.promote or champion is None:
        return replace(gate, evidence=merged)
    bar = ratio is not None and ratio >= policy.min_auc_ratio and not result.cold_start
    bar_text = (
        f"ROC AUC {new_auc:.4f} is {ratio:.1%} of the champion's {old_auc:.4f} (bar {policy.min_auc_ratio:.0%})"
        if ratio is not None
        else "no ROC AUC comparison on a common holdout"
    )
    old = policy.max_champion_age_days is not None and age is not None and age > policy.max_champion_age_days
    if bar and old:
        reason = f"champion's data is {age:.0f} days older (limit {policy.max_champion_age_days:g}); {bar_text}"
        return GateDecision(True, f"{reason}; the gate said: {gate.reason}", gate.comparison, "champion_age", merged)
    drifted = evidence.drift is not None and evidence.drift.alert
    if bar and drifted and policy.promote_on_drift:
        why = "; ".join(evidence.drift.reasons[:3]) or "drift alert"
        reason = f"drift over threshold ({why}); {bar_text}"
        return GateDecision(True, f"{reason}; the gate said: {gate.reason}", gate.comparison, "drift", merged)
    return GateDecision(False, f"kept the champion: {gate.reason}", gate.comparison, "kept", merged)


def policy_for(policy: RetrainPolicy, evidence: Evidence):
    """The rules as a :data:`leadscore.registry.gate.Policy` for :func:`leadscore.registry.register`."""

    def apply(gate: GateDecision, result, champion: ModelCard | None) -> GateDecision:
        return decide(gate, result, champion, policy, evidence)

    return apply
