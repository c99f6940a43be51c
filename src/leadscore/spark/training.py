"""Training with the training set built on Spark: snapshots on the cluster, the model fitted on the driver.

:func:`train_spark` builds the labelled snapshots with :func:`leadscore.spark.features.training_set` (the pandas
builder per lead bucket), brings them to the driver (all of them, or a stated sample of the leads), and runs the
same training and MLflow tracking as ``leadscore train``: :func:`leadscore.model.training.train` then
:func:`leadscore.registry.register` (run, registered version, ``challenger`` alias, promotion gate). The run's
parameters say that Spark built the set and which share of the leads was kept.

Sampling is by lead (a hash of ``lead_id``), not by row: a lead kept is kept at every cutoff, so every kept
lead's run of weekly snapshots stays whole, as it is in the full training set.

:func:`leadscore.model.training.labelled_from_training_set`, the step :func:`training_data_from_crm` ends with, turns
the collected rows (in whatever order Spark returns them) into the same labelled data as the pandas engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from leadscore.data.contracts import KNOWN_EVENT_TYPES
from leadscore.features.catalogue import CATALOGUE_VERSION
from leadscore.features.training_set import HORIZON_DAYS
from leadscore.features.vocabulary import EventVocabulary, VocabularyRule, vocabulary_from_counts
from leadscore.model.event_vocabulary import last_training_cutoff, repeat_counts
from leadscore.model.splits import VALIDATION_FRACTION
from leadscore.model.training import labelled_from_training_set
from leadscore.spark.features import known_by, snapshot_counts, training_set
from leadscore.spark.frames import SparkCrm, collect

_SAMPLE_BUCKETS = 1_000_000


def top_unknown_types_spark(crm: SparkCrm, k: int = 5) -> tuple[str, ...]:
    """:func:`leadscore.features.builder.top_unknown_types` over a Spark events table: the ``k`` most frequent event
    types the catalogue does not know, ties broken by name (one aggregation; the counts come to the driver).

    Examples
    --------
    >>> top_unknown_types_spark(crm, k=2)  # doctest: +SKIP
    ('webinar', 'chat')
    """
    counts = (
        crm.events.where(F.col("type").isNotNull() & ~F.col("type").isin(list(KNOWN_EVENT_TYPES)))
        .groupBy("type")
        .count()
        .orderBy(F.desc("count"), F.asc("type"))
        .limit(k)
        .collect()
    )
    return tuple(str(row["type"]) for row in counts)


def event_vocabulary_spark(
    crm: SparkCrm,
    *,
    horizon_days: float = HORIZON_DAYS,
    cutoffs: Iterable[object] | None = None,
    validation_fraction: float = VALIDATION_FRACTION,
    rule: VocabularyRule = VocabularyRule(),
    n_buckets: int | None = None,
) -> EventVocabulary:
    """:func:`leadscore.model.event_vocabulary.training_vocabulary` on Spark: the vocabulary of unknown event
    types chosen from the events known at the last training cutoff (two aggregations; counts to the driver).

    Examples
    --------
    >>> event_vocabulary_spark(crm, horizon_days=90).types  # doctest: +SKIP
    ('webinar', 'chat')
    """
    per_cutoff = snapshot_counts(crm, cutoffs, horizon_days, n_buckets=n_buckets)
    before = last_training_cutoff(repeat_counts(per_cutoff), horizon_days, validation_fraction)
    events = crm.events if before is None else known_by(crm, before).events
    rows = events.where(F.col("type").isNotNull()).groupBy("type").count().collect()
    counts = pd.Series({str(row["type"]): int(row["count"]) for row in rows}, dtype="int64")
    return vocabulary_from_counts(counts, rule, before=before)


def sample_leads(frame: DataFrame, fraction: float, seed: int = 0) -> DataFrame:
    """The rows of a ``fraction`` of the leads, chosen by a hash of ``lead_id`` (all of a lead's rows or none)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"the sample fraction must be in (0, 1], got {fraction}")
    if fraction == 1:
        return frame
    bucket = F.pmod(F.xxhash64(F.col("lead_id"), F.lit(seed)), F.lit(_SAMPLE_BUCKETS))
    return frame.where(bucket < F.lit(int(round(fraction * _SAMPLE_BUCKETS))))


@dataclass(kw_only=True)
class SparkTraining:
    """What :func:`train_spark` did: the training result, the registered version (if any), the sample."""

    result: object  # leadscore.model.training.TrainingResult
    registered: object | None  # leadscore.registry.Registered
    extra_types: tuple[str, ...]
    sample_fraction: float
    rows: int


def train_spark(
    crm: SparkCrm,
    *,
    horizon_days: float = HORIZON_DAYS,
    cutoffs: Iterable[object] | None = None,
    sample_fraction: float = 1.0,
    max_rows: int | None = None,
    drop: Sequence[str] = (),
    register: bool = True,
    tracking_uri: str | None = None,
    n_buckets: int | None = None,
    vocabulary_rule: VocabularyRule | None = None,
    progress: Callable[[str], None] | None = None,
    **train_options,
) -> SparkTraining:
    """Build the training set on Spark, train on the driver, track and register as ``leadscore train`` does.

    Parameters
    ----------
    crm : SparkCrm
        Leads and events (:func:`leadscore.spark.read_crm`).
    horizon_days, cutoffs
        As in :func:`leadscore.features.training_set.build_training_set` (default: every labelled weekly cutoff).
    sample_fraction : float
        Share of the leads whose snapshots come to the driver (sampled by lead).
    max_rows : int, optional
        Lower the fraction so that about this many snapshots come to the driver (counts them first).
    drop : sequence of str
        Feature columns to leave out of the model (as ``leadscore train --drop``).
    register : bool
        Log the run to MLflow, register the model and apply the promotion gate.
    vocabulary_rule : VocabularyRule, optional
        How the unknown event types with features of their own are chosen (from the training events only;
        default: at least 1 % of the events, at most 30), as ``leadscore train`` chooses them.
    **train_options
        Passed to :func:`leadscore.model.training.train` (``candidates``, ``calibration``, ...).

    Examples
    --------
    >>> from leadscore.spark import get_spark, read_crm
    >>> outcome = train_spark(read_crm(get_spark(), "data/demo"), max_rows=2_000_000)  # doctest: +SKIP
    >>> outcome.registered.version, outcome.sample_fraction  # doctest: +SKIP
    ('4', 0.35)
    """
    from leadscore import registry
    from leadscore.model.training import train

    say = progress or (lambda message: None)
    say("choosing the vocabulary of unknown event types from the training events")
    vocabulary = event_vocabulary_spark(
        crm,
        horizon_days=horizon_days,
        cutoffs=cutoffs,
        validation_fraction=train_options.get("validation_fraction", VALIDATION_FRACTION),
        rule=vocabulary_rule or VocabularyRule(),
        n_buckets=n_buckets,
    )
    extra_types = vocabulary.types
    snapshots = training_set(crm, cutoffs, horizon_days, extra_types=extra_types, n_buckets=n_buckets)
    if max_rows is not None:
        snapshots = snapshots.persist()
        total = snapshots.count()
        sample_fraction = min(sample_fraction, max_rows / total) if total else sample_fraction
        say(f"{total:,} snapshots on Spark; keeping {sample_fraction:.3g} of the leads for the driver")
    say("building the training set on Spark and collecting it to the driver")
    frame = collect(sample_leads(snapshots, sample_fraction))
    if max_rows is not None:
        snapshots.unpersist()
    labelled = labelled_from_training_set(frame, horizon_days).without_features(drop)
    labelled.notes.append(vocabulary.describe())
    if sample_fraction < 1:
        labelled.notes.append(f"trained on the snapshots of a {sample_fraction:.3g} sample of the leads (by lead id)")
    result = train(labelled, progress=say, **train_options)
    registered = None
    if register:
        say("logging the run to MLflow and applying the promotion gate")
        registered = registry.register(
            result,
            uri=tracking_uri,
            catalogue_version=CATALOGUE_VERSION,
            extra_types=extra_types,
            extra_params={"engine": "spark", "sample_fraction": f"{sample_fraction:.6g}", **vocabulary.params()},
        )
    return SparkTraining(
        result=result,
        registered=registered,
        extra_types=tuple(extra_types),
        sample_fraction=float(sample_fraction),
        rows=len(frame),
    )
