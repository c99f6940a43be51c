"""Fixtures for the web app's tests: a simulated CRM that ends today, a model trained on it, a store holding it.

Test modules load them with ``pytest_plugins = ["api_fixtures", "web_fixtures"]``. The CRM ends now, as the
demo's does, so "today's leads", the days since the last touch and this month's goals mean what they say.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from leadscore.settings import Settings

#: The web tests' keys: one per scope and one with all of them.
WEB_KEYS = {
    "read-key": ["read"],
    "score-key": ["score"],
    "ingest-key": ["ingest"],
    "all-key": ["ingest", "read", "score"],
}


@pytest.fixture(scope="session")
def recent_crm():
    """A small simulated CRM: 12 months ending about now."""
    from leadscore.simulation.simulator import simulate

    start = (pd.Timestamp.now(tz="UTC") - pd.DateOffset(months=12)).normalize()
    return simulate(n_leads=700, n_reps=4, months=12, seed=3, start=start).data


@pytest.fixture(scope="session")
def recent_registry(tmp_path_factory: pytest.TempPathFactory, recent_crm) -> str:
    """An MLflow store whose champion is a small logistic model trained on :func:`recent_crm`."""
    from leadscore import registry
    from leadscore.model.training import train, training_data_from_crm

    uri = f"sqlite:///{tmp_path_factory.mktemp('web-mlflow') / 'mlflow.db'}"
    result = train(training_data_from_crm(recent_crm), candidates=["logistic"], check_leakage=False)
    registry.promote(registry.log_training(result, uri=uri).version, uri=uri)
    return uri


@pytest.fixture(scope="session")
def _recent_store_template(tmp_path_factory: pytest.TempPathFactory, recent_crm) -> Path:
    from leadscore.store import Repository, upgrade_database

    path = tmp_path_factory.mktemp("web-store") / "leadscore.db"
    url = f"sqlite:///{path}"
    upgrade_database(url)
    repo = Repository.from_url(url)
    repo.import_crm(recent_crm)
    repo.engine.dispose()
    return path


@pytest.fixture
def recent_store(_recent_store_template: Path, tmp_path: Path) -> str:
    """A SQLite store holding :func:`recent_crm` (a copy per test)."""
    path = tmp_path / "leadscore.db"
    shutil.copyfile(_recent_store_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def web_settings(recent_store: str, recent_registry: str, tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "database_url": recent_store,
            "data_dir": tmp_path,
            "api_keys": WEB_KEYS,
            "mlflow_tracking_uri": recent_registry,
            "model_poll_seconds": 0,
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    return make


@pytest.fixture
def web_client(web_settings) -> Iterator[TestClient]:
    """A client of the app on the recent store, not signed in."""
    from leadscore.api.main import create_app

    with TestClient(create_app(web_settings()), base_url="http://testserver") as client:
        client.app.state.score_keeper.drain()  # the recent store's open leads scored, as the service keeps them
        yield client


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory, _recent_store_template: Path, recent_registry: str):
    """A real uvicorn serving the app on a copy of the recent store, for a whole test module."""
    import json

    from api_fixtures import Server  # loaded by now as a plugin of the module using this fixture

    folder = tmp_path_factory.mktemp("web-server")
    shutil.copyfile(_recent_store_template, folder / "leadscore.db")
    env = {
        "LEADSCORE_API_KEYS": json.dumps(WEB_KEYS),
        "LEADSCORE_MLFLOW_TRACKING_URI": recent_registry,
        "LEADSCORE_MODEL_POLL_SECONDS": "0",
    }
    server = Server(f"sqlite:///{folder / 'leadscore.db'}", folder, env)
    server.start()
    yield server
    server.stop()
