"""The drift trigger: the monitor's drift report on the champion, read as the retraining rules' evidence.

Drift is computed in one place, :func:`leadscore.monitoring.drift.drift_report` (PSI of every input and of the
score against the version's training reference, unseen event types, excess losses; its thresholds and when it
alerts are documented there). This module only asks it about the champion as of the schedule's ``now`` and keeps
what the rules use: the alert and its reasons. Given the store's engine, an alert is also announced to webhook
subscribers (``drift.detected``, once per version and week: :func:`leadscore.webhooks.producers.drift_detected`).
"""

from __future__ import annotations

import logging

import pandas as pd

from leadscore.data.contracts import CrmData
from leadscore.retraining.rules import DriftEvidence

log = logging.getLogger("leadscore.retraining")


def champion_drift(tracking_uri: str | None = None, alias: str = "champion", engine=None):
    """A :data:`~leadscore.retraining.job.DriftCheck` on the model ``alias`` points to when it is called.

    With ``engine`` (the store's), an alert is put in the webhooks' outbox in its own transaction.

    It answers None (no evidence either way) when there is no champion yet or the champion was logged before
    training references were kept.
    """

    def check(data: CrmData, now: pd.Timestamp) -> DriftEvidence | None:
        from leadscore.monitoring.drift import drift_report
        from leadscore.monitoring.reference import load_reference
        from leadscore.serving.scorer import Scorer

        try:
            scorer = Scorer.from_registry(alias, tracking_uri)
        except LookupError:
            return None
        reference = load_reference(str(scorer.model_version), tracking_uri)
        if reference is None:
            log.info("version %s has no training reference: no drift evidence", scorer.model_version)
            return None
        report = drift_report(scorer, data, reference, now)
        if report.alert and engine is not None:
            announce_drift(engine, report)
        return DriftEvidence(alert=bool(report.alert), reasons=tuple(report.reasons))

    return check


def announce_drift(engine, report) -> str | None:
    """Enqueue the report's alert as ``drift.detected`` (the score's PSI, the reasons in ``details``).

    The window is the report's week, so a check repeated within it announces nothing twice.
    """
    from leadscore.store.engine import run_in_write_transaction
    from leadscore.webhooks.producers import drift_detected

    end = pd.Timestamp(report.cutoff)
    payload = {
        "model_version": str(report.model_version),
        "feature": "score",
        "psi": float(report.score_psi),
        "threshold": float(report.thresholds.psi_alert),
        "window_start": (end - pd.Timedelta(days=7)).isoformat(),
        "window_end": end.isoformat(),
        "details": {"reasons": list(report.reasons), "leads": int(report.leads)},
    }
    return run_in_write_transaction(engine, lambda conn: drift_detected(conn, payload))
