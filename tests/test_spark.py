"""leadscore on Spark (local[2]): the same features, training set and scores as on one machine.

One SparkSession for the module; small simulated data. The model for the scoring tests is trained with
``leadscore train --engine spark`` into a temporary MLflow store, once for the module.
"""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

pyspark = pytest.importorskip("pyspark", reason="the spark extra (pyspark) is not installed")
if shutil.which("java") is None:
    pytest.skip("Spark needs Java (17 or newer) on the PATH", allow_module_level=True)

from pyspark.sql import functions as F  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from leadscore.cli import app  # noqa: E402
from leadscore.data.contracts import CrmData  # noqa: E402
from leadscore.data.io import write_dataset  # noqa: E402
from leadscore.features.builder import build_features  # noqa: E402
from leadscore.features.training_set import build_training_set  # noqa: E402
from leadscore.model.training import labelled_from_training_set, training_data_from_crm  # noqa: E402
from leadscore.simulation.simulator import simulate  # noqa: E402
from leadscore.spark import (  # noqa: E402
    SparkCrm,
    collect,
    crm_to_spark,
    feature_frame,
    get_spark,
    normalise,
    read_crm,
    training_set,
)
from leadscore.spark.training import top_unknown_types_spark  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas"),
    # pyspark 4.3's own pandas calls that pandas 3 deprecates (not leadscore's):
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
    pytest.mark.filterwarnings("ignore:Series.values returning an ndarray"),
]
KEY = ["cutoff", "lead_id"]


@pytest.fixture(scope="module")
def spark():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        session = get_spark(
            "local[2]",
            conf={"spark.sql.shuffle.partitions": "4", "spark.ui.enabled": "false", "spark.driver.memory": "1g"},
        )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def sim_data() -> CrmData:
    # 14 months, so that the time-ordered validation has label windows that end before it.
    return simulate(n_leads=500, n_reps=4, months=14, seed=2).data


@pytest.fixture(scope="module")
def data_dir(sim_data, tmp_path_factory):
    """The simulated data set as written by leadscore (Parquet with nanosecond timestamps)."""
    folder = tmp_path_factory.mktemp("crm")
    write_dataset(sim_data, folder, fmt="parquet")
    return folder


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(KEY, kind="stable").reset_index(drop=True)


def assert_same_rows(spark_rows: pd.DataFrame, pandas_rows: pd.DataFrame) -> None:
    """Same columns, types and values row for row; floating point within 1e-9 (relative)."""
    pd.testing.assert_frame_equal(_sorted(spark_rows), _sorted(pandas_rows), check_exact=False, rtol=1e-9, atol=0)


def test_features_on_spark_equal_the_pandas_builders_row_for_row(spark, sim_data):
    cutoff = "2024-09-02"
    crm = crm_to_spark(spark, sim_data, partitions=7)
    on_spark = collect(feature_frame(crm, cutoff, n_buckets=13))
    expected = build_features(sim_data.leads, sim_data.events, cutoff)
    assert len(expected) > 30
    assert_same_rows(on_spark, expected)


def test_training_set_on_spark_equals_the_pandas_builders_row_for_row(spark, sim_data):
    crm = crm_to_spark(spark, sim_data, partitions=5)
    on_spark = collect(training_set(crm, horizon_days=90))
    expected = build_training_set(sim_data, horizon_days=90)
    assert expected["label"].sum() > 40
    assert_same_rows(on_spark, expected)


def test_a_leads_events_spread_over_many_partitions_still_give_one_correct_row(spark, sim_data):
    shuffled = crm_to_spark(spark, sim_data, partitions=7)
    crm = SparkCrm(shuffled.leads, shuffled.events.withColumn("_input_partition", F.spark_partition_id()).persist())
    spread = crm.events.groupBy("lead_id").agg(F.countDistinct("_input_partition").alias("partitions")).toPandas()

    cutoff = "2024-06-03"
    expected = build_features(sim_data.leads, sim_data.events, cutoff)
    open_spread = spread[spread["lead_id"].isin(expected["lead_id"])].sort_values(["partitions", "lead_id"])
    lead, partitions = open_spread.iloc[-1]
    assert partitions >= 4  # this open lead's events sit in at least 4 of the 7 input partitions
    on_spark = collect(feature_frame(crm, cutoff))
    crm.events.unpersist()
    assert on_spark["lead_id"].is_unique
    assert_same_rows(on_spark[on_spark["lead_id"] == lead], expected[expected["lead_id"] == lead])


def _frames(leads: dict, events: dict) -> CrmData:
    return CrmData.from_frames(pd.DataFrame(leads), pd.DataFrame(events))


def test_events_at_the_same_time_keep_their_input_order_after_the_shuffle(spark):
    # Eight stage changes of lead "a" at the same moment: the last row is the latest event, as in pandas, so
    # the stage and the deal amount are the last row's whatever order the shuffle delivers the rows in.
    stages = ["proposal", "qualified", "contacted", "proposal", "qualified", "contacted", "proposal", "negotiation"]
    n = len(stages)
    data = _frames(
        {"lead_id": ["a", "b"], "created_at": ["2024-01-01", "2024-01-01"]},
        {
            "event_id": [f"e{i}" for i in range(n + 2)],
            "lead_id": ["a"] * n + ["b", "a"],
            "at": ["2024-01-05"] * n + ["2024-01-06", "2024-01-07"],
            "type": ["stage_changed"] * n + ["call", "call"],
            "stage": [*stages, None, None],
            "amount": [1000.0 * (i + 1) for i in range(n)] + [None, None],
        },
    )
    crm = crm_to_spark(spark, data, partitions=6)
    on_spark = collect(feature_frame(crm, "2024-01-10", n_buckets=3))
    expected = build_features(data.leads, data.events, "2024-01-10")
    assert expected.set_index("lead_id").loc["a", ["stage", "deal_amount"]].tolist() == ["negotiation", 8000.0]
    assert_same_rows(on_spark, expected)


def test_censoring_is_decided_on_the_whole_data_set_not_on_a_bucket(spark):
    # Lead "a" has nothing after January; the data runs to June through lead "b". The January cutoff is
    # labelled (its 30-day window ends within the data) even where a's bucket alone would end in January.
    data = _frames(
        {"lead_id": ["a", "b"], "created_at": ["2024-01-01", "2024-01-01"]},
        {
            "event_id": ["1", "2", "3"],
            "lead_id": ["a", "b", "b"],
            "at": ["2024-01-10", "2024-01-03", "2024-06-01"],
            "type": ["call", "call", "call"],
        },
    )
    crm = crm_to_spark(spark, data)
    on_spark = collect(training_set(crm, ["2024-01-15"], horizon_days=30, n_buckets=64))
    expected = build_training_set(data, ["2024-01-15"], horizon_days=30)
    assert sorted(expected["lead_id"]) == ["a", "b"]
    assert_same_rows(on_spark, expected)


def test_read_crm_reads_the_csv_that_leadscore_writes(spark, sim_data, tmp_path):
    # (The Parquet that leadscore writes, with nanosecond timestamps, is what the CLI tests below read.)
    write_dataset(sim_data, tmp_path, fmt="csv")
    cutoff = "2024-12-02"
    expected = build_features(sim_data.leads, sim_data.events, cutoff)
    assert_same_rows(collect(feature_frame(read_crm(spark, tmp_path), cutoff)), expected)


def test_a_missing_column_is_named(spark):
    events = spark.createDataFrame(pd.DataFrame({"lead_id": ["a"], "type": ["call"]}))
    leads = spark.createDataFrame(pd.DataFrame({"lead_id": ["a"], "created_at": pd.to_datetime(["2024-01-01"])}))
    with pytest.raises(ValueError, match=r"\['at'\] not found in events"):
        normalise(leads, events)


def test_spark_training_data_is_what_training_data_from_crm_makes(spark, sim_data):
    labelled = labelled_from_training_set(collect(training_set(crm_to_spark(spark, sim_data))))
    expected = training_data_from_crm(sim_data)
    pd.testing.assert_frame_equal(labelled.X, expected.X, check_exact=False, rtol=1e-9)
    np.testing.assert_array_equal(labelled.y, expected.y)
    np.testing.assert_array_equal(labelled.times, expected.times)
    assert (labelled.kinds, labelled.description) == (expected.kinds, expected.description)


def test_unknown_event_types_are_ranked_as_the_pandas_function_ranks_them(spark):
    from leadscore.features.builder import top_unknown_types

    events = pd.DataFrame(
        {
            "lead_id": ["a"] * 7,
            "at": pd.to_datetime(["2024-01-01"] * 7, utc=True),
            "type": ["webinar", "chat", "chat", "webinar", "call", "note", None],
        }
    )
    leads = pd.DataFrame({"lead_id": ["a"], "created_at": pd.to_datetime(["2024-01-01"], utc=True)})
    crm = normalise(spark.createDataFrame(leads), spark.createDataFrame(events))
    assert top_unknown_types_spark(crm, k=2) == top_unknown_types(events, k=2) == ("chat", "webinar")


def test_the_event_vocabulary_and_the_features_of_unknown_types_on_spark_are_the_pandas_ones(spark, sim_data):
    from leadscore.model.event_vocabulary import training_vocabulary
    from leadscore.simulation.opaque import opaque_event_types
    from leadscore.spark.training import event_vocabulary_spark

    opaque, codes = opaque_event_types(sim_data)  # every activity an unknown type
    crm = crm_to_spark(spark, opaque, partitions=3)
    expected = training_vocabulary(opaque, horizon_days=60)
    vocabulary = event_vocabulary_spark(crm, horizon_days=60, n_buckets=3)
    assert vocabulary == expected and len(vocabulary.types) >= 5 and set(vocabulary.types) <= set(codes.values())
    # The vocabulary reaches every bucket: counts, recency, momentum and the sequence, row for row.
    cutoffs = ["2024-06-03", "2024-09-02"]
    on_spark = collect(training_set(crm, cutoffs, horizon_days=60, extra_types=vocabulary.types, n_buckets=3))
    pandas_rows = build_training_set(opaque, cutoffs, horizon_days=60, extra_types=vocabulary.types)
    assert {"last_event_type", f"event_{vocabulary.types[0]}_momentum"} <= set(pandas_rows.columns)
    assert_same_rows(on_spark, pandas_rows)


# -- the registered model -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory):
    """A fresh MLflow store for this module; MLflow's process-wide URIs are put back afterwards."""
    import mlflow

    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    yield f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    mlflow.set_tracking_uri(before[0])
    mlflow.set_registry_uri(before[1])


@pytest.fixture(scope="module")
def champion(spark, data_dir, tracking_uri):
    """A model trained with `leadscore train --engine spark` and registered (the first one: champion)."""
    result = CliRunner().invoke(
        app,
        ["train", "--engine", "spark", "--data", str(data_dir), "--candidates", "logistic", "--json",
         "--tracking-uri", tracking_uri],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.output


def test_train_with_the_spark_engine_registers_a_champion_and_says_so_in_the_run(champion, tracking_uri):
    import json

    from mlflow import MlflowClient

    from leadscore import registry

    summary = json.loads([line for line in champion.splitlines() if line.startswith("{")][-1])
    assert (summary["engine"], summary["version"], summary["promoted"]) == ("spark", "1", True)
    assert registry.resolve_version("champion", tracking_uri) == "1"
    params = MlflowClient(tracking_uri).get_run(summary["run_id"]).data.params
    assert (params["engine"], params["sample_fraction"]) == ("spark", "1")


def test_spark_udf_scores_equal_the_scorers_for_the_same_leads(spark, sim_data, champion, tracking_uri):
    from leadscore.serving.scorer import Scorer
    from leadscore.spark.scoring import score_spark

    cutoff = sim_data.end
    crm = crm_to_spark(spark, sim_data, partitions=3)
    on_spark = score_spark(crm, cutoff, tracking_uri=tracking_uri, percentile_of="batch").toPandas()
    expected = Scorer.from_registry("champion", tracking_uri).score(
        sim_data.leads, sim_data.events, cutoff, percentile_of="batch"
    )
    assert len(on_spark) == len(expected) > 10
    both = expected.merge(on_spark, on="lead_id", suffixes=("", "_spark"), validate="one_to_one")
    np.testing.assert_allclose(both["probability_spark"], both["probability"], rtol=1e-9, atol=1e-12)
    for column in ("grade", "percentile", "model_version", "provisional"):
        assert (both[f"{column}_spark"].astype(str) == both[column].astype(str)).all(), column


def test_score_with_the_spark_engine_writes_probability_grade_and_version(
    spark, sim_data, data_dir, champion, tracking_uri, tmp_path
):
    from leadscore.serving.scorer import Scorer

    out = tmp_path / "scores.parquet"
    result = CliRunner().invoke(
        app,
        ["score", "--engine", "spark", "--data", str(data_dir), "--out", str(out), "--percentile-of", "reference",
         "--tracking-uri", tracking_uri],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    written = pd.read_parquet(out)
    assert list(written.columns) == ["lead_id", "probability", "grade", "percentile", "model_version", "cutoff",
                                     "provisional"]  # fmt: skip
    expected = Scorer.from_registry("champion", tracking_uri).score(
        sim_data.leads, sim_data.events, sim_data.end, percentile_of="reference"
    )
    both = expected.merge(written, on="lead_id", suffixes=("", "_spark"), validate="one_to_one")
    assert len(both) == len(expected)
    np.testing.assert_allclose(both["probability_spark"], both["probability"], rtol=1e-9, atol=1e-12)
    for column in ("grade", "percentile", "cutoff", "provisional"):
        assert (both[f"{column}_spark"] == both[column]).all(), column
    assert set(written["model_version"]) == {"1"}


def test_on_adversarial_histories_spark_equals_pandas_and_ignores_what_happens_after_the_cutoff(spark):
    # A fixed handful of long histories (Spark is slow), on the microsecond grid that Spark keeps: events at every
    # scale around the cutoff, exactly at it and a microsecond either side; then every field of the events after
    # it changed and more events after it (1 us to months), some for a lead created after it.
    import pit_histories as pit

    t = pit.T0.floor("us")
    leads, events = pit.history(3, n_leads=8, per_lead=80, t=t, resolution="us")
    rng = np.random.default_rng(3)
    late = pd.DataFrame({"lead_id": ["LATE"], "created_at": [t + pd.Timedelta(1, "us")], "source": ["web"]})
    future = pit.future_events(rng, pd.concat([leads, late]), t, 100, resolution="us")
    mutated = pit.mutate_future(rng, leads, events, t, pit.FIELDS, resolution="us")
    changed_events = pd.concat([mutated, future], ignore_index=True)
    changed_events = changed_events[changed_events["lead_id"] != "GHOST"]  # the contracts refuse unknown leads
    # And a nanosecond after the cutoff (finer than Spark keeps): a call, a win and a lead's creation.
    one_ns = t + pd.Timedelta(1, "ns")
    ns_events = pd.DataFrame({"lead_id": ["L0", "L1", "SOON"], "at": [one_ns] * 3, "type": ["call", "won", "call"]})
    changed_events = pd.concat([changed_events, ns_events], ignore_index=True)
    late = pd.concat([late, pd.DataFrame({"lead_id": ["SOON"], "created_at": [one_ns], "source": ["web"]})])
    data = CrmData.from_frames(leads, pit.with_ids(events))
    changed = CrmData.from_frames(pd.concat([leads, late], ignore_index=True), pit.with_ids(changed_events))
    extra = (pit.EXTRA,)
    expected = build_features(data.leads, data.events, t, extra_types=extra)
    assert len(expected) >= 4
    for crm_data in (data, changed):
        crm = crm_to_spark(spark, crm_data, partitions=3)
        on_spark = collect(feature_frame(crm, t, extra_types=extra, n_buckets=3))
        assert_same_rows(on_spark, expected)

    at = pit.cutoff_on_events(rng, events, "on", unit=1_000)
    cutoffs = [t, at - pd.Timedelta(1, "us"), at, at + pd.Timedelta(1, "us")]
    crm = crm_to_spark(spark, data, partitions=3)
    on_spark = collect(training_set(crm, cutoffs, horizon_days=7, extra_types=extra, n_buckets=3))
    assert_same_rows(on_spark, build_training_set(data, cutoffs, horizon_days=7, extra_types=extra))
