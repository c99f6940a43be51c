"""The registered model's signature fits the data: it scores a table as pandas, Spark and JSON clients send it.

Two models, each in its own MLflow store: one trained with ``leadscore train --table`` on a sample of UCI bank
marketing (skipped when ../shared/data lacks it), one on a small simulated CRM (its input is the feature frame).
Each is scored through MLflow's own entry points, ``mlflow.pyfunc.load_model(...).predict`` on ``pd.read_csv``
and ``pd.read_parquet`` frames, ``mlflow.pyfunc.spark_udf`` on ``spark.read.csv(inferSchema=True)`` and Parquet,
and a real ``mlflow models serve`` process over HTTP, and must give the model's own probabilities.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import warnings

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from leadscore import registry
from leadscore.cli import app
from leadscore.data.io import read_table
from leadscore.data.public import missing_message, public_file

BANK_ROWS = 1200


@pytest.fixture(scope="module", autouse=True)
def mlflow_opt_in():
    """MLflow's loaders want the deserialisation opt-in for any format (skops included); URIs put back after."""
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
        yield
    mlflow.set_tracking_uri(before[0])
    mlflow.set_registry_uri(before[1])


@pytest.fixture(scope="module")
def bank_model(tmp_path_factory):
    """``leadscore train --table`` on a time-ordered sample of UCI bank marketing: (csv path, store, model uri)."""
    problem = missing_message("uci_bank_marketing")
    if problem:
        pytest.skip(problem)
    folder = tmp_path_factory.mktemp("bank")
    raw = read_table(public_file("uci_bank_marketing"))
    rows = np.sort(np.random.default_rng(5).choice(len(raw), BANK_ROWS, replace=False))
    csv = folder / "leads.csv"
    raw.iloc[rows].to_csv(csv, index=False)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    args = ["train", "--table", str(csv), "--target", "y", "--drop", "duration", "--row-order-is-time"]
    result = CliRunner().invoke(app, [*args, "--candidates", "logistic", "--tracking-uri", uri, "--json"])
    assert result.exit_code == 0, result.output
    return csv, uri, "models:/leadscore/1"


@pytest.fixture(scope="module")
def crm_model(tmp_path_factory):
    """A model trained on a small simulated CRM, and its feature frame as a CSV: (csv path, store, model uri)."""
    from leadscore.model.training import train, training_data_from_crm
    from leadscore.simulation.simulator import simulate

    folder = tmp_path_factory.mktemp("crm")
    labelled = training_data_from_crm(simulate(n_leads=300, n_reps=3, months=10, seed=4).data)
    result = train(labelled, candidates=["logistic"], check_leakage=False)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    registry.register(result, uri=uri)
    csv = folder / "features.csv"
    labelled.X.to_csv(csv, index=False)
    return csv, uri, "models:/leadscore/1"


@pytest.fixture(params=["bank", "crm"])
def model(request):
    return request.getfixturevalue(f"{request.param}_model")


def expected_probabilities(csv, uri) -> np.ndarray:
    """The registered model's own P(converted) for the file's rows, read as leadscore reads them (as text)."""
    fitted, _ = registry.load_version("1", uri)
    return fitted.predict_proba(read_table(csv))[:, 1]


def pyfunc(uri, model_uri):
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return mlflow.pyfunc.load_model(model_uri)


def signature(uri, model_uri):
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return {c.name: c for c in mlflow.models.get_model_info(model_uri).signature.inputs.inputs}


def proba(predictions) -> np.ndarray:
    return np.asarray(predictions, dtype=float)[:, 1]


# -- the signature itself ---------------------------------------------------------------------------------------


def test_the_bank_signature_types_numbers_as_numbers_and_marks_what_may_be_missing(bank_model):
    csv, uri, model_uri = bank_model
    specs = signature(uri, model_uri)
    types = {name: spec.type.name for name, spec in specs.items()}
    read = pd.read_csv(csv)
    assert types["age"] == "long" and types["euribor3m"] == "double" and types["job"] == "string"
    assert "duration" not in types and "y" not in types
    for column, kind in types.items():  # every column as pandas reads the file
        assert kind == {"int64": "long", "float64": "double"}.get(str(read[column].dtype), "string"), column
    # "unknown" is a placeholder: a column holding it was seen missing, so the model can do without it.
    assert not specs["job"].required and not specs["default"].required
    assert specs["age"].required and specs["euribor3m"].required


def test_the_crm_signature_types_counts_as_long_and_gaps_as_optional_doubles(crm_model):
    csv, uri, model_uri = crm_model
    specs = signature(uri, model_uri)
    assert specs["call_total"].type.name == "long" and specs["call_total"].required
    assert specs["days_since_last_interaction"].type.name == "double"
    assert not specs["days_since_last_interaction"].required
    assert specs["stage"].type.name == "string"


# -- pandas ---------------------------------------------------------------------------------------------------------


def test_pyfunc_scores_the_csv_as_pandas_reads_it(model):
    csv, uri, model_uri = model
    frame = pd.read_csv(csv)
    got = proba(pyfunc(uri, model_uri).predict(frame))
    np.testing.assert_allclose(got, expected_probabilities(csv, uri), rtol=1e-9, atol=1e-12)


def test_pyfunc_scores_the_parquet_as_pandas_reads_it(model, tmp_path):
    csv, uri, model_uri = model
    path = tmp_path / "leads.parquet"
    pd.read_csv(csv).to_parquet(path)
    got = proba(pyfunc(uri, model_uri).predict(pd.read_parquet(path)))
    np.testing.assert_allclose(got, expected_probabilities(csv, uri), rtol=1e-9, atol=1e-12)


def test_extra_columns_are_ignored_and_optional_columns_may_be_missing(model):
    csv, uri, model_uri = model
    specs = signature(uri, model_uri)
    optional = [name for name, spec in specs.items() if not spec.required]
    assert optional
    frame = pd.read_csv(csv)
    model_ = pyfunc(uri, model_uri)
    with_extra = frame.assign(crm_internal_id=np.arange(len(frame)), notes="call back")
    np.testing.assert_allclose(proba(model_.predict(with_extra)), proba(model_.predict(frame)), rtol=1e-12)
    without = frame.drop(columns=optional)
    as_missing = frame.assign(**{column: np.nan for column in optional})
    fitted, _ = registry.load_version("1", uri)
    np.testing.assert_allclose(
        proba(model_.predict(without)), fitted.predict_proba(as_missing)[:, 1], rtol=1e-9, atol=1e-12
    )
    required = next(name for name, spec in specs.items() if spec.required)
    with pytest.raises(mlflow.exceptions.MlflowException, match=required):
        model_.predict(frame.drop(columns=[required]))


def test_a_number_read_as_int_where_training_saw_a_float_and_an_empty_text_column(model):
    """MLflow refuses, before the model sees a row, int64 where the signature says double (it converts only int32
    and smaller, or 0/1) and float NaN where it says string: pandas gives both for a small or a half-empty file.
    The refusal names the column; :func:`registry.signature.conform` casts the frame as serving and Spark do."""
    from leadscore.registry.signature import conform

    csv, uri, model_uri = model
    specs = signature(uri, model_uri)
    frame = pd.read_csv(csv)
    double = next(n for n, s in specs.items() if s.type.name == "double" and s.required and frame[n].notna().all())
    text = next(n for n, s in specs.items() if s.type.name == "string")
    odd = frame.assign(**{double: frame[double].round().astype("int64"), text: np.nan})
    model_ = pyfunc(uri, model_uri)
    for column in (double, text):
        with pytest.raises(mlflow.exceptions.MlflowException, match=f"column {column}"):
            model_.predict(frame.assign(**{column: odd[column]}))
    schema = mlflow.models.get_model_info(model_uri).signature.inputs
    fitted, _ = registry.load_version("1", uri)
    as_read = read_table(csv).assign(**{double: odd[double].astype(str), text: np.nan})
    np.testing.assert_allclose(
        proba(model_.predict(conform(odd, schema))), fitted.predict_proba(as_read)[:, 1], rtol=1e-9, atol=1e-12
    )


# -- Spark ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spark():
    pytest.importorskip("pyspark", reason="the spark extra (pyspark) is not installed")
    if shutil.which("java") is None:
        pytest.skip("Spark needs Java (17 or newer) on the PATH")
    from leadscore.spark import get_spark

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        session = get_spark(
            "local[2]",
            conf={"spark.sql.shuffle.partitions": "2", "spark.ui.enabled": "false", "spark.driver.memory": "1g"},
        )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def spark_scores(frame, uri, model_uri) -> np.ndarray:
    """MLflow's Spark UDF over every column of a Spark frame (extras included), in the frame's row order."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    udf = mlflow.pyfunc.spark_udf(
        frame.sparkSession, model_uri, result_type=T.ArrayType(T.DoubleType()), env_manager="local"
    )
    columns = [F.col(f"`{c}`") for c in frame.columns]
    ordered = frame.withColumn("_row", F.monotonically_increasing_id())
    scored = ordered.withColumn("p", udf(F.struct(*columns)).getItem(1)).orderBy("_row").select("p")
    return scored.toPandas()["p"].to_numpy()


@pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas")
@pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")
@pytest.mark.filterwarnings("ignore:Series.values returning an ndarray")
def test_spark_udf_scores_the_table_as_spark_reads_it(model, spark, tmp_path):
    csv, uri, model_uri = model
    expected = expected_probabilities(csv, uri)
    from_csv = spark.read.csv(str(csv), header=True, inferSchema=True).coalesce(1)
    np.testing.assert_allclose(spark_scores(from_csv, uri, model_uri), expected, rtol=1e-9, atol=1e-12)
    parquet = tmp_path / "leads.parquet"
    from_csv.write.parquet(str(parquet))
    from_parquet = spark.read.parquet(str(parquet)).coalesce(1)
    np.testing.assert_allclose(spark_scores(from_parquet, uri, model_uri), expected, rtol=1e-9, atol=1e-12)


# -- mlflow models serve --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(model, tmp_path):
    """A real ``mlflow models serve --env-manager local`` process on a free port: (csv, base url, uri)."""
    csv, uri, model_uri = model
    port = free_port()
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])  # its uvicorn
    env = {**os.environ, "PATH": path, "MLFLOW_TRACKING_URI": uri, "MLFLOW_REGISTRY_URI": uri,
           "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true"}  # fmt: skip
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local",
               "--host", "127.0.0.1", "-p", str(port), "--workers", "1"]  # fmt: skip
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                pytest.fail(f"mlflow models serve exited: {(tmp_path / 'serve.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/ping", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("mlflow models serve did not answer /ping within 180 s")
            time.sleep(0.5)
        yield csv, base, uri
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def invoke(base: str, body: str) -> np.ndarray:
    response = httpx.post(
        f"{base}/invocations", content=body, headers={"Content-Type": "application/json"}, timeout=120
    )
    assert response.status_code == 200, response.text[:2000]
    return proba(response.json()["predictions"])


def test_mlflow_models_serve_scores_the_table_sent_as_json(served):
    csv, base, uri = served
    frame = pd.read_csv(csv)
    expected = expected_probabilities(csv, uri)
    split = frame.to_json(orient="split", index=False)
    records = frame.to_json(orient="records")
    np.testing.assert_allclose(invoke(base, f'{{"dataframe_split": {split}}}'), expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(invoke(base, f'{{"dataframe_records": {records}}}'), expected, rtol=1e-9, atol=1e-12)
    # JSON is cast by the signature first: whole numbers for a double and an empty text column are taken too.
    specs = signature(uri, "models:/leadscore/1")
    double = next(n for n, s in specs.items() if s.type.name == "double" and s.required and frame[n].notna().all())
    text = next(n for n, s in specs.items() if s.type.name == "string")
    odd = frame.head(50).assign(**{double: frame[double].head(50).round().astype("int64"), text: None})
    fitted, _ = registry.load_version("1", uri)
    as_read = read_table(csv).head(50).assign(**{double: odd[double].astype(str), text: np.nan})
    got = invoke(base, f'{{"dataframe_records": {odd.to_json(orient="records")}}}')
    np.testing.assert_allclose(got, fitted.predict_proba(as_read)[:, 1], rtol=1e-9, atol=1e-12)
