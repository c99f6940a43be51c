"""Small data sets for the model tests: a synthetic flat table with known structure, and MLflow stores."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leadscore.model.splits import LabelledData

KINDS = {"calls": "numeric", "visits": "numeric", "source": "categorical", "newsletter": "boolean"}


def synthetic_table(n: int = 2000, seed: int = 0, *, strength: float = 1.0) -> tuple[pd.DataFrame, np.ndarray]:
    """Raw text columns like a CRM export (with blanks and placeholders) and a label that depends on them."""
    frame, y, _ = synthetic_table_with_truth(n, seed, strength=strength)
    return frame, y


def synthetic_table_with_truth(
    n: int = 2000, seed: int = 0, *, strength: float = 1.0
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """:func:`synthetic_table` and the true probability each label was drawn with (the oracle)."""
    rng = np.random.default_rng(seed)
    calls = rng.poisson(2.0, n).astype(float)
    visits = rng.gamma(2.0, 2.0, n)
    source = rng.choice(["web", "referral", "event", "ads"], n, p=[0.4, 0.2, 0.2, 0.2])
    newsletter = rng.random(n) < 0.3
    logit = -2.2 + strength * (
        0.6 * calls
        + 0.15 * visits
        + np.select([source == "referral", source == "ads"], [1.0, -0.7], 0.0)
        + 0.5 * newsletter
    )
    p = 1 / (1 + np.exp(-logit))
    y = (rng.random(n) < p).astype(int)
    calls_text = pd.Series(calls.astype(int).astype(str), dtype=object)
    calls_text[rng.random(n) < 0.05] = ""
    visits_text = pd.Series(np.round(visits, 2).astype(str), dtype=object)
    visits_text[rng.random(n) < 0.05] = "unknown"
    frame = pd.DataFrame(
        {
            "calls": calls_text,
            "visits": visits_text,
            "source": source,
            "newsletter": np.where(newsletter, "yes", "no"),
        }
    )
    return frame, y, p


def labelled(n: int = 2000, seed: int = 0, *, strength: float = 1.0, horizon: float = 0.0) -> LabelledData:
    """The synthetic table as labelled data in time order (one example per day)."""
    X, y = synthetic_table(n, seed, strength=strength)
    return LabelledData(
        X=X,
        y=y,
        times=np.arange(n, dtype=float),
        horizon=horizon,
        kinds=dict(KINDS),
        source="table",
        time_kind="row order",
        description="synthetic",
    )


def fresh_store(template: Path, tmp_path: Path) -> str:
    """A copy of an already migrated MLflow SQLite store: its tracking URI."""
    target = tmp_path / "mlflow.db"
    shutil.copy(template, target)
    return f"sqlite:///{target}"


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory) -> Path:
    """One MLflow store migrated per test session (migrations take seconds); tests copy it."""
    from leadscore.registry import connect

    folder = tmp_path_factory.mktemp("mlflow-template")
    connect(f"sqlite:///{folder / 'mlflow.db'}")
    return folder / "mlflow.db"


@pytest.fixture
def store(migrated_store, tmp_path, monkeypatch) -> str:
    """A private MLflow store for one test; MLFLOW_TRACKING_URI points at it, never at the repo's models/."""
    uri = fresh_store(migrated_store, tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("LEADSCORE_MODELS_DIR", str(tmp_path / "models"))
    return uri
