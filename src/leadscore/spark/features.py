"""Point-in-time features and the training set on Spark, by running the pandas builder per lead-hash bucket.

The pandas builder (:func:`leadscore.features.builder.build_features`,
:func:`leadscore.features.training_set.build_training_set`) is partition invariant: a lead's rows depend on that
lead's history and the cutoff alone (docs/architecture.md). So Spark only has to bring each lead's complete
history together: leads and events are both keyed by ``pmod(xxhash64(lead_id), n_buckets)``, co-grouped on that
bucket, and each bucket's leads and events go through the very same pandas function
(``cogroup(...).applyInPandas``). No feature is written twice: the Spark
output schema is the pandas builder's own output on empty input, mapped to Spark types.

What is global is computed once on the driver and handed to every bucket: the cutoffs (the weekly grid from
the first lead to the data's end) and the data's end, which decides which cutoffs are censored. A bucket's own
latest event is not the data's end.

Memory: a bucket is one pandas frame in one Python worker, so ``n_buckets`` bounds the memory of a task. The
default aims at about :data:`EVENTS_PER_BUCKET` events per bucket (and no fewer buckets than shuffle partitions).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from leadscore.data.contracts import EVENTS, EXPENSES, GOALS, LEADS, CrmData, empty
from leadscore.features.builder import build_features
from leadscore.features.history import cutoff_timestamp
from leadscore.features.training_set import HORIZON_DAYS, build_training_set, label_snapshots, weekly_cutoffs
from leadscore.spark.frames import (
    BUCKET,
    NOT_FEATURE_EVENT_COLUMNS,
    ORDER,
    SparkCrm,
    collect,
    empty_pandas,
    from_wire,
    from_wire_spark,
    spark_schema,
    to_wire,
    wire_columns,
)

EVENTS_PER_BUCKET = 1_000_000

Builder = Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame]


@dataclass
class _Slice(CrmData):
    """Some leads' complete histories, whose ``end`` is the whole data set's end (for censoring)."""

    known_end: pd.Timestamp | None = None

    @property
    def end(self) -> pd.Timestamp:  # type: ignore[override]
        return self.known_end


def _slice(leads: pd.DataFrame, events: pd.DataFrame, end: pd.Timestamp) -> _Slice:
    return _Slice(leads, events, _EMPTY_GOALS, _EMPTY_EXPENSES, known_end=end)


_EMPTY_GOALS = empty(GOALS)
_EMPTY_EXPENSES = empty(EXPENSES)
_EMPTY_EVENTS = empty(EVENTS)


def known_by(crm: SparkCrm, t: pd.Timestamp) -> SparkCrm:
    """Only the leads created and the events that happened at or before ``t``.

    The builder uses nothing later (point in time), so this changes no row; it only spares the shuffle the
    rest (and Parquet readers skip what the filter rules out).
    """
    micros = t.value // 1_000  # Spark timestamps are in microseconds
    return SparkCrm(
        crm.leads.where(F.unix_micros(F.col("created_at")) <= micros),
        crm.events.where(F.unix_micros(F.col("at")) <= micros),
    )


def n_buckets_for(crm: SparkCrm, events_per_bucket: int = EVENTS_PER_BUCKET) -> int:
    """How many lead-hash buckets to use: about ``events_per_bucket`` events each, at least the shuffle
    partitions (counts the events: one Spark job, cheap on Parquet).

    Examples
    --------
    >>> n_buckets_for(crm)  # doctest: +SKIP
    8
    """
    partitions = int(crm.events.sparkSession.conf.get("spark.sql.shuffle.partitions"))
    return max(partitions, math.ceil(crm.events.count() / events_per_bucket))


def _time_columns(frame: DataFrame) -> list[str]:
    return [f.name for f in frame.schema.fields if isinstance(f.dataType, T.TimestampType | T.TimestampNTZType)]


def per_lead_bucket(crm: SparkCrm, builder: Builder, *, n_buckets: int | None = None) -> DataFrame:
    """Run a partition-invariant pandas ``builder(leads, events)`` on every lead-hash bucket; union the results.

    ``builder`` gets a bucket's leads (all their columns) and their events (in input order, without the
    per-event identifiers), with UTC timestamps, as pandas frames, and must return a frame whose rows depend on
    each lead's own rows only. Its output on empty input fixes the Spark schema.

    Examples
    --------
    >>> counts = per_lead_bucket(crm, lambda leads, events: events.groupby("lead_id", as_index=False).size())
    ... # doctest: +SKIP
    """
    n_buckets = n_buckets or n_buckets_for(crm)
    if n_buckets < 1:
        raise ValueError(f"n_buckets must be at least 1, got {n_buckets}")
    events = crm.events.drop(*[c for c in NOT_FEATURE_EVENT_COLUMNS if c in crm.events.columns])
    lead_times, event_times = _time_columns(crm.leads), _time_columns(events)
    schema, out_times = spark_schema(builder(empty_pandas(crm.leads), empty_pandas(events.drop(ORDER))))
    bucket = F.pmod(F.xxhash64("lead_id"), F.lit(n_buckets))
    leads_w = wire_columns(crm.leads, lead_times).withColumn(BUCKET, bucket)
    events_w = wire_columns(events, event_times).withColumn(BUCKET, bucket)

    def run(leads_pdf: pd.DataFrame, events_pdf: pd.DataFrame) -> pd.DataFrame:
        leads = from_wire(leads_pdf.drop(columns=[BUCKET]), lead_times)
        events = from_wire(events_pdf.drop(columns=[BUCKET]), event_times)
        events = events.sort_values(ORDER, kind="stable").drop(columns=[ORDER]).reset_index(drop=True)
        return to_wire(builder(leads.reset_index(drop=True), events))

    grouped = leads_w.groupBy(BUCKET).cogroup(events_w.groupBy(BUCKET))
    return from_wire_spark(grouped.applyInPandas(run, schema=schema), out_times)


def feature_frame(
    crm: SparkCrm,
    cutoff: object,
    *,
    extra_types: Sequence[str] = (),
    n_buckets: int | None = None,
) -> DataFrame:
    """:func:`leadscore.features.builder.build_features` on Spark: one row per lead open at ``cutoff``.

    Same columns and values as the pandas builder on the same data (rows in no particular order).

    Examples
    --------
    >>> from leadscore.spark import get_spark, read_crm
    >>> features = feature_frame(read_crm(get_spark(), "data/demo"), "2025-06-30")  # doctest: +SKIP
    >>> features.write.parquet("features.parquet")  # doctest: +SKIP
    """
    t = cutoff_timestamp(cutoff)
    vocabulary = tuple(extra_types)

    def build(leads: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
        return build_features(leads, events, t, extra_types=vocabulary)

    return per_lead_bucket(known_by(crm, t), build, n_buckets=n_buckets)


def training_cutoffs(
    crm: SparkCrm, cutoffs: Iterable[object] | None = None, horizon_days: float = HORIZON_DAYS
) -> tuple[list[pd.Timestamp], pd.Timestamp]:
    """The labelled cutoffs (uncensored: horizon within the data) and the data's end, from the whole data set.

    ``cutoffs`` defaults to the weekly grid of :func:`leadscore.features.training_set.weekly_cutoffs`.
    """
    if horizon_days <= 0:
        raise ValueError(f"horizon_days must be positive, got {horizon_days}")
    first, end = crm.span()
    if end is None:
        raise ValueError("the data set has no leads and no events: nothing to build a training set from")
    if cutoffs is None:
        cutoffs = weekly_cutoffs(_slice(empty(LEADS), _EMPTY_EVENTS, end), start=first, end=end)
    horizon = pd.Timedelta(days=horizon_days)
    return sorted({t for t in map(cutoff_timestamp, cutoffs) if t + horizon <= end}), end


def training_set(
    crm: SparkCrm,
    cutoffs: Iterable[object] | None = None,
    horizon_days: float = HORIZON_DAYS,
    *,
    extra_types: Sequence[str] = (),
    n_buckets: int | None = None,
) -> DataFrame:
    """:func:`leadscore.features.training_set.build_training_set` on Spark: labelled snapshots with their features.

    Cutoffs and censoring are decided on the whole data set (see :func:`training_cutoffs`); each bucket then
    builds its leads' snapshots with the pandas function.

    Examples
    --------
    >>> from leadscore.spark import get_spark, read_crm
    >>> snapshots = training_set(read_crm(get_spark(), "data/demo"), horizon_days=90)  # doctest: +SKIP
    >>> snapshots.groupBy("label").count().show()  # doctest: +SKIP
    """
    chosen, end = training_cutoffs(crm, cutoffs, horizon_days)
    vocabulary = tuple(extra_types)

    def build(leads: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
        return build_training_set(_slice(leads, events, end), chosen, horizon_days, extra_types=vocabulary)

    if chosen:  # nothing after the last label window matters
        crm = known_by(crm, chosen[-1] + pd.Timedelta(days=horizon_days))
    return per_lead_bucket(crm, build, n_buckets=n_buckets)


def snapshot_counts(
    crm: SparkCrm,
    cutoffs: Iterable[object] | None = None,
    horizon_days: float = HORIZON_DAYS,
    *,
    n_buckets: int | None = None,
) -> pd.DataFrame:
    """How many labelled snapshots each cutoff has (``cutoff``, ``count``), without their features.

    :func:`leadscore.features.training_set.label_snapshots` per bucket, counted per cutoff on the cluster: what
    the choice of the event vocabulary needs to know where training's validation period will start.

    Examples
    --------
    >>> snapshot_counts(read_crm(get_spark(), "data/demo"), horizon_days=90).head(2)  # doctest: +SKIP
    """
    chosen, end = training_cutoffs(crm, cutoffs, horizon_days)

    def build(leads: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
        return label_snapshots(_slice(leads, events, end), chosen, horizon_days)[["lead_id", "cutoff"]]

    if chosen:
        crm = known_by(crm, chosen[-1] + pd.Timedelta(days=horizon_days))
    counts = collect(per_lead_bucket(crm, build, n_buckets=n_buckets).groupBy("cutoff").count())
    return counts.sort_values("cutoff", ignore_index=True)


__all__ = [
    "EVENTS_PER_BUCKET",
    "feature_frame",
    "known_by",
    "n_buckets_for",
    "per_lead_bucket",
    "snapshot_counts",
    "training_cutoffs",
    "training_set",
]
