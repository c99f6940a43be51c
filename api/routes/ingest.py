"""Ingestion from a CRM: batch upserts of leads and events (idempotent), goals and expenses.

Each request is stored all or nothing. Events are idempotent on ``event_id``: a retry stores nothing twice, and
an id already stored with other content is a 409 naming it.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request

from leadscore.api.deps import IngestKey, NoQueryParameters, RepoDep, SettingsDep
from leadscore.api.errors import error_responses
from leadscore.api.fast_json import OrjsonRoute
from leadscore.api.payloads import check_batch, events_frame, lead_attributes, leads_frame, rows_frame
from leadscore.api.schemas import (
    ConflictBody,
    EventsIn,
    EventsIngested,
    ExpensesIn,
    ExpensesStored,
    GoalsIn,
    LeadsIn,
    LeadsIngested,
    Stored,
)
from leadscore.data.contracts import EXPENSES, GOALS
from leadscore.store import IngestResult

log = logging.getLogger("leadscore.api")

router = APIRouter(tags=["ingestion"], route_class=OrjsonRoute, dependencies=[NoQueryParameters])

ERRORS = error_responses("ingest", body=True)


def _store_changed(request: Request) -> None:
    """Leads changed (and were marked stale in the store): rebuild the cached list, wake the score keeper."""
    request.app.state.scored_cache.invalidate()
    keeper = getattr(request.app.state, "score_keeper", None)
    if keeper is not None:
        keeper.wake()


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
    result = repo.ingest(leads=leads_frame(body.leads), lead_attributes=lead_attributes(body.leads))
    _store_changed(request)
    log.info("%s upserted %d leads: %s", principal.name, len(body.leads), result.as_dict())
    return _leads_summary(len(body.leads), result)


@router.post(
    "/events",
    response_model=EventsIngested,
    summary="Add events, idempotently",
    responses=error_responses("ingest", body=True, more={409: (ConflictBody, "Event ids stored with other content.")}),
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
    result = repo.ingest(
        leads=leads_frame(body.leads),
        events=events_frame(body.events),
        lead_attributes=lead_attributes(body.leads),
    )
    if result.events_inserted or result.leads_created or result.leads_updated:
        _store_changed(request)
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
    stored = repo.upsert_goals(rows_frame(body.goals, GOALS.names))
    log.info("%s upserted %d goals", principal.name, stored)
    return Stored(stored=stored)


@router.post("/expenses", response_model=ExpensesStored, summary="Record expenses", responses=ERRORS)
def post_expenses(principal: IngestKey, body: ExpensesIn, repo: RepoDep, settings: SettingsDep) -> ExpensesStored:
    """Record expenses; returns their ids. Not idempotent: a retry records them again. Needs `ingest`."""
    check_batch("expenses", len(body.expenses), settings.max_batch_size)
    if not body.expenses:
        return ExpensesStored(ids=[])
    ids = repo.add_expenses(rows_frame(body.expenses, EXPENSES.names))
    log.info("%s recorded %d expenses", principal.name, len(ids))
    return ExpensesStored(ids=ids)
