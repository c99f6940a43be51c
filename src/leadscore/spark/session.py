"""A SparkSession for leadscore: local, on a cluster through spark-submit, or remote through Spark Connect.

Which one :func:`get_spark` returns, in order of precedence:

1. ``remote`` (``--spark-remote``) or the ``SPARK_REMOTE`` environment variable, e.g. ``sc://spark-host:15002``:
   a Spark Connect session (the driver is the Connect server; this process is a thin client);
2. an active session (in a notebook that already has one): it is reused, with the settings below added;
3. under ``spark-submit`` (no ``master`` given): a session on spark-submit's master, with its resources;
4. otherwise a local session, ``master`` (default ``local[*]``), for a laptop, the tests and the benchmark.

Settings leadscore needs, in every case (also on a session it reuses): the session time zone is UTC, since
leadscore reads times written without an offset as UTC (timestamps cross into pandas as integers, so nothing
else depends on it); Arrow for pandas UDFs; and Parquet timestamps in nanoseconds (what pandas writes by
default, which Spark otherwise refuses) read as integers, which :mod:`leadscore.spark.frames` turns back into
timestamps; and Parquet written with UTC timestamps in microseconds (pandas reads them as UTC), not INT96.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from pyspark.sql import SparkSession

RUNTIME_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.legacy.parquet.nanosAsLong": "true",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}
LOCAL_CONF: dict[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.driver.memory": "2g",
}


def get_spark(
    master: str | None = None,
    *,
    remote: str | None = None,
    app_name: str = "leadscore",
    conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """A SparkSession configured for leadscore (see the module docstring for which one).

    Parameters
    ----------
    master : str, optional
        For a new local or classic session, e.g. ``"local[2]"``; default ``local[*]``.
    remote : str, optional
        A Spark Connect URL (``sc://host:15002``); default the ``SPARK_REMOTE`` environment variable.
    app_name : str
        The application's name in the cluster's UI.
    conf : mapping, optional
        Extra Spark settings for a new session (they override leadscore's local defaults).

    Examples
    --------
    >>> spark = get_spark("local[2]", conf={"spark.sql.shuffle.partitions": "4"})  # doctest: +SKIP
    >>> spark.conf.get("spark.sql.session.timeZone")  # doctest: +SKIP
    'UTC'
    """
    remote = remote or os.environ.get("SPARK_REMOTE")
    extra = dict(conf or {})
    if remote:
        builder = SparkSession.builder.remote(remote).appName(app_name)
        for key, value in {**RUNTIME_CONF, **extra}.items():
            builder = builder.config(key, value)
        return builder.getOrCreate()
    active = SparkSession.getActiveSession()
    if active is not None:
        for key, value in RUNTIME_CONF.items():
            active.conf.set(key, value)
        return active
    if master is None and "PYSPARK_GATEWAY_PORT" in os.environ:
        # Started by spark-submit: its master, resources and Python environment stand; add only what we need.
        builder = SparkSession.builder.appName(app_name)
        settings = {**RUNTIME_CONF, **extra}
    else:
        # Python workers must import leadscore: in local mode they run this very interpreter.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        builder = SparkSession.builder.master(master or "local[*]").appName(app_name)
        settings = {**LOCAL_CONF, **RUNTIME_CONF, **extra}
    for key, value in settings.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
