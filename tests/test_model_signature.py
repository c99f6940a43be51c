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
