"""The API's dependencies, as ``Annotated`` aliases for route signatures.

- ``SettingsDep``: the settings the app was made with (:func:`api.main.create_app`);
- ``RepoDep``: the store's repository, ``SessionDep``: a SQLAlchemy session on the same engine;
- ``ModelDep``: the model in use for this request (taken once, so a reload never changes it mid-request);
- ``ScoreKey``, ``IngestKey``, ``ReadKey``: the caller, admitted only with that API-key scope.

The dependencies that only read the app's state are ``async``: FastAPI runs a plain ``def`` dependency in its
thread pool, and a hop to a worker thread and back per dependency cost more than scoring one lead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from leadscore.api.champion import LoadedModel, ModelHolder
from leadscore.api.errors import RequestProblem
from leadscore.api.security import RequireScope
from leadscore.serving.keys import Principal
from leadscore.settings import Settings
from leadscore.store import Repository


async def check_query_parameters(request: Request) -> None:
    """Refuse query parameters the route does not take (``?ownr=...``: a typo must not silently return the
    unfiltered list) and parameters given more than once (``?owner=a&owner=b``: which one was meant?).

    The parameters a route takes are read from the app's own OpenAPI description, so this holds for every
    route, however it declares its parameters.
    """
    keys = [key for key, _ in request.query_params.multi_items()]
    if not keys:
        return
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise RequestProblem(["query", repeated[0]], f"query parameter(s) {repeated} given more than once")
    allowed = _query_names(request)
    unknown = sorted(set(keys) - allowed) if allowed is not None else []
    if unknown:
        raise RequestProblem(
            ["query", unknown[0]], f"unknown query parameter(s) {unknown}; this route takes {sorted(allowed or [])}"
        )


def _query_names(request: Request) -> set[str] | None:
    """The query parameters of the operation that ``request`` is for, from the OpenAPI description."""
    app = request.app
    table = getattr(app.state, "query_names", None)
    if table is None:
        table = []
        for path, operations in app.openapi()["paths"].items():
            pattern = re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(path)) + "$")
            for method, operation in operations.items():
                names = {p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"}
                table.append((pattern, method.upper(), names))
        app.state.query_names = table
    for pattern, method, names in table:
        if method == request.method and pattern.match(request.url.path):
            return names
    return None


async def get_app_settings(request: Request) -> Settings:
    """The settings the app was made with (not an override of get_settings: FastAPI inspects an override's
    signature again on every request)."""
    return request.app.state.settings


async def get_engine(request: Request) -> Engine:
    """The engine opened at start-up."""
    return request.app.state.engine


async def get_repository(request: Request) -> Repository:
    """The repository over the engine opened at start-up."""
    return request.app.state.repository


async def get_model_holder(request: Request) -> ModelHolder:
    """The holder of the model in use."""
    return request.app.state.model_holder


async def get_model(holder: Annotated[ModelHolder, Depends(get_model_holder)]) -> LoadedModel:
    """The model in use for this request (503 with how to train one when there is none)."""
    return holder.require()


def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    """A session for the request, closed afterwards."""
    with Session(engine) as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
RepoDep = Annotated[Repository, Depends(get_repository)]
SessionDep = Annotated[Session, Depends(get_session)]
ModelHolderDep = Annotated[ModelHolder, Depends(get_model_holder)]
ModelDep = Annotated[LoadedModel, Depends(get_model)]

ScoreKey = Annotated[Principal, Depends(RequireScope("score"))]
IngestKey = Annotated[Principal, Depends(RequireScope("ingest"))]
ReadKey = Annotated[Principal, Depends(RequireScope("read"))]
