"""The API's dependencies, as ``Annotated`` aliases for route signatures.

- ``SettingsDep``: the settings the app was made with (:func:`api.main.create_app`);
- ``RepoDep``: the store's repository, ``SessionDep``: a SQLAlchemy session on the same engine;
- ``ModelDep``: the model in use for this request (taken once, so a reload never changes it mid-request);
- ``ScoreKey``, ``IngestKey``, ``ReadKey``, ``WebhooksKey``: the caller, admitted only with that API-key scope;
- ``NoQueryParameters`` and :func:`refuse_repeated_query_parameters`: unknown and repeated query parameters
  are refused (routes with parameters declare them as a query model with ``extra="forbid"``).

The dependencies that only read the app's state are ``async``: FastAPI runs a plain ``def`` dependency in its
thread pool, and a hop to a worker thread and back per dependency cost more than scoring one lead.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query, Request
from pydantic import BaseModel, ConfigDict
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from leadscore.api.champion import LoadedModel, ModelHolder
from leadscore.api.errors import RequestProblem
from leadscore.api.security import RequireScope
from leadscore.serving.keys import Principal
from leadscore.settings import Settings
from leadscore.store import Repository


async def refuse_repeated_query_parameters(request: Request) -> None:
    """Refuse a query parameter given more than once (``?owner=a&owner=b``: which one was meant?)."""
    # Our own check: FastAPI keeps the last of a repeated parameter, and a query model never sees the others.
    counts = Counter(key for key, _ in request.query_params.multi_items())
    repeated = sorted(key for key, count in counts.items() if count > 1)
    if repeated:
        raise RequestProblem(["query", repeated[0]], f"query parameter(s) {repeated} given more than once")


class NoQuery(BaseModel):
    """The query of a route that takes no parameters: any parameter is refused, FastAPI's 422 naming it."""

    model_config = ConfigDict(extra="forbid")


async def no_query_parameters(query: Annotated[NoQuery, Query()]) -> None:
    """Refuse query parameters on routes that take none (a route that takes some declares them as a query
    model with ``extra="forbid"``, so that a typo such as ``?ownr=`` never silently returns the unfiltered
    list)."""


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
WebhooksKey = Annotated[Principal, Depends(RequireScope("webhooks"))]

#: For the ``dependencies`` of a router whose routes take no query parameters.
NoQueryParameters = Depends(no_query_parameters)
