"""Leads and events as Spark DataFrames, and how pandas frames cross between Spark and the pandas builder.

Reading: :func:`read_crm` reads a data set folder (``leads`` and ``events`` as ``.parquet`` or ``.csv``, each a
file or a folder of part files, as Spark writes them) and :func:`crm_to_spark` turns an in-memory
:class:`~leadscore.data.contracts.CrmData` into Spark DataFrames. Both give a :class:`SparkCrm`: ``lead_id`` as a
string, timestamps as Spark timestamps (Parquet written by pandas holds nanoseconds, which Spark reads as
integers; they are turned back here, rounded up to the microsecond Spark keeps, as are pandas frames' times),
and an ``_order`` column on the events that records the input order. The pandas builder breaks ties between a
lead's events at the same time by row order; after a shuffle, row order is gone, so ``_order`` carries it.

Crossing into pandas: timestamps travel as int64 microseconds since the epoch (:func:`to_wire` /
:func:`from_wire`), never as Spark timestamps, so neither the session time zone nor pandas' timestamp units
can change a value on the way. The Spark schema of a pandas result is derived from the pandas builder's own
output (:func:`spark_schema`), never written by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from leadscore.data.contracts import CrmData

ORDER = "_order"  # input order of the events, for ties between a lead's events at the same time
BUCKET = "_bucket"  # hash bucket of the lead id
LEAD_TIMES = ("created_at",)
EVENT_TIMES = ("at", "scheduled_for")
# Event columns the shuffle carries to the feature builder: the contract's, but the per-event identifiers
# (event_id, rep_id), which no lead feature reads. The Spark-against-pandas test keeps this honest: the pandas
# side gets every column.
NOT_FEATURE_EVENT_COLUMNS = ("event_id", "rep_id")

_SPARK_TO_PANDAS: dict[type, str] = {
    T.ByteType: "int8",
    T.ShortType: "int16",
    T.IntegerType: "int32",
    T.LongType: "int64",
    T.FloatType: "float32",
    T.DoubleType: "float64",
    T.BooleanType: "bool",
    T.StringType: "str",
}
_PANDAS_TO_SPARK: dict[str, T.DataType] = {
    "bool": T.BooleanType(),
    "int8": T.ByteType(),
    "int16": T.ShortType(),
    "int32": T.IntegerType(),
    "int64": T.LongType(),
    "float32": T.FloatType(),
    "float64": T.DoubleType(),
}


@dataclass
class SparkCrm:
    """Leads and events as Spark DataFrames, normalised by :func:`read_crm` or :func:`crm_to_spark`."""

    leads: DataFrame
    events: DataFrame

    def span(self) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
        """The first lead's creation and the data's end (latest event or lead creation), as UTC timestamps.

        The end is what :attr:`leadscore.data.contracts.CrmData.end` is for the same data (two small Spark jobs).
        Times come back as integers, so neither the session's nor this machine's time zone plays a part.
        """
        created = F.unix_micros(F.col("created_at"))
        leads = self.leads.agg(F.min(created).alias("first"), F.max(created).alias("last")).first()
        last_event = self.events.agg(F.max(F.unix_micros(F.col("at"))).alias("last")).first()["last"]
        ends = [t for t in (leads["last"], last_event) if t is not None]
        first = _from_micros(leads["first"]) if leads["first"] is not None else None
        return first, (_from_micros(max(ends)) if ends else None)


def _from_micros(micros: int) -> pd.Timestamp:
    return pd.Timestamp(int(micros), unit="us", tz="UTC").as_unit("ns")


def _time_column(frame: DataFrame, name: str) -> Column:
    """A timestamp column from whatever Spark read: a timestamp, nanoseconds as integers, or text."""
    kind = frame.schema[name].dataType
    if isinstance(kind, T.TimestampType):
        return F.col(name)
    if isinstance(kind, T.TimestampNTZType | T.DateType):
        return F.col(name).cast("timestamp")
    if isinstance(kind, T.LongType | T.IntegerType):  # Parquet TIMESTAMP(NANOS), read with nanosAsLong
        # Rounded up to the microsecond, in integers: never known earlier than it happened (see _for_spark).
        nanos = f"`{name}`"
        return F.timestamp_micros(F.expr(f"({nanos} + pmod(-{nanos}, 1000)) div 1000"))
    if isinstance(kind, T.StringType):
        return F.to_timestamp(F.col(name))
    raise ValueError(f"column {name!r} must hold timestamps, not {kind.simpleString()}")


def _normalise(frame: DataFrame, table: str, required: Sequence[str], times: Sequence[str]) -> DataFrame:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(f"column(s) {missing} not found in {table} (columns present: {frame.columns})")
    columns = {c: _time_column(frame, c) for c in times if c in frame.columns}
    columns["lead_id"] = F.col("lead_id").cast("string")
    return frame.withColumns(columns)


def normalise(leads: DataFrame, events: DataFrame) -> SparkCrm:
    """Spark leads and events as leadscore reads them: string ``lead_id``, timestamps, ``_order``.

    ``_order`` is the events' current row order (``monotonically_increasing_id``), so call this on events
    straight from their source, before any shuffle; an ``_order`` column already there is kept.

    Examples
    --------
    >>> crm = normalise(spark.read.parquet("leads.parquet"), spark.read.parquet("events.parquet"))  # doctest: +SKIP
    """
    leads = _normalise(leads, "leads", ("lead_id", "created_at"), LEAD_TIMES)
    events = _normalise(events, "events", ("lead_id", "at", "type"), EVENT_TIMES)
    if ORDER not in events.columns:
        events = events.withColumn(ORDER, F.monotonically_increasing_id())
    return SparkCrm(leads, events)


def _is_local(spark: SparkSession, base: str) -> bool:
    """Whether ``base`` is a path on this machine that Spark reads from this machine (a local master)."""
    if "://" in base:
        return base.startswith("file://")
    try:
        return str(spark.conf.get("spark.master", "")).startswith("local")
    except Exception:  # Spark Connect may not expose spark.master
        return False


def _read_table(spark: SparkSession, base: str, table: str) -> DataFrame:
    """``<base>/<table>.parquet``, ``<base>/<table>`` (a folder of Parquet parts), ``<table>.csv`` or a folder of
    CSV parts: the first that exists. On a cluster the candidates are tried by Spark itself (HDFS, S3, ...)."""
    from pyspark.errors import AnalysisException

    root = base.rstrip("/")
    candidates = [
        ("parquet", f"{root}/{table}.parquet"),
        ("parquet", f"{root}/{table}"),
        ("csv", f"{root}/{table}.csv"),
        ("csv", f"{root}/{table}"),
    ]
    local = _is_local(spark, root)
    for fmt, where in candidates:
        if local:
            path = Path(where.removeprefix("file://"))
            if not path.exists() or (fmt == "parquet" and path.is_dir() and not any(path.glob("*.parquet"))):
                continue
        try:
            if fmt == "parquet":
                return spark.read.parquet(where)
            return spark.read.csv(where, header=True, inferSchema=True)
        except AnalysisException as err:  # not there, or not that format: try the next candidate
            if local:
                raise
            if not any(code in str(err) for code in ("PATH_NOT_FOUND", "UNABLE_TO_INFER_SCHEMA")):
                raise
    raise FileNotFoundError(f"{base} has no {table}.parquet or {table}.csv (a file or a folder of part files)")


def read_crm(spark: SparkSession, path: str | Path) -> SparkCrm:
    """Read a data set folder's leads and events into Spark.

    ``path`` is a folder on this machine (local master) or anything the cluster reads (``hdfs://``,
    ``s3a://``, ``abfss://``, a path on the cluster's default file system). Parquet is read as it is; CSV with a
    header and inferred types (timestamps in ISO 8601, with an offset, or taken as UTC). The tables are not
    validated row by row as :func:`leadscore.data.io.load_dataset` does: validate a sample on one machine, or check
    them in the pipeline that produces them.

    Examples
    --------
    >>> crm = read_crm(get_spark(), "s3a://crm-exports/2025-06-30")  # doctest: +SKIP
    >>> crm.events.columns[:4]  # doctest: +SKIP
    ['event_id', 'lead_id', 'at', 'type']
    """
    base = str(path)
    if _is_local(spark, base) and not Path(base.removeprefix("file://")).is_dir():
        raise FileNotFoundError(f"{base} is not a folder holding leads and events files")
    return normalise(_read_table(spark, base, "leads"), _read_table(spark, base, "events"))


def crm_to_spark(spark: SparkSession, data: CrmData, *, partitions: int | None = None) -> SparkCrm:
    """An in-memory data set as Spark DataFrames (for notebooks, tests and small data).

    ``partitions`` spreads the events over that many partitions at random, after their input order has been
    recorded, as events arriving from many files would be.

    Examples
    --------
    >>> from leadscore.simulation.simulator import simulate
    >>> crm = crm_to_spark(get_spark("local[2]"), simulate(n_leads=300, months=6).data)  # doctest: +SKIP
    """
    leads = spark.createDataFrame(_for_spark(data.leads))
    events = spark.createDataFrame(_for_spark(data.events.assign(**{ORDER: np.arange(len(data.events))})))
    crm = normalise(leads, events)
    if partitions is not None:
        crm = SparkCrm(crm.leads, crm.events.repartition(partitions))
    return crm


def _for_spark(frame: pd.DataFrame) -> pd.DataFrame:
    """A pandas frame Spark's ``createDataFrame`` takes as it is: timestamps in microseconds, text as objects."""
    out = {}
    for name, values in frame.items():
        if pd.api.types.is_datetime64_any_dtype(values):
            # Spark keeps microseconds. Rounded up, an event is never known earlier than it happened: "at <= t"
            # holds on Spark as in pandas for every cutoff t to the microsecond (rounding down would let an event
            # 1 ns after t count at t).
            out[name] = values.dt.ceil("us").dt.as_unit("us")
        elif isinstance(values.dtype, pd.StringDtype) or pd.api.types.is_object_dtype(values.dtype):
            out[name] = values.astype(object).where(values.notna(), None)
        else:
            out[name] = values
    return pd.DataFrame(out)


def wire_columns(frame: DataFrame, times: Iterable[str]) -> DataFrame:
    """``frame`` with its timestamp columns ``times`` as int64 microseconds, ready for a pandas UDF."""
    present = [t for t in times if t in frame.columns]
    return frame.withColumns({t: F.unix_micros(F.col(t)) for t in present})


def from_wire(frame: pd.DataFrame, times: Iterable[str]) -> pd.DataFrame:
    """A pandas frame from a pandas UDF with its ``times`` (int64 microseconds) as UTC timestamps in ns."""
    converted = {t: pd.to_datetime(frame[t], unit="us", utc=True).dt.as_unit("ns") for t in times if t in frame.columns}
    return frame.assign(**converted) if converted else frame


def to_wire(frame: pd.DataFrame) -> pd.DataFrame:
    """A pandas result for Spark: timestamps as int64 microseconds, text as Python objects."""
    out = {}
    for name, values in frame.items():
        if pd.api.types.is_datetime64_any_dtype(values):
            out[name] = values.dt.tz_convert("UTC").dt.as_unit("us").astype("int64")
        elif isinstance(values.dtype, pd.StringDtype) or pd.api.types.is_object_dtype(values.dtype):
            out[name] = values.astype(object).where(values.notna(), None)
        else:
            out[name] = values
    return pd.DataFrame(out)


def spark_schema(frame: pd.DataFrame) -> tuple[T.StructType, list[str]]:
    """The Spark schema of ``to_wire(frame)`` and the names of its timestamp columns.

    Raises
    ------
    ValueError
        Naming a column whose pandas type has no Spark counterpart here.

    Examples
    --------
    >>> import pandas as pd
    >>> schema, times = spark_schema(pd.DataFrame({"n": pd.Series([], dtype="int32"),
    ...                                            "t": pd.Series([], dtype="datetime64[ns, UTC]")}))
    >>> schema.simpleString(), times
    ('struct<n:int,t:bigint>', ['t'])
    """
    fields, times = [], []
    for name, dtype in frame.dtypes.items():
        if pd.api.types.is_datetime64_any_dtype(dtype):
            kind: T.DataType = T.LongType()
            times.append(str(name))
        elif isinstance(dtype, pd.StringDtype) or pd.api.types.is_object_dtype(dtype):
            kind = T.StringType()
        elif str(dtype) in _PANDAS_TO_SPARK:
            kind = _PANDAS_TO_SPARK[str(dtype)]
        else:
            raise ValueError(f"column {name!r} has pandas type {dtype}, which has no Spark type in leadscore.spark")
        fields.append(T.StructField(str(name), kind, nullable=True))
    return T.StructType(fields), times


def from_wire_spark(frame: DataFrame, times: Iterable[str]) -> DataFrame:
    """A Spark result of a pandas UDF with its ``times`` (int64 microseconds) as Spark timestamps."""
    return frame.withColumns({t: F.timestamp_micros(F.col(t)) for t in times})


def empty_pandas(frame: DataFrame) -> pd.DataFrame:
    """An empty pandas frame with the columns and types ``frame`` has in a pandas UDF after :func:`from_wire`.

    Used to run the pandas builder once on nothing, to learn its output schema.
    """
    out = {}
    for field in frame.schema.fields:
        kind = field.dataType
        if isinstance(kind, T.TimestampType | T.TimestampNTZType):
            out[field.name] = pd.Series([], dtype="datetime64[ns, UTC]")
        elif isinstance(kind, T.StringType):
            out[field.name] = pd.Series([], dtype="str")
        elif isinstance(kind, T.BooleanType):
            out[field.name] = pd.Series([], dtype="bool")
        elif isinstance(kind, T.ByteType | T.ShortType | T.IntegerType | T.LongType):
            out[field.name] = pd.Series([], dtype="int64")
        elif isinstance(kind, T.FloatType | T.DoubleType):
            out[field.name] = pd.Series([], dtype="float64")
        else:
            out[field.name] = pd.Series([], dtype=object)
    return pd.DataFrame(out)


def collect(frame: DataFrame) -> pd.DataFrame:
    """A Spark result of the pandas builder back on the driver with the builder's own pandas types.

    The Spark schema was derived one-to-one from the builder's pandas types (int32 -> int, int8 -> tinyint,
    text -> string, timestamps), so the inverse mapping restores them: ``int32`` counts, ``str`` categories,
    ``datetime64[ns, UTC]`` cutoffs. Timestamps travel as integers (no time zone can shift them).

    Examples
    --------
    >>> features = collect(feature_frame(crm, "2025-06-30"))  # doctest: +SKIP
    """
    times = [f.name for f in frame.schema.fields if isinstance(f.dataType, T.TimestampType)]
    pdf = wire_columns(frame, times).toPandas()
    out = {}
    for field in frame.schema.fields:
        values = pdf[field.name]
        kind = _SPARK_TO_PANDAS.get(type(field.dataType))
        if field.name in times:
            out[field.name] = pd.to_datetime(values, unit="us", utc=True).dt.as_unit("ns")
        elif kind == "str":
            out[field.name] = values.astype("str").where(values.notna())
        elif kind is not None:
            out[field.name] = values.astype(kind)
        else:
            out[field.name] = values
    return pd.DataFrame(out)
