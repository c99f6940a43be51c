"""Fixtures for the store and API tests, run on SQLite and on PostgreSQL.

Test modules load them with ``pytest_plugins = ["api_fixtures"]`` and use only fixtures from here (importing
the module directly would defeat pytest's assertion rewriting of it).

- ``database_url``: an empty database (no schema), for migration tests;
- ``store_url``: a migrated, empty database. SQLite: a copy of one file migrated per session. PostgreSQL: one
  schema per session (so concurrent runs never collide), migrated once and truncated before each test.

PostgreSQL runs when ``LEADSCORE_TEST_POSTGRES_URL`` is set (e.g.
``postgresql+psycopg://postgres@127.0.0.1:5432/test``) and is skipped, saying so, when it is not.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from leadscore.settings import Settings
from leadscore.store import Repository, create_engine, upgrade_database
from leadscore.store.tables import Base

POSTGRES_ENV = "LEADSCORE_TEST_POSTGRES_URL"
ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

#: Keys every API test app accepts: one per scope, and one with all of them.
KEYS = {
    "ingest-key": ["ingest"],
    "read-key": ["read"],
    "score-key": ["score"],
    "all-key": ["ingest", "read", "score"],
    "webhooks-key": ["webhooks"],
}


def postgres_base_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)")
    return url


@contextmanager
def postgres_schema(base_url: str) -> Iterator[str]:
    """A fresh schema on the server of ``base_url``; yields a URL whose search_path is that schema."""
    schema = f"leadscore_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database, no schema: a new SQLite file or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'leadscore.db'}"
        return
    with postgres_schema(postgres_base_url()) as url:
        yield url


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "leadscore.db"
    upgrade_database(f"sqlite:///{path}")  # disposes its engine: the WAL is checkpointed into the file
    return path


@pytest.fixture(scope="session")
def _postgres_session_url() -> Iterator[str]:
    with postgres_schema(postgres_base_url()) as url:
        upgrade_database(url)
        yield url


def _truncate_all(url: str) -> None:
    engine = create_engine(url, poolclass=sa.pool.NullPool)
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database."""
    if request.param == "sqlite":
        path = tmp_path / "leadscore.db"
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("_postgres_session_url")
    _truncate_all(url)
    return url


@pytest.fixture
def repo(store_url: str) -> Iterator[Repository]:
    repository = Repository.from_url(store_url)
    yield repository
    repository.engine.dispose()


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings for a test app: the given database, the test keys (:data:`KEYS`), nothing from the environment."""

    def make(url: str, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "database_url": url,
            "data_dir": tmp_path,
            "api_keys": KEYS,
            "mlflow_tracking_uri": f"sqlite:///{tmp_path / 'no-registry' / 'mlflow.db'}",  # no model unless given
            "model_poll_seconds": 0,
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    return make


# -------------------------------------------------------------------- a real server on loopback


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A uvicorn process serving the app on a free loopback port (start, SIGKILL, restart)."""

    def __init__(self, url: str, tmp_path: Path, env: dict[str, str] | None = None):
        self.database_url = url
        self.extra_env = env or {}
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / f"uvicorn-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 90.0) -> None:  # generous: loading a model on 2 busy cores is slow
        env = {
            **os.environ,
            "LEADSCORE_DATABASE_URL": self.database_url,
            "LEADSCORE_API_KEYS": '{"ingest-key": ["ingest"], "all-key": ["ingest", "read", "score"]}',
            "LEADSCORE_DATA_DIR": str(self.log.parent),
            "LEADSCORE_MLFLOW_TRACKING_URI": f"sqlite:///{self.log.parent / 'no-registry' / 'mlflow.db'}",
            **self.extra_env,
        }
        command = [sys.executable, "-m", "uvicorn", "--factory", "leadscore.api.main:create_app"]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
            try:  # up, and its database ready (a model is not needed to ingest)
                if httpx.get(f"{self.base_url}/readyz", timeout=1.0).json()["database"]["ok"]:
                    return
            except (httpx.TransportError, ValueError, KeyError):
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"uvicorn not ready after {timeout_s}s: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup, like a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start uvicorn servers on a database URL (extra environment optional); all are stopped after the test."""
    servers: list[Server] = []

    def make(url: str, env: dict[str, str] | None = None) -> Server:
        srv = Server(url, tmp_path, env)
        servers.append(srv)
        srv.start()
        return srv

    yield make
    for srv in servers:
        srv.stop()


# -------------------------------------------------------------------- a trained model in a throwaway registry


@pytest.fixture(scope="session")
def crm_sample():
    """A small simulated CRM, long enough to train on (14 months)."""
    from leadscore.simulation.simulator import simulate

    return simulate(n_leads=800, n_reps=4, months=14, seed=1).data


def _register_two_fits(folder: Path, crm_sample) -> str:
    """An MLflow store with two versions of a small model; version 1 is the champion.

    The two are different fits (version 1 on every snapshot, version 2 on the earliest 60% of them), so their
    probabilities for the same lead differ and an answer can be traced to the version that computed it.
    Trained without the leakage check, which is the slow part and is tested where it lives.
    """
    import numpy as np

    from leadscore import registry
    from leadscore.model.training import train, training_data_from_crm

    uri = f"sqlite:///{folder / 'mlflow.db'}"
    labelled = training_data_from_crm(crm_sample)
    earlier = labelled.subset(np.flatnonzero(labelled.times <= np.quantile(labelled.times, 0.6)))
    first = registry.log_training(train(labelled, candidates=["logistic"], check_leakage=False), uri=uri)
    registry.log_training(train(earlier, candidates=["logistic"], check_leakage=False), uri=uri)
    registry.promote(first.version, uri=uri)
    return uri


def _registry_with(folder: Path, crm_sample, candidates: list[str]) -> str:
    """An MLflow store holding one registered fit of ``candidates``, the champion (version 1).

    Trained without the leakage check, which is the slow part and is tested where it lives.
    """
    from leadscore import registry
    from leadscore.model.training import train, training_data_from_crm

    uri = f"sqlite:///{folder / 'mlflow.db'}"
    result = train(training_data_from_crm(crm_sample), candidates=candidates, check_leakage=False)
    first = registry.log_training(result, uri=uri)
    registry.promote(first.version, uri=uri)
    return uri


@pytest.fixture(scope="session")
def model_registry(tmp_path_factory: pytest.TempPathFactory, crm_sample) -> str:
    """Two different fits of a small logistic model (see :func:`_register_two_fits`); version 1 is the champion."""
    return _register_two_fits(tmp_path_factory.mktemp("mlflow"), crm_sample)


@pytest.fixture(scope="session")
def boosting_registry(tmp_path_factory: pytest.TempPathFactory, crm_sample) -> str:
    """An MLflow store whose champion (version 1, the only one) is a small gradient-boosting model (~2 s to fit)."""
    return _registry_with(tmp_path_factory.mktemp("mlflow-gb"), crm_sample, ["gradient_boosting"])
