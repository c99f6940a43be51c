"""leadscore on Apache Spark: the same feature builder and the same registered model, past one machine.

Needs the ``spark`` extra (``pip install 'leadscore[spark]'``, pyspark 4) and Java 17 or newer.

- :mod:`~leadscore.spark.session`: :func:`get_spark`, local, under spark-submit, or Spark Connect;
- :mod:`~leadscore.spark.frames`: :func:`read_crm` and :func:`crm_to_spark`, leads and events as Spark
  DataFrames;
- :mod:`~leadscore.spark.features`: :func:`feature_frame` and :func:`training_set`, the pandas builder run per
  lead-hash bucket;
- :mod:`~leadscore.spark.scoring`: :func:`score_spark`, batch scoring with the registered champion through
  MLflow's Spark UDF;
- :mod:`~leadscore.spark.training`: :func:`train_spark`, the training set built on Spark, the model trained
  and tracked on the driver.
"""

from __future__ import annotations

try:
    import pyspark  # noqa: F401
except ImportError as err:  # pragma: no cover - depends on the installation
    raise ImportError(
        "leadscore.spark needs pyspark: install the spark extra (pip install 'leadscore[spark]')"
    ) from err

from leadscore.spark.features import feature_frame, n_buckets_for, per_lead_bucket, training_set
from leadscore.spark.frames import SparkCrm, collect, crm_to_spark, normalise, read_crm
from leadscore.spark.session import get_spark

__all__ = [
    "SparkCrm",
    "collect",
    "crm_to_spark",
    "feature_frame",
    "get_spark",
    "n_buckets_for",
    "normalise",
    "per_lead_bucket",
    "read_crm",
    "training_set",
]
