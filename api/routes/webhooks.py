"""Webhook subscriptions and their delivery logs: thin routes over :mod:`leadscore.webhooks` and the outbox.

Every route needs the `webhooks` scope. A subscription's secret is returned once, by the POST that creates it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from leadscore.api.deps import NoQueryParameters, RepoDep, SettingsDep, WebhooksKey
from leadscore.api.errors import error_responses
from leadscore.api.schemas import ErrorBody, Text
from leadscore.store import outbox
from leadscore.store import webhook_subscriptions as stored
from leadscore.store.engine import run_in_write_transaction
from leadscore.webhooks import subscriptions
from leadscore.webhooks.service import target_policy

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

NOT_FOUND = {404: (ErrorBody, "No subscription with this id.")}
KINDS = ", ".join(f"`{k}`" for k in outbox.EVENT_KINDS)
#: A subscription's id in a path: a positive 64-bit integer (a larger one is a 422, not a database error).
SubscriptionId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The subscription's id.")]


class SubscriptionIn(BaseModel):
    """A new subscription: where, which events, and optionally your own secret."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"url": "https://crm.example.com/leadscore", "events": ["lead.grade_changed", "model.promoted"]}
            ]
        },
    )
    url: Text = Field(max_length=2048, description="An http(s) URL on a public address (the operator may allow more).")
    events: list[Text] = Field(max_length=len(outbox.EVENT_KINDS), description=f"Event kinds: {KINDS}.")
    description: Text | None = Field(None, description="For people: what this subscription is for.")
    secret: Text | None = Field(
        None, description="Your signing secret (24-256 characters); leave it out and one is generated."
    )


class DeliveryCounts(BaseModel):
    pending: int
    delivered: int
    dead: int


class Subscription(BaseModel):
    """A subscription (its secret is never shown again)."""

    id: int
    url: str
    events: list[str]
    description: str | None
    active: bool
    created_at: datetime
    deliveries: DeliveryCounts


class CreatedSubscription(Subscription):
    secret: str = Field(description="Signs every payload (HMAC-SHA256). Shown this once: keep it.")


class Delivery(BaseModel):
    """One event's delivery to this subscription: its state and the last attempt's outcome."""

    delivery_id: int
    event_id: str
    kind: str
    lead_id: str | None
    status: Literal["pending", "delivered", "dead"]
    attempts: int
    response_code: int | None
    last_error: str | None
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None


class DeliveryLog(BaseModel):
    subscription_id: int
    counts: DeliveryCounts
    limit: int
    offset: int
    items: list[Delivery]


class DeliveriesQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["pending", "delivered", "dead"] | None = Field(None, description="Only deliveries in this state.")
    limit: int = Field(100, ge=1, le=500)
    offset: int = Field(0, ge=0, le=1_000_000)


class RedeliverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    delivery_ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] | None = Field(
        None, max_length=1000, description="These finished deliveries; default: every dead-lettered one."
    )


class Queued(BaseModel):
    queued: int


class Pinged(BaseModel):
    event_id: str


def _shown(row: dict[str, Any], counts: dict[str, int]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k != "kinds"}
    return {**out, "events": row["kinds"], "deliveries": counts}


def _found(repo, subscription_id: int) -> dict[str, Any]:
    with repo.engine.connect() as conn:
        row = stored.get(conn, subscription_id)
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no webhook subscription {subscription_id}")
        return _shown(row, outbox.counts(conn, subscription_id))


def _wake(request: Request) -> None:
    worker = getattr(request.app.state, "webhook_worker", None)
    if worker is not None:
        worker.wake()


@router.post(
    "",
    status_code=201,
    response_model=CreatedSubscription,
    summary="Subscribe a URL to events",
    responses=error_responses("webhooks", body=True, invalid="A field cannot be used; `loc` names it."),
    dependencies=[NoQueryParameters],
)
def create_subscription(body: SubscriptionIn, principal: WebhooksKey, repo: RepoDep, settings: SettingsDep) -> Any:
    """Checks the URL (http or https; every address its host resolves to must be public, unless the operator
    allows private ones) and the event kinds, and stores the subscription. The answer carries the signing
    secret: the only time it is shown. Needs `webhooks`."""
    try:
        created = subscriptions.create(
            repo.engine,
            body.url,
            body.events,
            secret=body.secret,
            description=body.description,
            policy=target_policy(settings),
        )
    except subscriptions.SubscriptionError as err:
        raise RequestValidationError(
            [{"loc": ("body", p.field), "msg": p.message, "type": "value_error"} for p in err.problems]
        ) from None
    counts = {s: 0 for s in outbox.STATUSES}
    return {**_shown({k: v for k, v in created.items() if k != "secret"}, counts), "secret": created["secret"]}


@router.get(
    "",
    response_model=list[Subscription],
    summary="Every subscription",
    responses=error_responses("webhooks"),
    dependencies=[NoQueryParameters],
)
def list_subscriptions(principal: WebhooksKey, repo: RepoDep) -> Any:
    """Every subscription, oldest first, with its deliveries by state (no secrets). Needs `webhooks`."""
    with repo.engine.connect() as conn:
        return [_shown(row, outbox.counts(conn, row["id"])) for row in stored.list_all(conn)]


@router.get(
    "/{subscription_id}",
    response_model=Subscription,
    summary="One subscription",
    responses=error_responses("webhooks", more=NOT_FOUND),
    dependencies=[NoQueryParameters],
)
def get_subscription(subscription_id: SubscriptionId, principal: WebhooksKey, repo: RepoDep) -> Any:
    """One subscription with its deliveries by state (no secret). Needs `webhooks`."""
    return _found(repo, subscription_id)


@router.delete(
    "/{subscription_id}",
    status_code=204,
    summary="Unsubscribe",
    responses=error_responses("webhooks", more=NOT_FOUND),
    dependencies=[NoQueryParameters],
)
def delete_subscription(subscription_id: SubscriptionId, principal: WebhooksKey, repo: RepoDep) -> Response:
    """Deletes the subscription and its delivery log; its pending deliveries are never sent. Needs `webhooks`."""
    if not run_in_write_transaction(repo.engine, lambda conn: stored.delete(conn, subscription_id)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no webhook subscription {subscription_id}")
    return Response(status_code=204)


@router.get(
    "/{subscription_id}/deliveries",
    response_model=DeliveryLog,
    summary="A subscription's delivery log",
    responses=error_responses("webhooks", more=NOT_FOUND),
)
def delivery_log(
    subscription_id: SubscriptionId, query: Annotated[DeliveriesQuery, Query()], principal: WebhooksKey, repo: RepoDep
) -> Any:
    """The deliveries of events to this subscription, newest first: state, attempts, the last response code
    and error, when the next attempt is due. Needs `webhooks`."""
    found = _found(repo, subscription_id)
    with repo.engine.connect() as conn:
        items = outbox.deliveries(conn, subscription_id, status=query.status, limit=query.limit, offset=query.offset)
    return {
        "subscription_id": subscription_id,
        "counts": found["deliveries"],
        "limit": query.limit,
        "offset": query.offset,
        "items": items,
    }


@router.post(
    "/{subscription_id}/redeliver",
    response_model=Queued,
    summary="Send dead-lettered (or chosen) deliveries again",
    responses=error_responses("webhooks", body=True, more=NOT_FOUND),
    dependencies=[NoQueryParameters],
)
def redeliver(
    subscription_id: SubscriptionId,
    principal: WebhooksKey,
    repo: RepoDep,
    request: Request,
    body: RedeliverIn | None = None,
) -> Any:
    """Queues again every dead-lettered delivery of this subscription, or the finished deliveries named in
    `delivery_ids`; each starts over. Needs `webhooks`."""
    _found(repo, subscription_id)
    ids = body.delivery_ids if body is not None else None
    queued = run_in_write_transaction(
        repo.engine, lambda conn: outbox.redeliver(conn, subscription_id, delivery_ids=ids)
    )
    _wake(request)
    return {"queued": queued}


@router.post(
    "/{subscription_id}/ping",
    response_model=Pinged,
    status_code=202,
    summary="Send a test event",
    responses=error_responses("webhooks", more=NOT_FOUND),
    dependencies=[NoQueryParameters],
)
def ping(subscription_id: SubscriptionId, principal: WebhooksKey, repo: RepoDep, request: Request) -> Any:
    """Queues a `webhook.ping` event for this subscription alone, to check the receiver and its signature
    check. Needs `webhooks`."""
    event_id = subscriptions.ping(repo.engine, subscription_id)
    if event_id is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no webhook subscription {subscription_id}")
    _wake(request)
    return {"event_id": event_id}
