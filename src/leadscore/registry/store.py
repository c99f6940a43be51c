"""Where the MLflow store is, the connection to it, and the names of the registered model and its aliases.

Tracking store ``sqlite:///models/mlflow.db`` and artifacts under ``models/artifacts`` by default, ``models/``
being the project's folder (``LEADSCORE_MODELS_DIR`` moves it). ``MLFLOW_TRACKING_URI`` (or the ``tracking_uri``
arguments) points elsewhere; a SQLite store keeps its artifacts beside its database file.
``mlflow ui --backend-store-uri sqlite:///models/mlflow.db`` shows everything.
"""

from __future__ import annotations

import os
from pathlib import Path

MODEL_NAME = "leadscore"
EXPERIMENT_NAME = "leadscore"
CHAMPION = "champion"
CHALLENGER = "challenger"
HISTORY_TAG = "champion_history"
METADATA_KEY = "leadscore"


def models_dir() -> Path:
    """The local model store: ``LEADSCORE_MODELS_DIR``, else the project's ``models/``, else ``./models``."""
    configured = os.environ.get("LEADSCORE_MODELS_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    root = Path(__file__).resolve().parents[3]
    if (root / "pyproject.toml").exists() and (root / "src" / "leadscore").is_dir():
        return root / "models"
    return Path.cwd() / "models"


def tracking_uri(uri: str | None = None) -> str:
    """The tracking URI in force: the argument, else ``MLFLOW_TRACKING_URI``, else the local SQLite store.

    Examples
    --------
    >>> tracking_uri("sqlite:////tmp/x/mlflow.db")
    'sqlite:////tmp/x/mlflow.db'
    """
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{models_dir() / 'mlflow.db'}"


def _sqlite_path(uri: str) -> Path | None:
    return Path(uri[len("sqlite:///") :]) if uri.startswith("sqlite:///") else None


def connect(uri: str | None = None):
    """Point MLflow at the store, create it and the ``leadscore`` experiment if needed; return a client."""
    import mlflow
    from mlflow import MlflowClient

    uri = tracking_uri(uri)
    db = _sqlite_path(uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    if client.get_experiment_by_name(EXPERIMENT_NAME) is None:
        location = (db.parent / "artifacts").resolve().as_uri() if db is not None else None
        client.create_experiment(EXPERIMENT_NAME, artifact_location=location)
    return client


def resolve_version(alias_or_version: str, uri: str | None = None) -> str:
    """The version number an alias (``champion``) or a version string (``"3"``) stands for."""
    client = connect(uri)
    if str(alias_or_version).isdigit():
        client.get_model_version(MODEL_NAME, str(alias_or_version))  # raises if it does not exist
        return str(alias_or_version)
    try:
        return str(client.get_model_version_by_alias(MODEL_NAME, alias_or_version).version)
    except Exception as err:  # MLflow raises its own RestException / MlflowException
        raise LookupError(f"no version of model {MODEL_NAME!r} has the alias {alias_or_version!r}") from err
