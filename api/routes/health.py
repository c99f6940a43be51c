"""Liveness and readiness probes (outside ``/api/v1``, unauthenticated, cheap)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from leadscore.api.schemas import DatabaseStatus, Liveness, ModelStatus, Readiness
from leadscore.store.migrate import current_revision_of, head_revision

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Liveness, summary="Liveness")
def healthz() -> Liveness:
    """The process is up and serving HTTP."""
    return Liveness()


def database_status(request: Request) -> DatabaseStatus:
    """Reach the database and read its schema revision."""
    try:
        revision = current_revision_of(request.app.state.engine)
    except Exception as err:  # noqa: BLE001 - any failure means "not reachable"; say which
        return DatabaseStatus(ok=False, detail=f"unreachable: {type(err).__name__}: {str(err).splitlines()[0]}")
    head = head_revision()
    if revision != head:
        return DatabaseStatus(ok=False, detail=f"schema at {revision}, expected {head}", revision=revision)
    return DatabaseStatus(ok=True, detail="reachable", revision=revision)


def model_status(request: Request) -> ModelStatus:
    """Whether a model is loaded, which version, and any problem with the last reload."""
    holder = request.app.state.model_holder
    current = holder.current
    if current is None:
        return ModelStatus(loaded=False, detail=holder.problem)
    detail = f"version {current.version} ({current.alias})"
    if holder.problem:
        detail += f"; last reload failed: {holder.problem}"
    return ModelStatus(loaded=True, detail=detail, version=current.version)


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness",
    responses={503: {"model": Readiness, "description": "Not ready: see which part."}},
)
def readyz(request: Request) -> Readiness | JSONResponse:
    """Ready when the database is reachable at the expected schema and a model is loaded; otherwise 503
    saying which is missing (ingestion works without a model: only scoring needs one)."""
    database = database_status(request)
    model = model_status(request)
    ok = database.ok and model.loaded
    ready = Readiness(status="ready" if ok else "not ready", database=database, model=model)
    if not ok:
        return JSONResponse(ready.model_dump(), status_code=503)
    return ready
