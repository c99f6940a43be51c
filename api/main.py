"""The leadscore HTTP service: ``create_app(settings)`` builds the FastAPI application.

Start-up (the lifespan) upgrades the database schema, opens the engine, loads the API keys and the champion model
(and starts watching its alias), starts the score keeper (:mod:`leadscore.serving.keeper`, unless
``LEADSCORE_STORED_SCORES=false``), the webhooks' delivery worker (:mod:`leadscore.webhooks.delivery`, unless
``LEADSCORE_WEBHOOKS=false``) and, when ``LEADSCORE_RETRAIN_EVERY_DAYS`` is set, the retraining schedule
(:mod:`leadscore.retraining.schedule`); shutting down stops them and the watch and closes the engine.
Everything except the health probes and the web app (``/app``) is under ``/api/v1``; the OpenAPI page is ``/docs``.

Run it with ``uvicorn leadscore.api.main:app`` (settings from ``LEADSCORE_*``) or
``uvicorn --factory leadscore.api.main:create_app``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI
from starlette.concurrency import run_in_threadpool

import leadscore
from leadscore.api.cache import ScoredTableCache
from leadscore.api.champion import ModelHolder
from leadscore.api.deps import refuse_repeated_query_parameters
from leadscore.api.errors import install_error_handlers
from leadscore.api.limits import BodySizeLimitMiddleware, QueryLimitMiddleware
from leadscore.api.routes import analytics, health, ingest, leads, model, monitoring, scores, webhooks
from leadscore.api.security import KeyGate, scoped_routes
from leadscore.api.web import install as install_web_app
from leadscore.serving.keeper import ScoreKeeper
from leadscore.serving.keys import KeyRing
from leadscore.settings import Settings, get_settings
from leadscore.store import Repository, create_engine, upgrade_database
from leadscore.webhooks.producers import model_promoted
from leadscore.webhooks.service import worker_from_settings

log = logging.getLogger("leadscore.api")

API_PREFIX = "/api/v1"
#: The routers under API_PREFIX, in the order they are matched; their keys are checked first (KeyGate).
API_ROUTERS = (
    scores.router,
    leads.router,
    ingest.router,
    model.router,
    analytics.router,
    monitoring.router,
    webhooks.router,
)

DESCRIPTION = """
Predictive lead scoring for sales teams: ingest leads and their interactions from a CRM, and get calibrated
probabilities of conversion, grades and the reasons behind them.

**Authentication.** Every `/api/v1` route needs an API key in the `X-API-Key` header (use the *Authorize*
button). Keys carry scopes: `ingest` (send leads and events), `score` (score leads), `read` (read stored leads
and the model), `webhooks` (manage webhook subscriptions). Create one with
`leadscore keys create --scope ingest --scope read --scope score`.

**Errors.** A bad request gets a 4xx whose body says what is wrong and where: `loc` gives the path into the
request body (list indexes are 0-based), `msg` what is wrong. Nothing of a failed request is stored.
"""

TAGS = [
    {"name": "scoring", "description": "Score leads sent with their histories, or precomputed feature rows."},
    {"name": "leads", "description": "Stored leads: a lead's score and trend, the manager's prioritised list."},
    {"name": "ingestion", "description": "Batch upserts from a CRM: leads, events (idempotent), goals, expenses."},
    {"name": "analytics", "description": "Sales follow-up: the funnel, salesperson performance, goal progress."},
    {"name": "model", "description": "The model in use, and reloading it when the champion changes."},
    {"name": "monitoring", "description": "Stored scores against outcomes, and drift from the training data."},
    {"name": "webhooks", "description": "Subscriptions to alerts (grades, follow-up, goals, model, drift), signed."},
    {"name": "health", "description": "Liveness and readiness probes."},
]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service.

    Parameters
    ----------
    settings
        The configuration; default :func:`leadscore.settings.get_settings` (the ``LEADSCORE_*`` environment).

    Examples
    --------
    >>> from fastapi.testclient import TestClient
    >>> import tempfile
    >>> app = create_app(Settings(data_dir=tempfile.mkdtemp()))
    >>> with TestClient(app) as client:
    ...     client.get("/healthz").json()
    {'status': 'ok'}
    """
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = settings.resolved_database_url()
        if settings.run_migrations:
            revision = await run_in_threadpool(upgrade_database, url)
            log.info("database schema at revision %s", revision)
        engine = create_engine(url)
        app.state.engine = engine
        app.state.repository = Repository(engine)
        app.state.keyring = KeyRing.from_settings(settings)
        app.state.scored_cache = ScoredTableCache(settings.prioritized_cache_seconds)
        if not app.state.keyring.entries:
            log.warning("no API keys configured: every /api/v1 route will answer 401 (see `leadscore keys create`)")
        holder = ModelHolder(
            settings.model_alias,
            settings.mlflow_tracking_uri,
            tuple(settings.grade_cutoffs.items()),
            on_change=lambda previous, version: _announce_promotion(app, previous, version),
        )
        app.state.model_holder = holder
        outcome = await run_in_threadpool(holder.reload)
        log.info("model: %s", outcome.detail)
        holder.start_polling(settings.model_poll_seconds)
        app.state.score_keeper = None
        if settings.stored_scores:
            app.state.score_keeper = _score_keeper(app.state.repository, holder, settings)
            app.state.score_keeper.start()
        app.state.retrain_schedule = None
        if settings.retrain_every_days > 0:
            app.state.retrain_schedule = _retrain_schedule(holder, settings)
            app.state.retrain_schedule.start()
        app.state.webhook_worker = None
        if settings.webhooks:
            app.state.webhook_worker = worker_from_settings(app.state.repository, settings)
            app.state.webhook_worker.start()
        try:
            yield
        finally:
            if app.state.webhook_worker is not None:
                app.state.webhook_worker.stop()
            if app.state.retrain_schedule is not None:
                app.state.retrain_schedule.stop(wait=False)  # a running retraining's lease expires if cut short
            if app.state.score_keeper is not None:
                app.state.score_keeper.stop()
            holder.stop()
            engine.dispose()

    app = FastAPI(
        title="leadscore",
        version=leadscore.__version__,
        summary="Predictive lead scoring: calibrated, explained, point-in-time.",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    app.state.settings = settings
    # Cheap rejections first (the last added runs first): the API key from the headers alone, then the query
    # string's size, then the body's, all before a route parses anything.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(QueryLimitMiddleware)
    app.add_middleware(KeyGate, routes=scoped_routes(API_PREFIX, API_ROUTERS))
    install_error_handlers(app)

    v1 = APIRouter(prefix=API_PREFIX, dependencies=[Depends(refuse_repeated_query_parameters)])
    for router in API_ROUTERS:
        v1.include_router(router)
    app.include_router(health.router)
    app.include_router(v1)
    install_web_app(app, settings)  # the manager's pages under /app
    return app


def _score_keeper(repo: Repository, holder: ModelHolder, settings: Settings) -> ScoreKeeper:
    """The keeper of the stored scores, scoring with whatever model the holder has now."""

    def scorer():
        model = holder.current
        return None if model is None else model.scorer

    return ScoreKeeper(
        repo,
        scorer,
        follow_up_days=settings.follow_up_days,
        batch_leads=settings.score_batch_leads,
        refresh_s=settings.score_refresh_seconds,
        retry_s=settings.score_retry_seconds,
    )


def _retrain_schedule(holder: ModelHolder, settings: Settings):
    """The retraining schedule on the service's store; a promotion is picked up at once, not at the next poll."""
    from leadscore.retraining.schedule import RetrainSchedule, store_tick

    tick = store_tick(settings)

    def tick_and_reload():
        outcome = tick()
        if outcome.promoted:
            holder.reload()
        return outcome

    return RetrainSchedule(
        tick_and_reload, check_hours=settings.retrain_check_hours, first_delay_s=settings.retrain_first_delay_seconds
    )


def _announce_promotion(app: FastAPI, previous: str, version: str) -> None:
    """Tell webhook subscribers that the champion moved (unless whoever moved it already did)."""
    if model_promoted(app.state.engine, version, previous_version=previous, source="service"):
        worker = getattr(app.state, "webhook_worker", None)
        if worker is not None:
            worker.wake()


def __getattr__(name: str) -> FastAPI:
    # `uvicorn leadscore.api.main:app` builds the app on first access, from the environment, not at import time.
    if name == "app":
        return create_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
