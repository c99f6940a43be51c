"""Training: guard against leaks, compare the candidates on the latest period, choose, refit on everything.

:func:`train` is the whole procedure on :class:`~leadscore.model.splits.LabelledData` and nothing else (no MLflow, no
files), so notebooks, the CLI and the benchmark run exactly the same thing:

1. too few examples of either class (fewer than 40) -> a cold-start model, marked as such;
2. the leakage guard (:mod:`leadscore.model.leakage`) refuses columns that give the outcome away;
3. a time-ordered split (:func:`~leadscore.model.splits.time_split`): earlier examples to train, the latest 20 % to
   validate, training snapshots whose label window reaches into the validation period purged;
4. every candidate fitted on the earlier part, calibrated on that part's own latest slice, and scored on the
   validation period, both with and without calibration;
5. the variant with the lowest validation log loss is chosen (a tie within 0.0001 goes to the better calibrated
   one) and refitted, with the same settings, on all the labelled examples;
6. with time, the chosen variant's calibration on the validation period is reported side by side with a plain
   logistic regression fitted on the same earlier examples (:mod:`leadscore.model.later_period`).

:func:`training_data_from_crm` turns a CRM data set into labelled snapshots with the feature builder.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone

from leadscore.model.attribute_selection import AttributeSelection
from leadscore.model.calibration import METHODS, TimeCalibratedClassifier
from leadscore.model.candidates import BLEND_MEMBERS, CANDIDATES, LogOddsBlend, cold_start_pipeline, make_candidates
from leadscore.model.later_period import baseline_probabilities, compare_later_period
from leadscore.model.leakage import GuardReport, LeakageError, LeakyColumn, check_columns
from leadscore.model.metrics import evaluate
from leadscore.model.splits import VALIDATION_FRACTION, LabelledData, Split, time_split
from leadscore.model.threads import limited_threads

MIN_CLASS_COUNT = 40
# Log losses this close are a tie (well inside the noise of any validation period); the better calibrated wins.
LOG_LOSS_TIE = 1e-4
DEFAULT_HORIZON_DAYS = 90


@dataclass(kw_only=True)
class CandidateResult:
    """One candidate variant scored on the validation period."""

    name: str
    calibration: str
    metrics: dict[str, float]
    probabilities: np.ndarray
    seconds: float
    model: TimeCalibratedClassifier | LogOddsBlend  # fitted on the training part only

    @property
    def label(self) -> str:
        return f"{self.name} ({'uncalibrated' if self.calibration == 'none' else self.calibration})"


@dataclass(kw_only=True)
class TrainingResult:
    """Everything a training run produced: the comparison, the choice and the final model."""

    data: LabelledData
    split: Split | None
    results: list[CandidateResult]
    chosen: CandidateResult | None
    model: TimeCalibratedClassifier | LogOddsBlend
    cold_start: bool
    leaks: list[LeakyColumn]
    guard: GuardReport | None = None  # the leakage guard's evidence (None: not run)
    settings: dict[str, object]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    later_period: dict[str, float] = field(default_factory=dict)  # the ``later_*`` pairs; empty without time

    @property
    def holdout(self) -> LabelledData | None:
        """The validation examples (the most recent period)."""
        return None if self.split is None else self.data.subset(self.split.valid)

    @property
    def train_part(self) -> LabelledData | None:
        return None if self.split is None else self.data.subset(self.split.train)

    def table(self) -> pd.DataFrame:
        """One row per candidate variant with its validation metrics, best log loss first."""
        rows = [
            {
                "candidate": r.name,
                "calibration": r.calibration,
                "chosen": r is self.chosen,
                **r.metrics,
                "seconds": r.seconds,
            }
            for r in self.results
        ]
        if not rows:
            return pd.DataFrame()
        return pd.DataFrame(rows).sort_values("log_loss", kind="stable").reset_index(drop=True)

    def metrics(self) -> dict[str, object]:
        """A JSON-ready summary: the chosen variant's metrics and every candidate's."""
        return {
            "cold_start": self.cold_start,
            "chosen": None if self.chosen is None else self.chosen.label,
            "validation": None if self.split is None else self.split.describe(),
            "metrics": {} if self.chosen is None else self.chosen.metrics,
            "candidates": {r.label: r.metrics for r in self.results},
            "later_period": self.later_period,
            "leaky_columns": [str(leak) for leak in self.leaks],
            "notes": self.notes,
            "n_examples": len(self.data),
            "positives": self.data.positives,
            "seconds": round(self.seconds, 2),
        }


def _uncalibrated(fitted: TimeCalibratedClassifier) -> TimeCalibratedClassifier:
    """The same fitted classifier without its calibration."""
    view = TimeCalibratedClassifier(fitted.estimator, method="none", horizon=fitted.horizon)
    view.estimator_ = fitted.estimator_
    view.classes_ = fitted.classes_
    view.slope_, view.intercept_, view.calibrator_ = 1.0, 0.0, None
    return view._set_features(fitted.estimator_)


def choose(results: list[CandidateResult]) -> CandidateResult:
    """The lowest validation log loss; among variants within LOG_LOSS_TIE of it, the best calibrated (ECE)."""
    best = min(r.metrics["log_loss"] for r in results)
    tied = [r for r in results if r.metrics["log_loss"] <= best + LOG_LOSS_TIE]
    return min(tied, key=lambda r: (r.metrics["ece"], r.metrics["log_loss"]))


def _score(name: str, calibration: str, model, holdout: LabelledData, seconds: float) -> CandidateResult:
    proba = model.predict_proba(holdout.X)[:, 1]
    return CandidateResult(
        name=name,
        calibration=calibration,
        metrics=evaluate(holdout.y, proba),
        probabilities=proba,
        seconds=seconds,
        model=model,
    )


def _fit(estimator, calibration: str, data: LabelledData) -> TimeCalibratedClassifier:
    model = TimeCalibratedClassifier(clone(estimator), method=calibration, horizon=data.horizon)
    return model.fit(data.X, data.y, times=data.times)


def _cold_start(data: LabelledData, settings, leaks, notes, started: float, guard=None) -> TrainingResult:
    notes = [
        *notes,
        f"cold start: only {data.positives} converted and {data.negatives} unconverted examples (fewer than "
        f"{MIN_CLASS_COUNT} of one kind); a smoothed naive Bayes model was fitted and its scores are provisional",
    ]
    model = TimeCalibratedClassifier(cold_start_pipeline(data.kinds), method="none").fit(data.X, data.y)
    return TrainingResult(
        data=data,
        split=None,
        results=[],
        chosen=None,
        model=model,
        cold_start=True,
        leaks=leaks,
        guard=guard,
        settings=settings,
        notes=notes,
        seconds=time.perf_counter() - started,
    )


def train(
    data: LabelledData,
    *,
    candidates: Sequence[str] = CANDIDATES,
    calibration: str = "sigmoid",
    validation_fraction: float = VALIDATION_FRACTION,
    allow_leaky: bool = False,
    check_leakage: bool = True,
    random_state: int = 0,
    progress: Callable[[str], None] | None = None,
) -> TrainingResult:
    """Compare the candidates on the latest period, choose by log loss and refit on all labelled examples.

    Parameters
    ----------
    data : LabelledData
        From :func:`training_data_from_crm` or :func:`leadscore.model.flat_table.load_flat_table`.
    candidates : sequence of str
        Any of "logistic", "gradient_boosting", "naive_bayes", "blend" (the blend's members are fitted and
        reported too).
    calibration : {"sigmoid", "isotonic", "none"}
        How the candidates are calibrated (each is also scored uncalibrated).
    validation_fraction : float
        The latest share of examples used for validation.
    allow_leaky : bool
        Train even when the leakage guard flags columns (they are reported in the result).
    check_leakage : bool
        Run the leakage guard at all.

    Raises
    ------
    LeakageError
        When columns look leaky and ``allow_leaky`` is False.
    ValueError
        When all examples have the same label.

    Examples
    --------
    >>> from leadscore.model.flat_table import load_flat_table
    >>> data = load_flat_table("bank.csv", "y", drop=["duration"], row_order_is_time=True)  # doctest: +SKIP
    >>> result = train(data)  # doctest: +SKIP
    >>> result.chosen.label  # doctest: +SKIP
    'gradient_boosting (sigmoid)'
    """
    with limited_threads():
        return _train(
            data,
            candidates,
            calibration,
            validation_fraction,
            allow_leaky,
            check_leakage,
            random_state,
            progress or (lambda message: None),
        )


def _train(data, candidates, calibration, validation_fraction, allow_leaky, check_leakage, random_state, say):
    started = time.perf_counter()
    if calibration not in METHODS:
        raise ValueError(f"calibration {calibration!r} is not one of {list(METHODS)}")
    if data.positives == 0 or data.negatives == 0:
        raise ValueError(
            f"all {len(data)} examples are {'converted' if data.negatives == 0 else 'unconverted'}: nothing to learn"
        )
    settings: dict[str, object] = {
        "candidates": ",".join(candidates),
        "calibration": calibration,
        "validation_fraction": validation_fraction,
        "horizon": data.horizon,
        "time_kind": data.time_kind,
        "random_state": random_state,
        "min_class_count": MIN_CLASS_COUNT,
    }
    notes = list(data.notes)
    leaks: list[LeakyColumn] = []
    guard = None
    if check_leakage:
        say("checking for leaky columns")
        guard = check_columns(data.X, data.y, data.kinds, times=data.times, random_state=random_state)
        leaks = guard.leaks
        if leaks and not allow_leaky:
            raise LeakageError(leaks, guard)
        if leaks:
            guard = guard.allowing()
            notes.append(f"trained with leaky-looking columns (--allow-leaky): {sorted({x.column for x in leaks})}")
    if data.positives < MIN_CLASS_COUNT or data.negatives < MIN_CLASS_COUNT:
        return _cold_start(data, settings, leaks, notes, started, guard)

    split = time_split(data.times, data.horizon, validation_fraction, y=data.y, random_state=random_state)
    train_part, holdout = data.subset(split.train), data.subset(split.valid)
    if holdout.positives == 0 or holdout.negatives == 0:
        raise ValueError("the validation period holds only one class; more data (or a larger fraction) is needed")
    say(split.describe())
    results: list[CandidateResult] = []
    fitted_by_name: dict[str, tuple[TimeCalibratedClassifier, float]] = {}
    names = list(candidates)
    if "blend" in names:
        names = [*dict.fromkeys([*names, *BLEND_MEMBERS])]  # the blend needs its members fitted
    for name, estimator in make_candidates(data.kinds, names, random_state).items():
        say(f"fitting {name}")
        tick = time.perf_counter()
        fitted = _fit(estimator, calibration, train_part)
        seconds = time.perf_counter() - tick
        fitted_by_name[name] = (fitted, seconds)
        variants = [fitted] if calibration == "none" else [_uncalibrated(fitted), fitted]
        for variant in variants:
            results.append(_score(name, variant.method, variant, holdout, seconds))
    if "blend" in names:
        members = [fitted_by_name[m][0] for m in BLEND_MEMBERS]
        blend = LogOddsBlend([clone(m) for m in members]).set_fitted(members)
        seconds = sum(fitted_by_name[m][1] for m in BLEND_MEMBERS)
        results.append(_score("blend", calibration, blend, holdout, seconds))
    chosen = choose(results)
    later = {}
    if split.time_ordered:
        say("fitting the plain logistic regression the later period's calibration is compared with")
        later = compare_later_period(holdout.y, chosen.probabilities, baseline_probabilities(train_part, holdout))
    say(f"chosen: {chosen.label}; refitting on all {len(data)} examples")
    final = clone(chosen.model).fit(data.X, data.y, times=data.times)
    return TrainingResult(
        data=data,
        split=split,
        results=results,
        chosen=chosen,
        model=final,
        cold_start=False,
        leaks=leaks,
        guard=guard,
        settings=settings,
        notes=notes,
        seconds=time.perf_counter() - started,
        later_period=later,
    )


def training_data_from_crm(
    data,
    *,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    cutoffs=None,
    extra_types=(),
    attributes: AttributeSelection | None = None,
) -> LabelledData:
    """Labelled weekly snapshots of a CRM data set: point-in-time features, label "won within H days".

    ``extra_types`` are unknown event types with features of their own (score with the same ones). Of the lead
    attributes, a bounded selection is used (``attributes``, default ``AttributeSelection()``: see
    :mod:`leadscore.model.attribute_selection`); it is recorded in ``choices["attributes"]`` and the notes, and
    only the chosen columns are ever built into features.

    Examples
    --------
    >>> from leadscore.simulation.simulator import simulate
    >>> labelled = training_data_from_crm(simulate(n_leads=300, months=6, seed=1).data)  # doctest: +SKIP
    >>> labelled.time_kind  # doctest: +SKIP
    'cutoff'
    """
    from leadscore.features.history import attribute_frame, attribute_names, prepare_events
    from leadscore.features.training_set import build_training_set, label_snapshots
    from leadscore.model.attribute_selection import select_attributes

    # Events encoded once, without attributes; the chosen attributes are added once they are known.
    prepared = prepare_events(data.leads, data.events, attributes=[])
    snapshots = label_snapshots(data, cutoffs, horizon_days, prepared=prepared)
    report = select_attributes(data.leads, snapshots, horizon_days=horizon_days, settings=attributes)
    chosen = set(report.chosen)  # built in the table's order, as Spark builds them: the same frame either way
    prepared.attributes = attribute_frame(data.leads, [a for a in attribute_names(data.leads) if a in chosen])
    frame = build_training_set(
        data, cutoffs=cutoffs, horizon_days=horizon_days, extra_types=tuple(extra_types), prepared=prepared
    )
    labelled = labelled_from_training_set(frame, horizon_days)
    labelled.notes[:0] = report.notes()
    labelled.choices["attributes"] = report.as_dict()
    return labelled


def labelled_from_training_set(frame: pd.DataFrame, horizon_days: float = DEFAULT_HORIZON_DAYS) -> LabelledData:
    """Labelled data from a training-set frame (``lead_id, cutoff, label, <features>``), wherever it was built.

    Feature kinds come from the catalogue; lead attributes, which arrive as text from CSV exports, are typed once
    per lead. The rows are put in (cutoff, lead_id) order, so that the labelled data does not depend on the order
    the rows were built in (Spark returns them in no particular order). Used by :func:`training_data_from_crm` and
    by the Spark engine on the collected frame.
    """
    frame = frame.sort_values(["cutoff", "lead_id"], kind="stable").reset_index(drop=True)
    from leadscore.data.times import epoch_days
    from leadscore.features.catalogue import CATALOGUE_VERSION, KEY_COLUMNS, attribute_of, feature_spec
    from leadscore.model.kinds import infer_kind

    features = [c for c in frame.columns if c not in (*KEY_COLUMNS, "label")]
    kinds, notes = {}, []
    per_lead = frame.drop_duplicates("lead_id")  # attributes are static: judge them once per lead
    for name in features:
        spec = feature_spec(name)
        if spec.group != "static":
            kinds[name] = spec.kind
            continue
        # Lead attributes arrive as text from CSV exports: numbers, flags and dates are recognised here.
        kind, reason = infer_kind(per_lead[name])
        if kind is None:
            notes.append(f"lead attribute {attribute_of(name) or name!r} left out: {reason}")
        else:
            kinds[name] = kind
    features = list(kinds)
    cutoff = pd.to_datetime(frame["cutoff"], utc=True)
    times = epoch_days(cutoff)
    n_cutoffs = cutoff.nunique()
    return LabelledData(
        X=frame[features].reset_index(drop=True),
        y=frame["label"].to_numpy(dtype=int),
        times=times,
        horizon=float(horizon_days),
        kinds=kinds,
        source="crm",
        time_kind="cutoff",
        description=(
            f"CRM snapshots: {len(frame)} (lead, cutoff) pairs over {n_cutoffs} weekly cutoffs, label = won within "
            f"{horizon_days:g} days, feature catalogue {CATALOGUE_VERSION}"
        ),
        notes=notes,
        ids=frame["lead_id"].to_numpy(),
    )
