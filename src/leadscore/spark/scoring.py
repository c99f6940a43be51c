"""Batch scoring on Spark: the registered champion through MLflow's Spark UDF, written to Parquet.

:func:`score_spark` builds the features of the leads open at a cutoff with the pandas builder per lead bucket
(:func:`leadscore.spark.features.feature_frame`), applies the registered model with
``mlflow.pyfunc.spark_udf`` (the model is logged with ``pyfunc_predict_fn="predict_proba"``, so the UDF returns
both class probabilities; the second is P(won within the horizon)) and adds the grade, the percentile, the model
version and the cutoff, as :class:`leadscore.serving.scorer.Scorer` does for the same leads. The reasons (per-feature
contributions) are not computed on Spark: use the Scorer (or the API) for the leads you look at.

The alias is resolved once, on the driver, to a version number, and the UDF loads that version: if the alias
moves while the job runs, every row is still scored by, and labelled with, the same version.

Percentiles: ``percentile_of="reference"`` places each probability among the validation scores the model was
chosen on (per row, fully parallel); ``"batch"`` (the Scorer's default) among all the leads scored together,
which needs the count of scores at or below each distinct probability: a cumulative sum over the distinct
probabilities in one task (16 bytes per distinct value).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from leadscore import registry
from leadscore.grades import DEFAULT_GRADE_CUTOFFS, check_grade_cutoffs, grades, percent, reference_percentiles
from leadscore.spark.features import feature_frame
from leadscore.spark.frames import SparkCrm

SCORE_COLUMNS: tuple[str, ...] = (
    "lead_id",
    "probability",
    "grade",
    "percentile",
    "model_version",
    "cutoff",
    "provisional",
)
# The model's signature types (MLflow names) as the Spark types the UDF's input columns are cast to: the pandas
# types MLflow accepts for each (a long must reach it as int64, not as a double; models logged before the
# signature typed whole numbers as long say double there).
_SIGNATURE_TO_SPARK = {"double": "double", "float": "float", "long": "long", "integer": "int",
                       "string": "string", "boolean": "boolean"}  # fmt: skip


def champion_model(alias: str = registry.CHAMPION, tracking_uri: str | None = None):
    """The version an alias stands for, its ``models:/`` URI, its :class:`~leadscore.registry.ModelCard` and
    its MLflow model info (signature included), read from the registry without loading the model.

    Raises
    ------
    LookupError
        When no version has the alias.
    ValueError
        When the version's artifact trusts types leadscore does not (see :data:`registry.SKOPS_TRUSTED_TYPES`).
    """
    import mlflow

    uri = registry.tracking_uri(tracking_uri)
    version = registry.resolve_version(alias, uri)  # also points MLflow at the store
    model_uri = f"models:/{registry.MODEL_NAME}/{version}"
    info = mlflow.models.get_model_info(model_uri)
    trusted = (info.flavors.get("sklearn") or {}).get("skops_trusted_types") or []
    extra = sorted(set(trusted) - set(registry.SKOPS_TRUSTED_TYPES))
    if extra:
        raise ValueError(f"model version {version} trusts types leadscore does not: {extra}; refusing to load it")
    card = registry.ModelCard.from_dict((info.metadata or {}).get(registry.METADATA_KEY, {}), version)
    return version, model_uri, card, info


def _model_inputs(features: DataFrame, info, card: registry.ModelCard) -> list:
    """The model's input columns, in its signature's order, cast to its signature's types (an optional column the
    frame lacks is left out: the model reads it as missing)."""
    if info.signature is None:
        types, required = dict.fromkeys(card.kinds, ""), set(card.kinds)
    else:
        specs = info.signature.inputs.inputs
        types = {c.name: getattr(c.type, "name", "") for c in specs}  # AnyType: no name
        required = {c.name for c in specs if c.required}
    absent = [c for c in types if c not in features.columns and c in required]
    if absent:
        raise ValueError(f"column(s) {absent[:10]} missing from the feature frame (model version {card.version})")
    return [
        F.col(f"`{name}`").cast(_SIGNATURE_TO_SPARK[kind]).alias(name)
        if kind in _SIGNATURE_TO_SPARK
        else F.col(f"`{name}`")
        for name, kind in types.items()
        if name in features.columns
    ]


def add_probability(features: DataFrame, model_uri: str, info, card: registry.ModelCard) -> DataFrame:
    """``features`` with ``probability``: the model's P(won) from MLflow's Spark UDF (``predict_proba``)."""
    import mlflow

    spark = features.sparkSession
    udf = mlflow.pyfunc.spark_udf(spark, model_uri, result_type=T.ArrayType(T.DoubleType()), env_manager="local")
    inputs = _model_inputs(features, info, card)
    return features.withColumn("probability", udf(F.struct(*inputs)).getItem(1))


def _grade_udf(cutoffs: Sequence[tuple[str, float]]):
    cutoffs = tuple(cutoffs)

    @F.pandas_udf(T.StringType())
    def grade(probability: pd.Series) -> pd.Series:
        return pd.Series(grades(probability.to_numpy(dtype=float), cutoffs), index=probability.index, dtype=object)

    return grade


@F.pandas_udf(T.DoubleType())
def _percent(at_or_below: pd.Series, n: pd.Series) -> pd.Series:
    """:func:`leadscore.grades.percent`: the share of the batch at or below, as the Scorer computes it."""
    return pd.Series(percent(at_or_below.to_numpy(dtype=float), n.to_numpy(dtype=float)))


def _reference_udf(reference: Sequence[float]):
    quantiles = np.asarray(reference, dtype=float)

    @F.pandas_udf(T.DoubleType())
    def percentile(probability: pd.Series) -> pd.Series:
        """:func:`leadscore.grades.reference_percentiles`, as the Scorer computes it."""
        return pd.Series(reference_percentiles(probability.to_numpy(dtype=float), quantiles))

    return percentile


def add_percentile(scored: DataFrame, card: registry.ModelCard, percentile_of: str = "batch") -> DataFrame:
    """``scored`` (with ``probability``) plus ``percentile`` (0-100), among the batch or the model's reference."""
    if percentile_of == "reference":
        return scored.withColumn("percentile", _reference_udf(card.reference_quantiles)("probability"))
    if percentile_of != "batch":
        raise ValueError(f"percentile_of must be 'batch' or 'reference', got {percentile_of!r}")
    n = scored.count()
    distinct = scored.groupBy("probability").agg(F.count(F.lit(1)).alias("_k"))
    running = Window.orderBy("probability").rowsBetween(Window.unboundedPreceding, Window.currentRow)
    at_or_below = distinct.withColumn("_le", F.sum("_k").over(running)).drop("_k")
    joined = scored.join(at_or_below, on="probability", how="left")
    return joined.withColumn("percentile", _percent(F.col("_le"), F.lit(n))).drop("_le")


def score_spark(
    crm: SparkCrm,
    cutoff: object = None,
    *,
    alias: str = registry.CHAMPION,
    tracking_uri: str | None = None,
    percentile_of: str = "batch",
    grade_cutoffs: Sequence[tuple[str, float]] = DEFAULT_GRADE_CUTOFFS,
    n_buckets: int | None = None,
) -> DataFrame:
    """Score every lead open at ``cutoff`` with a registered model, on Spark.

    Parameters
    ----------
    crm : SparkCrm
        Leads and events (:func:`leadscore.spark.read_crm`).
    cutoff : timestamp-like, optional
        Score as of this time; default the data's end (its latest event or lead creation).
    alias : str
        Alias (``champion``) or version number of the registered model ``leadscore``.
    tracking_uri : str, optional
        The MLflow store; default as :func:`leadscore.registry.tracking_uri`.
    percentile_of : {"batch", "reference"}
        As in :meth:`leadscore.serving.scorer.Scorer.score_features`.
    grade_cutoffs : sequence of (letter, probability floor)
        As in :class:`leadscore.serving.scorer.Scorer`.

    Returns
    -------
    DataFrame
        ``lead_id``, ``probability``, ``grade``, ``percentile``, ``model_version``, ``cutoff``, ``provisional``.
        With ``percentile_of="batch"`` the features and probabilities are computed here, once, and kept on the
        executors (``localCheckpoint``) until the result is garbage collected.

    Examples
    --------
    >>> from leadscore.spark import get_spark, read_crm
    >>> scores = score_spark(read_crm(get_spark(), "data/demo"))  # doctest: +SKIP
    >>> scores.write.parquet("scores.parquet")  # doctest: +SKIP
    """
    grade_cutoffs = check_grade_cutoffs(grade_cutoffs)  # on the driver, before any work
    version, model_uri, card, info = champion_model(alias, tracking_uri)
    if card.source != "crm":
        raise ValueError(
            f"model version {version} was trained on a flat table, not on CRM events: it cannot score leads "
            "from their history"
        )
    if cutoff is None:
        _, cutoff = crm.span()
        if cutoff is None:
            raise ValueError("the data set has no leads and no events: nothing to score")
    features = feature_frame(crm, cutoff, extra_types=tuple(card.extra_types), n_buckets=n_buckets)
    scored = add_probability(features, model_uri, info, card).select("lead_id", "cutoff", "probability")
    if percentile_of == "batch":  # read twice (the count, then the rows): compute features and model once
        scored = scored.localCheckpoint(eager=True)
    scored = add_percentile(scored, card, percentile_of)
    scored = scored.withColumns(
        {
            "grade": _grade_udf(grade_cutoffs)("probability"),
            "model_version": F.lit(str(version)),
            "provisional": F.lit(bool(card.cold_start)),
        }
    )
    return scored.select(*SCORE_COLUMNS)


def write_scores(scores: DataFrame, out: str | Path, *, mode: str = "overwrite") -> None:
    """Write scores to Parquet (a folder of part files, as Spark writes), or a table when ``out`` is
    ``table:<name>``.

    Examples
    --------
    >>> write_scores(scores, "scores.parquet")  # doctest: +SKIP
    >>> write_scores(scores, "table:analytics.lead_scores")  # doctest: +SKIP
    """
    target = str(out)
    if target.startswith("table:"):
        scores.write.mode(mode).saveAsTable(target[len("table:") :])
    else:
        scores.write.mode(mode).parquet(target)
