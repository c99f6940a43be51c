"""Ingestion from a CRM: batch upserts of leads and events (idempotent), goals and expenses.

Each request is stored all or nothing. Events are idempotent on ``event_id``: a retry stores nothing twice, and
an id already stored with other content is a 409 naming it.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel

from leadscore.api.deps import IngestKey, RepoDep, SettingsDep
from leadscore.api.fast_json import OrjsonRoute
from leadscore.api.schemas import (
    ConflictBody,
    ErrorBody,
    EventIn,
    EventsIn,
    EventsIngested,
    ExpensesIn,
    ExpensesStored,
    GoalsIn,
    LeadIn,
    LeadsIn,
    LeadsIngested,
    Stored,
    ValidationBody,
)
from leadscore.data.contracts import EVENTS, EXPENSES, GOALS, LEADS
from leadscore.store import IngestResult

log = logging.getLogger("leadscore.api")

router = APIRouter(tags=["ingestion"], route_class=OrjsonRoute)

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body could not be read (e.g. it is not UTF-8)."},
    401: {"model": ErrorBody, "description": "No API key, or an unknown one."},
    403: {"model": ErrorBody, "description": "The API key lacks the `ingest` scope."},
    413: {"model": ErrorBody, "description": "The body or the batch is over the limit."},
    422: {"model": ValidationBody, "description": "Some values are wrong; nothing was stored."},
    503: {"model": ErrorBody, "description": "The database is busy or unreachable; retry."},
}


def check_batch(kind: str, count: int, limit: int) -> None:
    """Refuse a batch of more than ``limit`` rows with a 413 that names the limit."""
    if count > limit:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            detail=f"{count} {kind} in one request; the limit is {limit} (LEADSCORE_MAX_BATCH_SIZE): split the batch",
        )


def _frame(rows: list[BaseModel], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: [getattr(r, c) for r in rows] for c in columns}, columns=columns)


def leads_frame(leads: list[LeadIn]) -> pd.DataFrame | None:
    """Leads as a frame of the leads contract: attributes become extra columns."""
    if not leads:
        return None
    frame = _frame(leads, LEADS.names)  # type: ignore[arg-type]
    if any(lead.attributes for lead in leads):
        extras = pd.DataFrame([lead.attributes for lead in leads], index=frame.index)
        frame = pd.concat([frame, extras], axis=1)
    return frame


def events_frame(events: list[EventIn]) -> pd.DataFrame | None:
    """Events as a frame of the events contract."""
    return _frame(events, EVENTS.names) if events else None  # type: ignore[arg-type]


def _leads_summary(received: int, result: IngestResult) -> LeadsIngested:
    return LeadsIngested(
        received=received,
        created=result.leads_created,
        updated=result.leads_updated,
        unchanged=result.leads_unchanged,
    )


@router.post(
    "/leads",
    response_model=LeadsIngested,
    summary="Create or replace leads",
    responses=ERRORS,
)
def post_leads(
    principal: IngestKey, body: LeadsIn, request: Request, repo: RepoDep, settings: SettingsDep
) -> LeadsIngested:
    """Upsert a batch of leads (all or nothing). A lead sent again replaces the stored one.

    Needs the `ingest` scope.
    """
    check_batch("leads", len(body.leads), settings.max_batch_size)
    result = repo.ingest(leads=leads_frame(body.leads))
    request.app.state.scored_cache.invalidate()
    log.info("%s upserted %d leads: %s", principal.name, len(body.leads), result.as_dict())
    return _leads_summary(len(body.leads), result)


@router.post(
    "/events",
    response_model=EventsIngested,
    summary="Add events, idempotently",
    responses={**ERRORS, 409: {"model": ConflictBody, "description": "Event ids stored with other content."}},
)
def post_events(
    principal: IngestKey, body: EventsIn, request: Request, repo: RepoDep, settings: SettingsDep
) -> EventsIngested:
    """Insert a batch of events (all or nothing), with optional leads they belong to.

    Idempotent on `event_id`: a retry stores nothing twice; an id already stored with other content is a 409
    naming it. Every event's lead must be stored already or come in `leads`. Needs the `ingest` scope.
    """
    check_batch("events", len(body.events), settings.max_batch_size)
    check_batch("leads", len(body.leads), settings.max_batch_size)
    result = repo.ingest(leads=leads_frame(body.leads), events=events_frame(body.events))
    if result.events_inserted or result.leads_created or result.leads_updated:
        request.app.state.scored_cache.invalidate()
    log.info("%s sent %d events: %s", principal.name, len(body.events), result.as_dict())
    return EventsIngested(
        received=len(body.events),
        inserted=result.events_inserted,
        already_stored=result.events_already_stored,
        leads=_leads_summary(len(body.leads), result),
    )


@router.post("/goals", response_model=Stored, summary="Create or update goals", responses=ERRORS)
def post_goals(principal: IngestKey, body: GoalsIn, repo: RepoDep, settings: SettingsDep) -> Stored:
    """Upsert goals (key: metric, period, scope, start; the target is replaced). Needs the `ingest` scope."""
    check_batch("goals", len(body.goals), settings.max_batch_size)
    if not body.goals:
        return Stored(stored=0)
    stored = repo.upsert_goals(_frame(body.goals, GOALS.names))  # type: ignore[arg-type]
    log.info("%s upserted %d goals", principal.name, stored)
    return Stored(stored=stored)


@router.post("/expenses", response_model=ExpensesStored, summary="Record expenses", responses=ERRORS)
def post_expenses(principal: IngestKey, body: ExpensesIn, repo: RepoDep, settings: SettingsDep) -> ExpensesStored:
    """Record expenses; returns their ids. Not idempotent: a retry records them again. Needs `ingest`."""
    check_batch("expenses", len(body.expenses), settings.max_batch_size)
    if not body.expenses:
        return ExpensesStored(ids=[])
    ids = repo.add_expenses(_frame(body.expenses, EXPENSES.names))  # type: ignore[arg-type]
    log.info("%s recorded %d expenses", principal.name, len(ids))
    return ExpensesStored(ids=ids)
