"""The drift trigger: the monitor's drift report on the champion, read as the retraining rules' evidence.

Drift is computed in one place, :func:`leadscore.monitoring.drift.drift_report` (PSI of every input and of the
score against the version's training reference, unseen event types, excess losses; its thresholds and when it
alerts are documented there). This module only asks it about the champion as of the schedule's ``now`` and keeps
what the rules use: the alert and its reasons.
"""

from __future__ import annotations

import logging

import pandas as pd

from leadscore.data.contracts import CrmData
from leadscore.retraining.rules import DriftEvidence

log = logging.getLogger("leadscore.retraining")


def champion_drift(tracking_uri: str | None = None, alias: str = "champion"):
    """A :data:`~leadscore.retraining.job.DriftCheck` on the model ``alias`` points to when it is called.

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
        return DriftEvidence(alert=bool(report.alert), reasons=tuple(report.reasons))

    return check
