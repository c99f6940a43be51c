"""The model the service scores with: loaded at start-up, swapped atomically when the alias moves.

:class:`ModelHolder` keeps one :class:`LoadedModel` (a :class:`leadscore.serving.scorer.Scorer` and what is known about
its version). A request takes the current one once and uses it to the end, so a swap never disturbs a request in
flight: the old scorer stays alive as long as someone holds it. :meth:`ModelHolder.reload` looks the alias up in
the MLflow registry and, when it points elsewhere, loads the new version *before* swapping the reference. A
background thread calls it every ``model_poll_seconds``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("leadscore.api")

HOW_TO_TRAIN = (
    "train one with `leadscore train --data <crm folder>` (it registers the model and makes the first version "
    "the champion), then POST /api/v1/model/reload or wait for the service to pick it up"
)


class NoModelError(LookupError):
    """There is no model to score with; the message says why and how to train one."""


@dataclass(frozen=True, kw_only=True)
class LoadedModel:
    """A scorer and what the registry says about its version."""

    scorer: Any  # leadscore.serving.scorer.Scorer
    version: str
    alias: str
    loaded_at: datetime
    trained_at: datetime | None = None
    run_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ReloadOutcome:
    changed: bool
    previous_version: str | None
    version: str | None
    detail: str


class ModelHolder:
    """Holds the current model; reloads it when the alias moves.

    Parameters
    ----------
    alias
        Alias (``champion``) or version number to serve.
    tracking_uri
        MLflow tracking store; None for the registry's default.
    grade_cutoffs
        ``(letter, probability floor)`` pairs, highest first, for the scorer.
    on_change
        Called with the previous and the new version after the holder moved from one version to another (the
        service announces the promotion to webhook subscribers with it).

    Examples
    --------
    >>> holder = ModelHolder("champion", "sqlite:////nonexistent/mlflow.db")
    >>> outcome = holder.reload()
    >>> outcome.changed, holder.current is None, outcome.detail.startswith("no model registry")
    (False, True, True)
    """

    def __init__(
        self,
        alias: str,
        tracking_uri: str | None = None,
        grade_cutoffs: tuple[tuple[str, float], ...] = (),
        on_change: Callable[[str, str], object] | None = None,
    ):
        self.alias = alias
        self.on_change = on_change  # (previous, new version) after a swap from one version to another
        self.tracking_uri = tracking_uri
        self.grade_cutoffs = grade_cutoffs
        self._current: LoadedModel | None = None
        self._problem = f"no model loaded yet: {HOW_TO_TRAIN}"
        self._reload_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def current(self) -> LoadedModel | None:
        """The model now in use (None if there is none)."""
        return self._current

    @property
    def problem(self) -> str:
        """Why there is no model, or why the last reload failed ('' when all is well)."""
        return self._problem

    def require(self) -> LoadedModel:
        """The model now in use, or :class:`NoModelError` saying how to get one."""
        model = self._current
        if model is None:
            raise NoModelError(self._problem)
        return model

    def reload(self) -> ReloadOutcome:
        """Look the alias up and load its version if it is not the one in use. Never raises: a failure keeps
        the current model and is reported in the outcome and in :attr:`problem`."""
        with self._reload_lock:
            previous = self._current.version if self._current else None
            try:
                version = self._resolve()
                if version == previous:
                    self._problem = ""
                    return ReloadOutcome(
                        changed=False,
                        previous_version=previous,
                        version=version,
                        detail=f"version {version} is already in use",
                    )
                loaded = self._load(version)
            except Exception as err:  # noqa: BLE001 - any failure leaves the current model in place
                self._problem = _problem_text(err, self.alias)
                log.warning("model reload failed: %s", self._problem)
                return ReloadOutcome(changed=False, previous_version=previous, version=previous, detail=self._problem)
            self._current = loaded  # the swap: one reference assignment
            self._problem = ""
            log.info("now scoring with model version %s (%s; was %s)", loaded.version, self.alias, previous)
            if previous is not None and self.on_change is not None:
                try:
                    self.on_change(previous, loaded.version)
                except Exception as err:  # noqa: BLE001 - telling others must not undo the swap
                    log.warning("after loading version %s: %s: %s", loaded.version, type(err).__name__, err)
            return ReloadOutcome(
                changed=True,
                previous_version=previous,
                version=loaded.version,
                detail=f"loaded version {loaded.version}",
            )

    def start_polling(self, every_s: float) -> None:
        """Check the alias every ``every_s`` seconds in a daemon thread (0: never)."""
        if every_s <= 0 or self._thread is not None:
            return

        def poll() -> None:
            while not self._stop.wait(every_s):
                self.reload()

        self._thread = threading.Thread(target=poll, name="leadscore-model-poll", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    # ---- the registry

    def _resolve(self) -> str:
        from leadscore import registry

        uri = registry.tracking_uri(self.tracking_uri)
        if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
            raise NoModelError(f"no model registry at {uri}: {HOW_TO_TRAIN}")
        return registry.resolve_version(self.alias, uri)

    def _load(self, version: str) -> LoadedModel:
        from leadscore import registry
        from leadscore.serving.scorer import Scorer

        uri = registry.tracking_uri(self.tracking_uri)
        options = {"grade_cutoffs": self.grade_cutoffs} if self.grade_cutoffs else {}
        scorer = Scorer.from_registry(version, uri, **options)
        trained_at, run_id, metrics = _run_facts(version, uri)
        return LoadedModel(
            scorer=scorer,
            version=version,
            alias=self.alias,
            loaded_at=datetime.now(UTC),
            trained_at=trained_at,
            run_id=run_id,
            metrics=metrics,
        )


def _run_facts(version: str, uri: str) -> tuple[datetime | None, str | None, dict[str, float]]:
    """When the version's run started, its id and its metrics (best effort: None/empty if unavailable)."""
    try:
        from mlflow import MlflowClient

        from leadscore.registry import MODEL_NAME

        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        model_version = client.get_model_version(MODEL_NAME, version)
        run = client.get_run(model_version.run_id)
        started = datetime.fromtimestamp(run.info.start_time / 1000, tz=UTC) if run.info.start_time else None
        metrics = {k: float(v) for k, v in run.data.metrics.items() if "." not in k}
        return started, model_version.run_id, metrics
    except Exception as err:  # noqa: BLE001 - the model still scores without these facts
        log.warning("could not read the run of model version %s: %s", version, err)
        return None, None, {}


def _problem_text(err: Exception, alias: str) -> str:
    if isinstance(err, NoModelError):
        return str(err)
    if isinstance(err, LookupError):
        return f"{err}: {HOW_TO_TRAIN}"
    return f"could not load the {alias!r} model: {type(err).__name__}: {err}"
