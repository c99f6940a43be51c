"""The promotion gate: ``challenger`` becomes ``champion`` only by beating it on the same recent holdout.

On the newest holdout (the validation period of the run that produced it) the challenger's log loss must be no
worse than the champion's plus :data:`LOG_LOSS_TOLERANCE` and its ROC AUC no lower than the champion's minus
:data:`AUC_TOLERANCE`. The champion is judged as deployed when it was trained only on data before that holdout;
otherwise its recipe (the same pipeline and settings, cloned) is refitted on the challenger's training part, so
neither side has seen the holdout. :func:`promote` and :func:`rollback` are for people; the registered model's
``champion_history`` tag remembers the order of champions.

:func:`register` takes an optional ``policy`` (the retraining rules, :mod:`leadscore.retraining.rules`) that may
overrule the verdict (a champion too old, a drifted population); every verdict is recorded on the version with the
rule that decided it (``gate_rule``) and its figures (``gate_evidence``, JSON), read back by :func:`decisions`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from sklearn.base import clone

from leadscore.model.metrics import evaluate
from leadscore.model.threads import limited_threads
from leadscore.registry.card import ModelCard, recipe_hash
from leadscore.registry.loading import load_version
from leadscore.registry.store import CHAMPION, HISTORY_TAG, MODEL_NAME, connect, resolve_version
from leadscore.registry.tracking import Registered, log_training

# The gate: log loss may be worse by at most this much (absolute), ROC AUC lower by at most this much.
LOG_LOSS_TOLERANCE = 0.001
AUC_TOLERANCE = 0.005


def _history(client) -> list[str]:
    tags = client.get_registered_model(MODEL_NAME).tags
    return [str(v) for v in json.loads(tags.get(HISTORY_TAG, "[]"))]


def _set_champion(client, version: str, reason: str) -> None:
    history = _history(client)
    try:
        current = str(client.get_model_version_by_alias(MODEL_NAME, CHAMPION).version)
    except Exception:
        current = None
    if current is not None and (not history or history[-1] != current):
        history.append(current)  # the alias was moved outside leadscore: keep the record straight
    if not history or history[-1] != str(version):
        history.append(str(version))
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, str(version))
    client.set_registered_model_tag(MODEL_NAME, HISTORY_TAG, json.dumps(history))
    client.set_model_version_tag(MODEL_NAME, str(version), "promotion", reason[:4900])


@dataclass
class GateDecision:
    """Whether the challenger beats the champion on the newest holdout, why, and the figures.

    ``rule`` names the rule that decided (``gate`` for this module's comparison, ``first`` when there was no
    champion; a policy names its own); ``evidence`` holds the figures beyond ``comparison`` it decided on.
    """

    promote: bool
    reason: str
    comparison: dict[str, float] = field(default_factory=dict)
    rule: str = "gate"
    evidence: dict[str, object] = field(default_factory=dict)


#: A policy sees the gate's verdict, the training result and the champion's card (None without a champion) and
#: returns the final decision (the same object when it agrees).
Policy = Callable[[GateDecision, object, ModelCard | None], GateDecision]


def compare(result, champion_model, champion_card: ModelCard) -> GateDecision:
    """Judge a training result's chosen model against the champion on the result's holdout (the gate's rule)."""
    if result.cold_start:
        if champion_card.cold_start:
            return GateDecision(True, "both are cold-start models; the newer one (more data) takes over")
        return GateDecision(False, "a cold-start model never replaces a trained champion")
    if champion_card.cold_start:
        return GateDecision(True, "the champion is a provisional cold-start model; a trained model replaces it")
    holdout, train_part = result.holdout, result.train_part
    needed = list(getattr(champion_model, "feature_names_in_", champion_card.kinds))
    absent = [c for c in needed if c not in holdout.X.columns]
    if absent:
        return GateDecision(
            False,
            f"the champion needs column(s) {absent[:8]} that this data set lacks: the two cannot be compared on "
            "the same holdout (promote by hand with `leadscore promote VERSION` if intended)",
        )
    start = result.split.valid_start if result.split.time_ordered else None
    seen = champion_card.trained_until is None or start is None or champion_card.trained_until > start
    if not seen:
        mode = "as deployed (trained before the holdout)"
        champion_p = champion_model.predict_proba(holdout.X[needed])[:, 1]
    elif champion_card.recipe and champion_card.recipe == recipe_hash(result.chosen.model):
        mode = "same recipe as the challenger (identical when refitted on the same data)"
        champion_p = result.chosen.probabilities
    else:
        mode = "its recipe refitted on the challenger's training part (it had seen the holdout)"
        refit = clone(champion_model).fit(train_part.X[needed], train_part.y, times=train_part.times)
        champion_p = refit.predict_proba(holdout.X[needed])[:, 1]
    champ = evaluate(holdout.y, champion_p)
    new = result.chosen.metrics
    comparison = {
        "challenger_log_loss": new["log_loss"],
        "champion_log_loss": champ["log_loss"],
        "challenger_roc_auc": new["roc_auc"],
        "champion_roc_auc": champ["roc_auc"],
    }
    problems = []
    if new["log_loss"] > champ["log_loss"] + LOG_LOSS_TOLERANCE:
        problems.append(
            f"log loss {new['log_loss']:.4f} is worse than the champion's {champ['log_loss']:.4f} by more than "
            f"{LOG_LOSS_TOLERANCE}"
        )
    if new["roc_auc"] < champ["roc_auc"] - AUC_TOLERANCE:
        problems.append(
            f"ROC AUC {new['roc_auc']:.4f} is lower than the champion's {champ['roc_auc']:.4f} by more than "
            f"{AUC_TOLERANCE}"
        )
    judged = f"on the latest {len(holdout)} examples, champion judged {mode}"
    if problems:
        return GateDecision(False, "; ".join(problems) + f" ({judged})", comparison)
    return GateDecision(
        True,
        f"log loss {new['log_loss']:.4f} vs {champ['log_loss']:.4f} (tolerance {LOG_LOSS_TOLERANCE}), ROC AUC "
        f"{new['roc_auc']:.4f} vs {champ['roc_auc']:.4f} (tolerance {AUC_TOLERANCE}) {judged}",
        comparison,
    )


def register(result, *, uri: str | None = None, policy: Policy | None = None, **log_options) -> Registered:
    """Log and register a training result, then apply the gate: ``champion`` if it passes, else ``challenger``.

    ``policy`` (see :data:`Policy`) may overrule the gate's verdict; the decision, its rule and its evidence
    are recorded on the version either way.

    Examples
    --------
    >>> outcome = register(train(data))  # doctest: +SKIP
    >>> outcome.promoted, outcome.reason  # doctest: +SKIP
    (True, 'no champion yet')
    """
    outcome = log_training(result, uri=uri, **log_options)
    client = connect(uri)
    try:
        champion_version = resolve_version(CHAMPION, uri)
    except LookupError:
        champion_version = None
    champion_card = None
    if champion_version is None:
        provisional = " (cold start: scores are provisional)" if result.cold_start else ""
        decision = GateDecision(True, f"no champion yet{provisional}", rule="first")
    else:
        champion_model, champion_card = load_version(champion_version, uri)
        with limited_threads():
            decision = compare(result, champion_model, champion_card)
        decision.reason = f"against champion version {champion_version}: {decision.reason}"
        decision.evidence.setdefault("champion_version", str(champion_version))
    if policy is not None:
        decision = policy(decision, result, champion_card)
    client.set_model_version_tag(MODEL_NAME, outcome.version, "gate", decision.reason[:4900])
    client.set_model_version_tag(MODEL_NAME, outcome.version, "gate_rule", decision.rule)
    evidence = {**decision.comparison, **decision.evidence}
    client.set_model_version_tag(MODEL_NAME, outcome.version, "gate_evidence", json.dumps(evidence, default=str)[:4900])
    if decision.promote:
        _set_champion(client, outcome.version, decision.reason)
    outcome.promoted, outcome.reason, outcome.comparison = decision.promote, decision.reason, decision.comparison
    outcome.rule, outcome.evidence = decision.rule, evidence
    return outcome


def promote(version: str, *, uri: str | None = None, reason: str = "promoted by hand") -> str:
    """Make ``version`` the champion (by hand, without the gate); returns the previous champion or ''."""
    client = connect(uri)
    version = resolve_version(str(version), uri)
    try:
        previous = resolve_version(CHAMPION, uri)
    except LookupError:
        previous = ""
    _set_champion(client, version, reason)
    return previous


def rollback(*, uri: str | None = None) -> tuple[str, str]:
    """Give the ``champion`` alias back to the previous champion; returns (demoted, restored) versions.

    Raises
    ------
    LookupError
        When there is no earlier champion to go back to.
    """
    client = connect(uri)
    current = resolve_version(CHAMPION, uri)
    history = _history(client)
    if not history or history[-1] != current:
        history.append(current)
    if len(history) < 2:
        raise LookupError(f"version {current} is the only champion there has been: nothing to roll back to")
    demoted = history.pop()
    restored = history[-1]
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, restored)
    client.set_registered_model_tag(MODEL_NAME, HISTORY_TAG, json.dumps(history))
    client.set_model_version_tag(MODEL_NAME, demoted, "rolled_back", f"champion alias returned to version {restored}")
    return demoted, restored


def decisions(*, uri: str | None = None, limit: int = 20) -> list[dict[str, object]]:
    """The gate's record, newest version first: each version's registration time, aliases, the gate's verdict
    (``gate`` tag), the rule that decided (``rule``: ``gate``, ``first``, or a retraining rule such as
    ``champion_age``) and its figures (``evidence``), how it became champion (``promotion``) and whether it was
    rolled back.

    Examples
    --------
    >>> decisions(uri="sqlite:////tmp/leadscore-no-registry/mlflow.db")  # doctest: +SKIP
    []
    """
    client = connect(uri)
    try:
        versions = client.search_model_versions(f"name='{MODEL_NAME}'", max_results=max(limit, 1))
    except Exception:  # noqa: BLE001 - no registered model yet: nothing was decided
        return []
    rows = []
    for v in sorted(versions, key=lambda v: int(v.version), reverse=True)[:limit]:
        rows.append(
            {
                "version": str(v.version),
                "registered_at_ms": int(v.creation_timestamp or 0),
                "aliases": sorted(getattr(v, "aliases", []) or []),
                "gate": v.tags.get("gate"),
                "rule": v.tags.get("gate_rule"),
                "evidence": _evidence(v.tags.get("gate_evidence")),
                "promotion": v.tags.get("promotion"),
                "rolled_back": v.tags.get("rolled_back"),
            }
        )
    return rows


def _evidence(text: str | None) -> dict[str, object]:
    """A version's recorded evidence (``gate_evidence``), {} for versions registered before it was recorded."""
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
