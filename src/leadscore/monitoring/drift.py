"""Drift: has the population the model scores, or what happens to it, moved away from the training data?

The API (what the retraining job calls)::

    drift_report(scorer, data, reference, cutoff, *, thresholds=None) -> DriftReport
    weekly_drift(scorer, data, reference, cutoffs, *, thresholds=None) -> list[DriftReport]

``scorer`` is the :class:`~leadscore.serving.scorer.Scorer` of the version judged, ``data`` the store's
:class:`~leadscore.data.contracts.CrmData` (``repo.load_crm()``), ``reference`` that version's
:class:`~leadscore.model.reference.TrainingReference` (:func:`leadscore.monitoring.reference.load_reference`)
and ``cutoff`` the end of the week reported (a Monday 00:00 UTC by convention). A :class:`DriftReport` has

- ``alert`` (bool): whether anything crossed an alert threshold; ``reasons`` (list of str): why, one line each
  (empty when all is well);
- ``features`` (DataFrame, one row per model input, then ``score``): ``feature, kind, psi, psi_previous,
  status, missing_reference, missing_recent, unseen_share, unseen_values``;
- ``event_types`` (DataFrame): the event types of the window never seen before the training's last cutoff,
  with their counts and share of the window's events;
- ``outcomes`` (DataFrame): each category's share of won among the leads that closed in the window, against
  the training period's, with a z statistic;
- ``score_psi``, ``leads`` (worked open leads at the cutoff), ``unworked_share`` and
  ``unworked_share_reference``, ``to_dict()``.

What is compared. The *recent* population is the leads open at the cutoff and being worked (an interaction
within the horizon, or none yet), their inputs built point in time exactly as scoring builds them, and the
model's scores on them; the *reference* is the training snapshots of worked leads (open at each weekly cutoff
of the training period) and the model's scores on those. Leads nobody has touched for a whole horizon pile up
in every CRM, left open rather than closed; by their number alone they would move the population, so they are
left out of both and their share is reported apart (``unworked_share`` against the training's). Both are
binned as
the reference says (numbers at their training deciles, categories by name, a missing bin), and compared by the
population stability index, PSI = sum over bins of (recent - reference) * ln(recent / reference), shares floored
at :data:`PSI_FLOOR`.

The thresholds (:class:`DriftThresholds`) and why:

- PSI below 0.1 is *stable*, 0.1 to 0.25 *watch*, 0.25 or more *alert*: the credit-scoring convention
  (Siddiqi, 2006) that population-stability reports use. With the decile bins, a sample of n open leads drawn
  from the training distribution itself gives a PSI of about 9/n by chance (0.02 for 500 leads), far below 0.1.
- The report's ``alert`` is raised by
  1. the score's PSI at or over 0.25 on this week and the week before (the grades salespeople see moved);
  2. a model input's PSI at or over 0.25 on this week and the week before, for at least
     :attr:`DriftThresholds.inputs_alerting` of the inputs. One input alone (a new campaign, a season) is shown
     as *alert* in the table but does not raise the report: inputs move for benign reasons all year, and the
     model's answer to them is the score, judged in 1;
  3. event types never seen in training making :attr:`DriftThresholds.unseen_event_share` (1 %) or more of the
     window's events: the model counts them only as generic activity, so what they say is lost to it;
  4. a category of a lead column the model reads (a source, a segment) whose open leads were lost in the last
     ``outcome_weeks`` (2) more often than the 12 weeks before predict, stage by stage and relative to the
     other categories (:func:`closing_outcomes`), by a z of :attr:`DriftThresholds.outcome_z` (4) or more and
     by a quarter or more: the inputs can stay the same while what they mean changes (a source's leads
     converting half as often), and losses are the first outcomes to arrive, weeks before any horizon has
     passed. z >= 4 keeps a year of weekly tests on a few dozen categories quiet by chance (one-sided
     p = 3e-5 per test).

Unseen categories and missing-value rates of every input are reported; they count in the PSI (an unseen
category falls in the "other" bin, a missing value in the missing bin), not as alerts of their own.

Examples
--------
>>> report = drift_report(scorer, repo.load_crm(), load_reference("champion"), "2025-06-02")  # doctest: +SKIP
>>> report.alert, report.reasons  # doctest: +SKIP
(False, [])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import binom, norm

from leadscore.data.contracts import CrmData
from leadscore.data.records import records
from leadscore.features import catalogue
from leadscore.features.history import cutoff_timestamp
from leadscore.model.reference import SCORE, FeatureReference, TrainingReference, worked_rows
from leadscore.serving.prioritize import features_for

#: Shares below this are taken as this in the PSI (an empty bin would make it infinite).
PSI_FLOOR = 1e-4
STABLE, WATCH, ALERT = "stable", "watch", "alert"
#: A lead's age bands (weeks since it was created) in the closing check: young leads close at rates of their own.
AGE_WEEKS = (2, 4, 8, 16, 32)


@dataclass(frozen=True)
class DriftThresholds:
    """When drift is worth watching and when it raises an alert (see the module's docstring for why)."""

    psi_watch: float = 0.1
    psi_alert: float = 0.25
    inputs_alerting: float = 0.25  # the share of inputs at alert (two weeks running) that raises the report
    unseen_event_share: float = 0.01
    outcome_weeks: int = 2  # the window whose closings are judged
    baseline_weeks: int = 12  # the weeks before it, that say how often a category's leads close
    outcome_z: float = 4.0
    outcome_ratio: float = 1.25  # losses at least this many times the expected ones, with outcome_z
    outcome_min_events: int = 10  # losses of a category in the window, for its test to count
    outcome_min_baseline: int = 200  # lead-weeks of a category in the baseline (a new campaign has too few)
    outcome_min_arrival_weeks: int = 8  # weeks its baseline leads arrived in: a trade show's cohort is no rate


@dataclass
class DriftReport:
    """One week's drift report (see :mod:`leadscore.monitoring.drift`)."""

    cutoff: pd.Timestamp
    model_version: str
    leads: int
    unworked_share: float
    unworked_share_reference: float
    alert: bool
    reasons: list[str]
    score_psi: float
    features: pd.DataFrame
    event_types: pd.DataFrame
    outcomes: pd.DataFrame
    thresholds: DriftThresholds = field(default_factory=DriftThresholds)

    def to_dict(self) -> dict:
        """JSON-ready: the figures, and each table as a list of records."""
        return {
            "cutoff": self.cutoff.isoformat(),
            "model_version": self.model_version,
            "leads": self.leads,
            "unworked_share": self.unworked_share,
            "unworked_share_reference": self.unworked_share_reference,
            "alert": self.alert,
            "reasons": list(self.reasons),
            "score_psi": self.score_psi,
            "thresholds": vars(self.thresholds).copy(),
            "features": records(self.features),
            "event_types": records(self.event_types),
            "outcomes": records(self.outcomes),
        }


def psi(reference: np.ndarray, recent: np.ndarray) -> float:
    """The population stability index of two share vectors over the same bins (shares floored at
    :data:`PSI_FLOOR`).

    Examples
    --------
    >>> round(psi(np.array([0.5, 0.5]), np.array([0.5, 0.5])), 6)
    0.0
    >>> round(psi(np.array([0.5, 0.5]), np.array([0.7, 0.3])), 3)
    0.169
    """
    e = np.maximum(np.asarray(reference, dtype=float), PSI_FLOOR)
    a = np.maximum(np.asarray(recent, dtype=float), PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def status(value: float, thresholds: DriftThresholds) -> str:
    """stable, watch or alert for a PSI."""
    if not np.isfinite(value) or value < thresholds.psi_watch:
        return STABLE
    return WATCH if value < thresholds.psi_alert else ALERT


def _compare(ref: FeatureReference, values: pd.Series) -> dict:
    counts, unseen = ref.bin_counts(values)
    n = max(int(counts.sum()), 1)
    n_unseen = sum(unseen.values())
    top = sorted(unseen, key=unseen.get, reverse=True)[:5]
    return {
        "feature": ref.name,
        "kind": ref.kind,
        "psi": psi(np.asarray(ref.proportions), counts / n) if counts.sum() else float("nan"),
        "missing_reference": ref.missing_rate,
        "missing_recent": float(counts[-1] / n),
        "unseen_share": n_unseen / n,
        "unseen_values": ", ".join(top),
    }


def open_population(scorer, data: CrmData, cutoff) -> pd.DataFrame:
    """The model inputs of the leads open at ``cutoff`` (built as scoring builds them) and their ``score``."""
    features, _ = features_for(scorer, data.leads, data.events, cutoff)
    if features.empty:
        return features.assign(**{SCORE: pd.Series(dtype=float)})
    scored = scorer.score_features(features, reasons=False)
    return features.assign(**{SCORE: scored["probability"].to_numpy(dtype=float)})


def population_drift(population: pd.DataFrame, reference: TrainingReference) -> pd.DataFrame:
    """One row per model input (then ``score``): PSI, missing rates and unseen categories of ``population``
    against ``reference``."""
    refs = [*reference.features.values(), reference.score]
    rows = [_compare(ref, population[ref.name]) for ref in refs if ref.name in population.columns]
    return pd.DataFrame(rows)


def unseen_event_types(events: pd.DataFrame, start, end, known_until) -> pd.DataFrame:
    """Event types in ``(start, end]`` that no event at or before ``known_until`` had: type, events, share."""
    at = events["at"]
    known = set(events.loc[at <= known_until, "type"].unique())
    window = events.loc[(at > start) & (at <= end), "type"]
    counts = window[~window.isin(known)].value_counts()
    return pd.DataFrame(
        {
            "type": counts.index.astype(str),
            "events": counts.to_numpy(dtype=int),
            "share": counts.to_numpy(dtype=float) / max(len(window), 1),
        }
    )


def _lead_attribute_columns(scorer, leads: pd.DataFrame) -> list[str]:
    """The categorical lead columns the model reads (``source``, the chosen attributes), by their CRM names."""
    out = []
    for name in scorer.features:
        if scorer.card.kinds.get(name) not in ("categorical", "boolean"):
            continue
        column = name if name in leads.columns else catalogue.attribute_of(name)
        if column is not None and column in leads.columns and column not in out:
            out.append(column)
    return out


def _week_outcomes(data: CrmData, columns: Sequence[str], start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The leads open at ``start``: their categories, stage then, and whether they were lost or won in
    ``(start, end]`` (a lead's first closing counts)."""
    leads, events = data.leads, data.events
    closing = events[events["type"].isin(("won", "lost"))].sort_values(["at", "event_id"], kind="stable")
    first = closing.drop_duplicates("lead_id", keep="first").set_index("lead_id")
    # Mapped through a dict and back to UTC times: a store with no closing yet maps to NaT, not to float NaN.
    first_at = first["at"].to_dict()
    closed_at = pd.to_datetime(leads["lead_id"].map(first_at), utc=True)
    open_ = leads[(leads["created_at"] <= start) & ~(closed_at <= start)]
    stages = events[(events["type"] == "stage_changed") & (events["at"] <= start)].sort_values("at", kind="stable")
    stage = stages.drop_duplicates("lead_id", keep="last").set_index("lead_id")["stage"]
    age_weeks = (start - open_["created_at"]) / pd.Timedelta(weeks=1)
    kind = open_["lead_id"].map(first["type"].to_dict())
    at = pd.to_datetime(open_["lead_id"].map(first_at), utc=True)
    within = (at > start) & (at <= end)
    out = pd.DataFrame(
        {
            "stage": open_["lead_id"].map(stage).astype("object").fillna("(none)").astype(str).to_numpy(),
            "age": np.searchsorted(AGE_WEEKS, age_weeks.to_numpy(dtype=float), side="right"),
            "arrived": (open_["created_at"] - pd.Timestamp(0, tz="UTC")).dt.days.to_numpy() // 7,
            "lost": (within & (kind == "lost")).to_numpy(dtype=int),
            "won": (within & (kind == "won")).to_numpy(dtype=int),
        }
    )
    for column in columns:
        out[column] = open_[column].astype("object").fillna("(missing)").astype(str).to_numpy()
    return out


def closing_outcomes(
    data: CrmData, columns: Sequence[str], cutoff: pd.Timestamp, thresholds: DriftThresholds
) -> pd.DataFrame:
    """Did the leads of a category get lost (or won) more often in the ``outcome_weeks`` to ``cutoff`` than the
    weeks before predict?

    For each category of each lead column: the leads open at each week's start, lost (won) during that week,
    against its share of the window's losses expected from the ``baseline_weeks`` before it, stage by stage (the
    share of the category's leads in each stage and age band lost in a week then; leads in a stratum without
    a baseline are left out, and a category needs ``outcome_min_baseline`` lead-weeks there, of leads that
    arrived over ``outcome_min_arrival_weeks`` different weeks or more, to be judged: the leads of a trade
    show's campaign arrive at once and close as one cohort, with no steady rate to compare against):
    given the window's losses, the category's
    count is binomial with that share, so a season or a quarter-end push, which moves every category alike,
    cancels out. A category is flagged when its losses are that many or more with a one-sided binomial p of a
    normal ``outcome_z`` (4: p = 3e-5) or less, are ``outcome_ratio`` times the expectation or more, and number
    ``outcome_min_events`` or more: its leads are lost faster than they were, weeks before any horizon has
    passed.
    """
    week = pd.Timedelta(weeks=1)
    window = thresholds.outcome_weeks

    def weeks(first: int, last: int) -> pd.DataFrame:  # the weeks ending k weeks before the cutoff, k in [first, last)
        parts = [_week_outcomes(data, columns, cutoff - (k + 1) * week, cutoff - k * week) for k in range(first, last)]
        return pd.concat(parts, ignore_index=True)

    recent = weeks(0, window)
    baseline = weeks(window, window + thresholds.baseline_weeks)
    rows = []
    for column in columns:
        for what in ("lost", "won"):
            keys = [column, "stage", "age"]
            hazard = baseline.groupby(keys)[what].mean()  # per lead-week, by category, stage and age
            expected_each = pd.MultiIndex.from_frame(recent[keys]).map(hazard.to_dict().get)
            # A lead in a stratum its category has no baseline for (a campaign's leads all older now than ever
            # before, say) has no expectation: it is left out of the test, observed and expected alike.
            expected_each = pd.Series(expected_each, dtype=float).to_numpy()
            part = pd.DataFrame({"category": recent[column], "observed": recent[what], "expected": expected_each})
            part = part[np.isfinite(expected_each)]
            by = part.groupby("category").agg(leads=("observed", "size"), observed=("observed", "sum"),
                                              expected=("expected", "sum"))  # fmt: skip
            by["baseline_leads"] = baseline[column].value_counts().reindex(by.index).fillna(0).astype(int)
            arrivals = baseline.groupby(column)["arrived"].nunique()
            by["arrival_weeks"] = arrivals.reindex(by.index).fillna(0).astype(int)
            # Given all the week's losses, a category's share of them is binomial with its share of the expected
            # ones: a season or a quarter-end push that moves every category alike cancels out.
            total = by["observed"].sum()
            share = by["expected"] / max(by["expected"].sum(), 1e-12)
            by["expected"] = total * share
            # The exact binomial tail, said as the normal z with the same one-sided p (a normal approximation
            # overstates small counts: 17 losses where 6 were expected is p = 1e-4, not z = 4.5).
            tail = binom.sf(by["observed"].to_numpy() - 1, int(total), share.clip(0, 1).to_numpy())
            by["z"] = norm.isf(np.clip(tail, 1e-300, 1.0))
            rows.append(by.reset_index().assign(column=column, outcome=what))
    columns_out = ["column", "category", "outcome", "leads", "baseline_leads", "arrival_weeks", "observed",
                   "expected", "z", "flagged"]  # fmt: skip
    if not rows:
        return pd.DataFrame(columns=columns_out)
    table = pd.concat(rows, ignore_index=True)
    table["flagged"] = (
        (table["outcome"] == "lost")
        & (table["observed"] >= thresholds.outcome_min_events)
        & (table["baseline_leads"] >= thresholds.outcome_min_baseline)
        & (table["arrival_weeks"] >= thresholds.outcome_min_arrival_weeks)
        & (table["z"] >= thresholds.outcome_z)
        & (table["observed"] >= thresholds.outcome_ratio * table["expected"])
    )
    return table[columns_out]


def _reasons(features: pd.DataFrame, events: pd.DataFrame, outcomes: pd.DataFrame, t: DriftThresholds) -> list[str]:
    reasons = []
    both = (features["psi"] >= t.psi_alert) & (features["psi_previous"] >= t.psi_alert)
    score = features[features["feature"] == SCORE]
    if both[score.index].any():
        reasons.append(
            f"score distribution PSI {score['psi'].iloc[0]:.2f} (previous week {score['psi_previous'].iloc[0]:.2f})"
            f" >= {t.psi_alert}"
        )
    inputs = features["feature"] != SCORE
    alerting = features[inputs & both]
    if inputs.sum() and len(alerting) / inputs.sum() >= t.inputs_alerting:
        names = ", ".join(alerting.sort_values("psi", ascending=False)["feature"].head(5))
        reasons.append(
            f"{len(alerting)} of {int(inputs.sum())} inputs at PSI >= {t.psi_alert} two weeks running ({names})"
        )
    if len(events) and events["share"].sum() >= t.unseen_event_share:
        names = ", ".join(f"{r.type} ({r.share:.1%})" for r in events.head(5).itertuples())
        reasons.append(f"event types never seen in training make {events['share'].sum():.1%} of the events: {names}")
    for row in outcomes[outcomes["flagged"]].itertuples():
        reasons.append(
            f"{row.column} {row.category}: {row.observed} of its open leads {row.outcome} in the last "
            f"{t.outcome_weeks} weeks, {row.expected:.1f} expected from the {t.baseline_weeks} weeks before "
            f"(z = {row.z:.1f})"
        )
    return reasons


def drift_report(
    scorer,
    data: CrmData,
    reference: TrainingReference,
    cutoff,
    *,
    thresholds: DriftThresholds | None = None,
    previous: pd.DataFrame | None = None,
) -> DriftReport:
    """The drift report of the week that ends at ``cutoff`` (see the module's docstring).

    Parameters
    ----------
    scorer : Scorer
        The model version judged (its inputs, its scores, its card's horizon and training period).
    data : CrmData
        Everything known (events after ``cutoff`` are ignored).
    reference : TrainingReference
        That version's training reference.
    cutoff : timestamp
        The end of the week reported.
    thresholds : DriftThresholds, optional
    previous : DataFrame, optional
        The week before's ``features`` table (:func:`weekly_drift` passes it on); computed when not given.

    Returns
    -------
    DriftReport
    """
    t = thresholds or DriftThresholds()
    cut = cutoff_timestamp(cutoff)
    known = data.events[data.events["at"] <= cut]
    visible = CrmData(leads=data.leads[data.leads["created_at"] <= cut], events=known)
    horizon = float(scorer.card.horizon_days)
    population = open_population(scorer, visible, cut)
    worked = worked_rows(population, horizon)
    features = population_drift(population[worked], reference)
    if previous is None:
        before = cut - pd.Timedelta(weeks=1)
        earlier = open_population(scorer, CrmData(leads=visible.leads, events=known[known["at"] <= before]), before)
        previous = population_drift(earlier[worked_rows(earlier, horizon)], reference)
    features["psi_previous"] = features["feature"].map(previous.set_index("feature")["psi"]).astype(float)
    features["status"] = [status(v, t) for v in features["psi"]]
    training_end = _training_end(scorer)
    events = unseen_event_types(known, cut - pd.Timedelta(weeks=1), cut, training_end)
    outcomes = closing_outcomes(visible, _lead_attribute_columns(scorer, data.leads), cut, t)
    reasons = _reasons(features, events, outcomes, t)
    score_psi = features.loc[features["feature"] == SCORE, "psi"]
    columns = ["feature", "kind", "psi", "psi_previous", "status", "missing_reference", "missing_recent",
               "unseen_share", "unseen_values"]  # fmt: skip
    return DriftReport(
        cutoff=cut,
        model_version=str(scorer.model_version),
        leads=int(worked.sum()),
        unworked_share=float(1.0 - worked.mean()) if len(population) else 0.0,
        unworked_share_reference=reference.unworked_share,
        alert=bool(reasons),
        reasons=reasons,
        score_psi=float(score_psi.iloc[0]) if len(score_psi) else float("nan"),
        features=features[columns],
        event_types=events,
        outcomes=outcomes,
        thresholds=t,
    )


def _training_end(scorer) -> pd.Timestamp:
    """The training's last cutoff: what was known when the model learnt (its last label time minus H)."""
    card = scorer.card
    if card.trained_until is None:
        return pd.Timestamp.min.tz_localize("UTC")
    days = float(card.trained_until) - float(card.horizon_days)
    return pd.Timestamp(0, tz="UTC") + pd.to_timedelta(days, unit="D")


def weekly_drift(
    scorer, data: CrmData, reference: TrainingReference, cutoffs, *, thresholds: DriftThresholds | None = None
) -> list[DriftReport]:
    """:func:`drift_report` for each of ``cutoffs`` (weekly, in order), each week's table reused as the next
    one's previous week."""
    reports: list[DriftReport] = []
    previous = None
    last = None
    for cutoff in sorted(cutoff_timestamp(c) for c in cutoffs):
        consecutive = last is not None and cutoff - last == pd.Timedelta(weeks=1)
        report = drift_report(
            scorer, data, reference, cutoff, thresholds=thresholds, previous=previous if consecutive else None
        )
        reports.append(report)
        previous = report.features[["feature", "psi"]]
        last = cutoff
    return reports
