"""Service configuration: one pydantic-settings class read from ``LEADSCORE_*`` environment variables.

Every knob of the store and the API lives here, with a default that works on a laptop: a SQLite file under the
data folder, no API keys (so every protected route answers 401 until a key is created with
``leadscore keys create``), a 10 MB request limit and batches of at most 10,000 rows.

Tests and embedders build their own ``Settings(...)`` and pass it to ``api.main.create_app``; the service reads
the cached :func:`get_settings`.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from leadscore.grades import DEFAULT_GRADE_CUTOFFS, check_grade_cutoffs
from leadscore.scopes import SCOPES  # noqa: F401 - where the app and the CLI have always imported it from

#: Prefix of a key stored as a hash in a keys file (``sha256:<hex digest of the key>``).
HASHED_KEY_PREFIX = "sha256:"


class Settings(BaseSettings):
    """Configuration of the leadscore store and service.

    Each field can be set with an environment variable named ``LEADSCORE_<FIELD>`` (dicts and lists as JSON).

    Examples
    --------
    >>> s = Settings(data_dir="/tmp/ls", api_keys={"k1": ["read"]})
    >>> s.resolved_database_url()
    'sqlite:////tmp/ls/leadscore.db'
    >>> "k1" in repr(s)
    False
    """

    model_config = SettingsConfigDict(env_prefix="LEADSCORE_", extra="ignore")

    data_dir: Path = Field(Path("data"), description="Folder for the SQLite store and the keys file.")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL; default a SQLite file `<data_dir>/leadscore.db`. PostgreSQL: "
        "`postgresql+psycopg://user@host:5432/db`.",
    )
    api_keys: dict[str, list[str]] = Field(
        default_factory=dict, repr=False, description="API key -> scopes (`score`, `ingest`, `read`)."
    )
    api_keys_file: Path | None = Field(
        None,
        description="JSON or YAML file mapping keys (or `sha256:<hex>` digests) to scopes; default "
        "`<data_dir>/api_keys.json` when it exists.",
    )
    max_request_bytes: int = Field(10 * 1024 * 1024, gt=0, description="Largest request body accepted.")
    max_batch_size: int = Field(10_000, gt=0, description="Most leads or events accepted in one request.")
    grade_cutoffs: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_GRADE_CUTOFFS),
        description="Grade -> lowest probability that earns it, highest first; below every floor a lead gets D.",
    )
    horizon_days: int = Field(90, gt=0, description="Conversion horizon the model predicts.")
    follow_up_days: int = Field(
        14,
        gt=0,
        description="The longest a lead with no next step may stay quiet before it needs follow-up "
        "(sooner when its own rhythm is faster; see leadscore.serving.prioritize).",
    )
    mlflow_tracking_uri: str | None = Field(
        None, description="MLflow tracking store; default MLFLOW_TRACKING_URI, else the project's models/mlflow.db."
    )
    model_alias: str = Field("champion", description="Alias (or version number) of the model the service uses.")
    model_poll_seconds: float = Field(
        30.0, ge=0, description="How often to check whether the alias moved; 0 disables polling."
    )
    prioritized_cache_seconds: float = Field(
        60.0, ge=0, description="How long the scored list of open leads is reused (ingestion refreshes it)."
    )
    run_migrations: bool = Field(True, description="Upgrade the database schema at start-up.")
    stored_scores: bool = Field(
        True,
        description="Keep each open lead's latest score in the store (a background keeper re-scores the leads that "
        "changed) and answer the prioritised list and one lead's score from it; false computes them per request "
        "from the stored histories, the way before scores were kept.",
    )
    score_batch_leads: int = Field(500, gt=0, description="Leads the score keeper re-scores per batch.")
    score_refresh_seconds: float = Field(
        86_400.0, gt=0, description="The oldest a kept score may get before it is recomputed as of now (time moves on)."
    )
    score_retry_seconds: float = Field(
        300.0, gt=0, description="How long a lead whose re-score failed waits for the next attempt (new data: at once)."
    )
    retrain_every_days: float = Field(
        0.0,
        ge=0,
        description="Retrain on the store's data every this many days (scheduled in the service; 15 is Dynamics "
        "365's rhythm); 0 runs no schedule (`leadscore retrain` still works).",
    )
    retrain_check_hours: float = Field(
        6.0, gt=0, description="How often the service asks whether a retraining is due (a new slot, or drift)."
    )
    retrain_first_delay_seconds: float = Field(
        60.0, ge=0, description="How long after start-up the service first asks whether a retraining is due."
    )
    retrain_max_champion_age_days: float = Field(
        90.0,
        ge=0,
        description="A challenger that clears the quality bar replaces a champion whose data is older than this "
        "many days, even if it is not better; 0 never promotes on age.",
    )
    retrain_min_auc_ratio: float = Field(
        0.98,
        gt=0,
        le=1,
        description="The quality bar of the age and drift rules: the challenger's ROC AUC at least this share of "
        "the champion's on the same holdout.",
    )
    retrain_on_drift: bool = Field(
        True, description="Retrain at once when the drift report alerts, instead of waiting for the next slot."
    )
    retrain_promote_on_drift: bool = Field(
        True, description="Under a drift alert, a challenger that clears the quality bar replaces the champion."
    )
    retrain_drift_cooldown_days: float = Field(
        7.0, ge=0, description="The least time between a retraining and one started by a drift alert."
    )
    webhooks: bool = Field(
        True,
        description="Deliver webhook events from the store's outbox in a background worker (false: leave that to "
        "`leadscore webhooks deliver` in another process).",
    )
    webhooks_allow_private: bool = Field(
        False,
        description="Let webhooks reach private, loopback and link-local addresses (off: public addresses only).",
    )
    webhooks_allowed_networks: list[str] = Field(
        default_factory=list,
        description='Networks (CIDR) webhooks may reach although they are not public, e.g. ["10.20.0.0/16"].',
    )
    webhooks_max_attempts: int = Field(16, gt=0, description="Attempts at a delivery before it is dead-lettered.")
    webhooks_backoff_seconds: float = Field(
        10.0, gt=0, description="Wait before the second attempt; doubles per attempt (with jitter) up to the cap."
    )
    webhooks_backoff_max_seconds: float = Field(3600.0, gt=0, description="The longest wait between two attempts.")
    webhooks_timeout_seconds: float = Field(10.0, gt=0, description="Connect, write and read timeout of a delivery.")
    webhooks_concurrency: int = Field(8, gt=0, description="Deliveries in flight at once (never two of one lead).")
    webhooks_lease_seconds: float = Field(
        120.0,
        gt=0,
        description="How long a claimed delivery is held; a worker killed mid-delivery frees it then. It must "
        "outlast a batch: 2 rounds of attempts of up to 4 timeouts each.",
    )
    webhooks_goal_check_seconds: float = Field(
        3600.0, ge=0, description="How often goal progress is checked for goals falling behind (0: never)."
    )
    webhooks_retention_days: float = Field(30.0, gt=0, description="How long finished deliveries stay in the log.")
    session_secret: SecretStr | None = Field(
        None,
        description="Signs the web app's session cookies; set it so that workers and restarts share sessions "
        "(default: a random secret per process).",
    )

    @field_validator("api_keys")
    @classmethod
    def _known_scopes(cls, keys: dict[str, list[str]]) -> dict[str, list[str]]:
        check_scopes(keys, where="LEADSCORE_API_KEYS")
        return keys

    @field_validator("webhooks_allowed_networks")
    @classmethod
    def _networks(cls, networks: list[str]) -> list[str]:
        import ipaddress

        for network in networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as err:
                raise ValueError(f"LEADSCORE_WEBHOOKS_ALLOWED_NETWORKS: {network!r} is not a network: {err}") from None
        return networks

    @field_validator("grade_cutoffs")
    @classmethod
    def _cutoffs_decrease(cls, cutoffs: dict[str, float]) -> dict[str, float]:
        check_grade_cutoffs(cutoffs.items())
        return cutoffs

    @model_validator(mode="after")
    def _keys_file_exists(self) -> Settings:
        if self.api_keys_file is not None and not self.api_keys_file.is_file():
            raise ValueError(f"api_keys_file {str(self.api_keys_file)!r} does not exist")
        return self

    def resolved_database_url(self) -> str:
        """The database URL to connect to: the configured one, or the SQLite file under ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'leadscore.db').resolve()}"

    def keys_file(self) -> Path | None:
        """The API keys file in use, if any: the configured one, or ``<data_dir>/api_keys.json`` if present."""
        if self.api_keys_file is not None:
            return self.api_keys_file
        default = self.data_dir / "api_keys.json"
        return default if default.is_file() else None

    def all_api_keys(self) -> dict[str, list[str]]:
        """Keys from the settings and from the keys file together (key or ``sha256:`` digest -> scopes)."""
        keys = dict(self.api_keys)
        path = self.keys_file()
        if path is not None:
            keys.update(read_keys_file(path))
        return keys


def check_scopes(keys: dict[str, Any], *, where: str) -> None:
    """Raise ``ValueError`` naming any scope that is not one of :data:`SCOPES`."""
    unknown = sorted({s for scopes in keys.values() for s in scopes if s not in SCOPES})
    if unknown:
        raise ValueError(f"unknown scope(s) {unknown} in {where}; allowed: {list(SCOPES)}")


def read_keys_file(path: Path) -> dict[str, list[str]]:
    """Read an API keys file: a JSON or YAML mapping of key (or ``sha256:<hex>``) to a list of scopes.

    A value may also be ``{"scopes": [...], "name": "..."}``; the name is for people, only the scopes count.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "keys.yaml"
    >>> _ = p.write_text("secret: [score, read]\\n")
    >>> read_keys_file(p)
    {'secret': ['score', 'read']}
    """
    text = path.read_text(encoding="utf-8")
    try:
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise ValueError(f"API keys file {str(path)!r} is not valid JSON/YAML: {err}") from None
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ValueError(f"API keys file {str(path)!r} must map keys to scopes, not {type(raw).__name__}")
    keys: dict[str, list[str]] = {}
    for key, value in raw.items():
        scopes = value.get("scopes", []) if isinstance(value, dict) else value
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise ValueError(f"API keys file {str(path)!r}: the scopes of an entry must be a list of strings")
        keys[str(key)] = scopes
    check_scopes(keys, where=str(path))
    return keys


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment (a FastAPI dependency tests can override)."""
    return Settings()
