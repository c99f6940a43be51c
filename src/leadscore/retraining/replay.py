"""A history replayed with scheduled retraining, and how each champion did on the outcomes that followed.

:func:`replay` walks a CRM data set (the simulator's, usually) forward in steps of ``every_days``: at each step
the schedule's tick (:func:`leadscore.retraining.job.run_due`, with its lease in a real store) sees only the data
known by then (:func:`data_until`) and retrains and decides as the service would. :func:`realised_auc` then judges
each period after the fact: the leads open at the period's cutoffs, labelled with what happened within the
horizon, scored by the champion that was in force and by every version registered by the period's start (the
ones the gate could have chosen). The report's ``max_shortfall`` is the largest gap between the best of those and
the champion: the issue's target is that it stays within 0.02.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from leadscore.data.contracts import CrmData
from leadscore.retraining.job import DEFAULT_EVERY_DAYS, RetrainOutcome, run_due


def data_until(data: CrmData, t: object) -> CrmData:
    """What a CRM knew at ``t``: leads created and events that happened at or before ``t``, goals that had
    started and expenses spent by then.

    Examples
    --------
    >>> from leadscore.simulation.simulator import simulate
    >>> data = simulate(n_leads=200, n_reps=3, months=4, seed=2).data
    >>> known = data_until(data, "2024-03-01")
    >>> bool(known.events["at"].max() <= pd.Timestamp("2024-03-01", tz="UTC")), len(known.leads) < len(data.leads)
    (True, True)
    """
    t = _utc(t)
    return CrmData(
        leads=data.leads[data.leads["created_at"] <= t].reset_index(drop=True),
        events=data.events[data.events["at"] <= t].reset_index(drop=True),
        goals=data.goals[data.goals["start"] <= t].reset_index(drop=True),
        expenses=data.expenses[data.expenses["at"] <= t].reset_index(drop=True),
    )


def _utc(t: object) -> pd.Timestamp:
    t = pd.Timestamp(t)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


@dataclass
class PeriodAccuracy:
    """One period's realised ROC AUC: the champion's, every available version's, the best and the gap."""

    start: str
    champion: str
    examples: int
    conversions: int
    champion_auc: float
    best_version: str
    best_auc: float
    shortfall: float
    auc_by_version: dict[str, float] = field(default_factory=dict)


@dataclass
class ReplayReport:
    """The decisions of a replay and the periods' realised accuracy."""

    decisions: list[dict[str, object]]
    periods: list[PeriodAccuracy]

    @property
    def max_shortfall(self) -> float:
        """The largest gap between the best available version's realised AUC and the champion's."""
        return max((p.shortfall for p in self.periods), default=0.0)

    def as_dict(self) -> dict[str, object]:
        """The report as JSON-safe values."""
        return {
            "decisions": self.decisions,
            "periods": [asdict(p) for p in self.periods],
            "max_shortfall": round(self.max_shortfall, 6),
        }


def replay(
    data: CrmData,
    engine: Engine,
    *,
    start: object,
    end: object,
    every_days: float = DEFAULT_EVERY_DAYS,
    tracking_uri: str,
    drift_check=None,
    progress: Callable[[str], None] | None = None,
    **run_options,
) -> tuple[list[RetrainOutcome], list[tuple[pd.Timestamp, str]]]:
    """Run the schedule's tick at ``start``, ``start + every_days``, ... before ``end`` on the data known then.

    Returns the tick outcomes and, for each step, (its time, the champion version in force after it).
    """
    from leadscore.registry import CHAMPION, resolve_version

    t, stop, step = _utc(start), _utc(end), pd.Timedelta(days=every_days)
    outcomes, champions = [], []
    while t < stop:
        known = data_until(data, t)
        outcome = run_due(
            engine,
            lambda known=known: known,
            now=t,
            every_days=every_days,
            tracking_uri=tracking_uri,
            drift_check=drift_check,
            **run_options,
        )
        outcomes.append(outcome)
        champions.append((t, resolve_version(CHAMPION, tracking_uri)))
        if progress:
            progress(f"{t.date()}: {outcome.rule or outcome.skipped} -> champion {champions[-1][1]}")
        t += step
    return outcomes, champions


def realised_auc(
    data: CrmData,
    champions: list[tuple[pd.Timestamp, str]],
    *,
    every_days: float = DEFAULT_EVERY_DAYS,
    tracking_uri: str,
    horizon_days: float = 90.0,
    registered: dict[str, pd.Timestamp],
) -> list[PeriodAccuracy]:
    """Each period's realised ROC AUC for its champion and for every version registered by its start.

    The period starting at ``t`` is judged on daily snapshots in [t, t + every_days) of the leads open then,
    labelled "won within ``horizon_days``" from the full ``data`` (the outcomes that followed); ``registered``
    maps each version to the schedule time it was registered at.
    """
    from leadscore.features.training_set import build_training_set
    from leadscore.model.metrics import evaluate
    from leadscore.serving.prioritize import with_absent_features
    from leadscore.serving.scorer import Scorer

    scorers: dict[str, Scorer] = {}
    periods = []
    for t, champion in champions:
        cutoffs = list(pd.date_range(t, t + pd.Timedelta(days=every_days), freq="D", inclusive="left"))
        available = sorted((v for v, at in registered.items() if at <= t), key=int)
        frames: dict[tuple[str, ...], pd.DataFrame] = {}
        aucs: dict[str, float] = {}
        y = None
        for version in available:
            scorer = scorers.get(version) or Scorer.from_registry(version, tracking_uri)
            scorers[version] = scorer
            types = tuple(scorer.card.extra_types)
            if types not in frames:
                frames[types] = build_training_set(data, cutoffs, horizon_days, extra_types=types)
            snapshots = frames[types]
            y = snapshots["label"].to_numpy(dtype=int)
            if len(np.unique(y)) < 2:
                break
            features = with_absent_features(scorer, snapshots)[0]
            p = scorer.score_features(features, reasons=False)["probability"].to_numpy(dtype=float)
            aucs[version] = round(float(evaluate(y, p)["roc_auc"]), 6)
        if champion not in aucs:
            continue
        best = max(aucs, key=aucs.get)
        periods.append(
            PeriodAccuracy(
                start=t.isoformat(),
                champion=champion,
                examples=len(y),
                conversions=int(y.sum()),
                champion_auc=aucs[champion],
                best_version=best,
                best_auc=aucs[best],
                shortfall=round(aucs[best] - aucs[champion], 6),
                auc_by_version=aucs,
            )
        )
    return periods


def simulated_year(
    data: CrmData,
    engine: Engine,
    *,
    start: object,
    periods: int,
    every_days: float = DEFAULT_EVERY_DAYS,
    tracking_uri: str,
    horizon_days: float = 90.0,
    drift_check=None,
    progress: Callable[[str], None] | None = None,
    **run_options,
) -> ReplayReport:
    """Replay ``periods`` steps of scheduled retraining from ``start`` and judge every period's champion."""
    end = _utc(start) + pd.Timedelta(days=every_days) * periods
    outcomes, champions = replay(
        data,
        engine,
        start=start,
        end=end,
        every_days=every_days,
        tracking_uri=tracking_uri,
        drift_check=drift_check,
        progress=progress,
        horizon_days=int(horizon_days),
        **run_options,
    )
    registered = {o.version: pd.Timestamp(champions[i][0]) for i, o in enumerate(outcomes) if o.ran}
    decisions = [
        {
            "at": champions[i][0].isoformat(),
            "trigger": o.trigger,
            "ran": o.ran,
            "skipped": o.skipped,
            "version": o.version,
            "promoted": o.promoted,
            "rule": o.rule,
            "champion_after": champions[i][1],
            "challenger_roc_auc": o.evidence.get("challenger_roc_auc"),
            "champion_roc_auc": o.evidence.get("champion_roc_auc"),
            "champion_age_days": o.evidence.get("champion_age_days"),
            "drift_alert": o.evidence.get("drift_alert"),
        }
        for i, o in enumerate(outcomes)
    ]
    accuracy = realised_auc(
        data,
        champions,
        every_days=every_days,
        tracking_uri=tracking_uri,
        horizon_days=horizon_days,
        registered=registered,
    )
    return ReplayReport(decisions=decisions, periods=accuracy)
