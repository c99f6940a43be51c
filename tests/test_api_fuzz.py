"""Property-based run of the OpenAPI description (schemathesis) against a real server: no 5xx, and every
response matches the schema.

A uvicorn process on loopback serves a store seeded with simulated leads and events, scoring with a
gradient-boosting champion. Every operation gets EXAMPLES schema-valid requests (positive) and EXAMPLES invalid
ones (negative), sent over HTTP with a key of every scope. Some of the generated requests are pointed at stored
leads (the lead of ``/leads/{lead_id}/score``, the leads of posted events), so that the success paths run, and
the test fails if any operation never answered 2xx: a route that only ever refused its input was not fuzzed.

A schema-valid request may still be refused for what the schema cannot say (an event for an unknown lead, a
duplicate id in a batch, a lead closed at the cutoff), so schemathesis' "positive data is accepted" check is left
out. The store grows by at most ``BATCH`` rows per ingestion request (the server's batch limit) and is checked at
the end. Bounded: a fixed number of examples per operation, no example database.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict

import httpx
import pytest
import requests
import schemathesis
from hypothesis import given, settings
from hypothesis import strategies as st
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from leadscore.data.contracts import CLOSING_EVENT_TYPES, CrmData
from leadscore.store import Repository
from leadscore.webhooks import subscriptions
from leadscore.webhooks.targets import TargetPolicy

pytest_plugins = ["api_fixtures"]

pytestmark = pytest.mark.slow

# Left out: "positive data is accepted" (see above), and "negative data is rejected" because a free-form text
# query parameter cannot tell an object serialised as text (``stage=a,b``) from text, so it reports what is not a
# bug. What it did find (a boolean taken for a number, a bare number for a timestamp, an unknown or repeated query
# parameter) is now refused and tested in test_api_ingest, test_api_scoring and here through the 5xx/schema checks.
EXCLUDED = [positive_data_acceptance, negative_data_rejection]
# Per operation: EXAMPLES schema-valid requests and half as many invalid ones; more for a deeper run.
EXAMPLES = int(os.environ.get("LEADSCORE_FUZZ_EXAMPLES", "50"))
SEEDED_LEADS = 120  # leads (with all their events) copied from the simulated CRM into the store
BATCH = 5  # the server's LEADSCORE_MAX_BATCH_SIZE: what one ingestion request can add at most
ALL_SCOPES = {"X-API-Key": "all-key"}
KEYS = {
    "ingest-key": ["ingest"],
    "read-key": ["read"],
    "score-key": ["score"],
    "webhooks-key": ["webhooks"],
    "all-key": ["ingest", "read", "score", "webhooks"],
}
SUBSCRIPTION_ROUTE = "/api/v1/webhooks/{subscription_id}"
SEEDED_SUBSCRIPTIONS = 200  # enough that the fuzzed DELETEs leave most for the other routes
SCORE_ROUTE = "/api/v1/leads/{lead_id}/score"

#: The scope each /api/v1 operation needs (api/security.py); the test fails if an operation is missing here.
SCOPES = {
    ("POST", "/api/v1/scores"): "score",
    ("GET", "/api/v1/leads/prioritized"): "read",
    ("GET", SCORE_ROUTE): "score",
    ("POST", "/api/v1/leads"): "ingest",
    ("POST", "/api/v1/events"): "ingest",
    ("POST", "/api/v1/goals"): "ingest",
    ("POST", "/api/v1/expenses"): "ingest",
    ("GET", "/api/v1/model"): "read",
    ("POST", "/api/v1/model/reload"): "score",
    ("GET", "/api/v1/funnel"): "read",
    ("GET", "/api/v1/reps/performance"): "read",
    ("GET", "/api/v1/goals/progress"): "read",
    ("GET", "/api/v1/monitoring/outcomes"): "read",
    ("GET", "/api/v1/monitoring/drift"): "read",
    ("POST", "/api/v1/webhooks"): "webhooks",
    ("GET", "/api/v1/webhooks"): "webhooks",
    ("GET", SUBSCRIPTION_ROUTE): "webhooks",
    ("DELETE", SUBSCRIPTION_ROUTE): "webhooks",
    ("GET", SUBSCRIPTION_ROUTE + "/deliveries"): "webhooks",
    ("POST", SUBSCRIPTION_ROUTE + "/redeliver"): "webhooks",
    ("POST", SUBSCRIPTION_ROUTE + "/ping"): "webhooks",
}


def seed(store_url: str, crm: CrmData) -> tuple[list[str], list[str], int]:
    """Store the first SEEDED_LEADS leads of ``crm`` with their events: the ids of the open and of the closed ones,
    and the number of events."""
    leads = crm.leads.head(SEEDED_LEADS)
    events = crm.events[crm.events["lead_id"].isin(leads["lead_id"])]
    repo = Repository.from_url(store_url)
    try:
        repo.import_crm(CrmData(leads=leads, events=events))
        open_policy = TargetPolicy(allow_private=True)
        for _ in range(SEEDED_SUBSCRIPTIONS):  # ids 1.. for the routes of one subscription
            subscriptions.create(repo.engine, "http://127.0.0.1:9/hook", ["model.promoted"], policy=open_policy)
    finally:
        repo.engine.dispose()
    closed = set(events.loc[events["type"].isin(CLOSING_EVENT_TYPES), "lead_id"])
    ids = leads["lead_id"].astype(str).tolist()
    return [i for i in ids if i not in closed], [i for i in ids if i in closed], len(events)


def stored_leads_some_of_the_time(api, open_ids: list[str], closed_ids: list[str], crm: CrmData) -> None:
    """Schema hooks: point part of the schema-valid requests at stored leads and real histories, so that their
    success paths run (random ids are unknown leads, random events belong to no lead, random feature rows lack the
    model's columns)."""
    known = st.sampled_from(open_ids + closed_ids[:10])  # mostly open leads; a closed one is a documented 409
    open_now = st.sampled_from(open_ids)
    histories = [history_body(crm, [lead]) for lead in open_ids[:5]] + [history_body(crm, open_ids[:3])]

    @api.hook
    def flatmap_case(ctx, case):
        if case.meta is None or case.meta.generation.mode is not GenerationMode.POSITIVE:
            return st.just(case)
        if case.operation.path == SCORE_ROUTE:  # as generated, a stored lead, or an open stored lead as of now
            choice = st.one_of(
                st.tuples(st.sampled_from(["generated", "stored"]), known), st.tuples(st.just("now"), open_now)
            )
            return choice.map(lambda pick: with_path_lead(case, *pick))
        if case.operation.path == "/api/v1/events" and isinstance(case.body, dict) and case.body.get("events"):
            size = len(case.body["events"])
            chosen = st.lists(st.one_of(st.none(), known), min_size=size, max_size=size)
            return st.one_of(st.just(None), chosen).map(lambda leads: with_event_leads(case, leads))
        if case.operation.path.startswith(SUBSCRIPTION_ROUTE):  # mostly a stored subscription
            # DELETE takes the upper half of the seeded ids, so the other routes still find theirs.
            half = SEEDED_SUBSCRIPTIONS // 2
            ids = st.integers(half + 1, 2 * half) if case.operation.method.upper() == "DELETE" else st.integers(1, half)
            stored = st.one_of(st.none(), ids)
            return stored.map(lambda sub: with_path_subscription(case, sub))
        if case.operation.path == "/api/v1/webhooks" and case.operation.method.upper() == "POST":
            return st.booleans().map(lambda usable: with_usable_target(case, usable))
        if case.operation.path == "/api/v1/scores" and isinstance(case.body, dict):
            return st.one_of(st.just(None), st.sampled_from(histories)).map(lambda body: with_history(case, body))
        return st.just(case)


def history_body(crm: CrmData, lead_ids: list[str]) -> dict:
    """A /scores body with the stored leads ``lead_ids`` and their whole histories, as a CRM would send them."""
    leads = crm.leads[crm.leads["lead_id"].isin(lead_ids)]
    events = crm.events[crm.events["lead_id"].isin(lead_ids)]
    lead_rows = []
    for row in json.loads(leads.to_json(orient="records", date_format="iso")):
        fixed = {k: row.pop(k) for k in ("lead_id", "created_at", "owner_id", "source")}
        lead_rows.append({**fixed, "attributes": {k: v for k, v in row.items() if v is not None}})
    event_rows = json.loads(events.to_json(orient="records", date_format="iso"))
    return {"leads": lead_rows, "events": [{k: v for k, v in e.items() if v is not None} for e in event_rows]}


def with_path_lead(case, how: str, lead: str):
    if how != "generated":
        case.path_parameters = {**case.path_parameters, "lead_id": lead}
    if how == "now":
        case.query = {k: v for k, v in (case.query or {}).items() if k != "as_of"}
    return case


def with_path_subscription(case, subscription: int | None):
    if subscription is not None:
        case.path_parameters = {**case.path_parameters, "subscription_id": subscription}
    return case


def with_usable_target(case, usable: bool):
    # Random URLs are unknown hosts and random kinds unknown: half of the new subscriptions get a usable pair.
    if usable and isinstance(case.body, dict):
        case.body = {**case.body, "url": "http://127.0.0.1:9/hook", "events": ["model.promoted"]}
        if not (isinstance(case.body.get("secret"), str) and 24 <= len(case.body["secret"]) <= 256):
            case.body.pop("secret", None)
    return case


def with_event_leads(case, leads: list[str | None] | None):
    if leads is not None:
        events = [dict(e, lead_id=lead) if lead else e for e, lead in zip(case.body["events"], leads, strict=True)]
        case.body = {**case.body, "events": events}
    return case


def with_history(case, body: dict | None):
    # The generated options (cutoff, percentile_of, reasons) are kept; the leads and their histories are real.
    if body is not None:
        options = {k: v for k, v in case.body.items() if k in ("cutoff", "percentile_of", "reasons")}
        case.body = {**body, **options}
    return case


def modes_of(operation) -> tuple[GenerationMode, ...]:
    # The health probes take no input at all (no parameter, no body, no key): there is no invalid request to make.
    if operation.path.startswith("/api/v1"):
        return (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    return (GenerationMode.POSITIVE,)


def ingestion_first(operation) -> tuple[int, str]:
    # Ingestion runs first, so that the reading and scoring routes then also see what the fuzzer stored.
    return (0 if SCOPES.get((operation.method.upper(), operation.path)) == "ingest" else 1, operation.label)


def fuzz(operation, mode: GenerationMode, session: requests.Session, statuses: Counter) -> None:
    """Send EXAMPLES generated requests (half as many invalid ones) to ``operation``, counting the statuses.

    Every Hypothesis health check is on: none fires on this schema (the hooks draw from small lists, and the
    bodies stay small), so a new one that does is worth a look rather than a silent suppression.
    """

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES if mode is GenerationMode.POSITIVE else max(1, EXAMPLES // 2),
        deadline=None,
        database=None,
        # The same examples on every run, so that CI passes or fails on the code, not on the draw; set
        # LEADSCORE_FUZZ_EXPLORE=1 to draw new ones (a found failure prints the case that reproduces it).
        derandomize=not os.environ.get("LEADSCORE_FUZZ_EXPLORE"),
    )
    def run(case):
        response = case.call_and_validate(session=session, headers=ALL_SCOPES, excluded_checks=EXCLUDED, timeout=60)
        statuses[response.status_code] += 1

    run()


def every_route_refuses_a_missing_or_unknown_key_and_a_key_without_its_scope(base_url: str) -> None:
    # Beside the fuzzing (whose negative cases also drop the key, and whose "ignored auth" check resends
    # successful requests without a key and with a wrong one): every route, every way of being unauthorised.
    with httpx.Client(base_url=base_url, timeout=60) as client:
        for (method, path), scope in SCOPES.items():
            url = path.replace("{lead_id}", "L-1").replace("{subscription_id}", "1")
            assert client.request(method, url).status_code == 401, (method, path)
            assert client.request(method, url, headers={"X-API-Key": "nope"}).status_code == 401, (method, path)
            for key, scopes in KEYS.items():
                if scope not in scopes:
                    answer = client.request(method, url, headers={"X-API-Key": key})
                    assert answer.status_code == 403, (method, path, key, answer.text)
                    assert scope in answer.json()["detail"]


def test_every_request_gets_a_documented_answer_never_a_5xx_and_every_route_succeeds(
    store_url, make_server, boosting_registry, crm_sample
):
    open_ids, closed_ids, seeded_events = seed(store_url, crm_sample)
    env = {
        "LEADSCORE_MLFLOW_TRACKING_URI": boosting_registry,
        "LEADSCORE_API_KEYS": json.dumps(KEYS),
        "LEADSCORE_MAX_BATCH_SIZE": str(BATCH),
        "LEADSCORE_WEBHOOKS_ALLOW_PRIVATE": "true",  # the usable target above is on loopback
        "LEADSCORE_WEBHOOKS": "false",  # nothing to deliver to
    }
    server = make_server(store_url, env)
    model = httpx.get(f"{server.base_url}/api/v1/model", headers=ALL_SCOPES, timeout=30).json()
    assert model["chosen"] == "gradient_boosting" and model["source"] == "crm", model

    every_route_refuses_a_missing_or_unknown_key_and_a_key_without_its_scope(server.base_url)

    api = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
    stored_leads_some_of_the_time(api, open_ids, closed_ids, crm_sample)
    operations = sorted((result.ok() for result in api.get_all_operations()), key=ingestion_first)
    assert {(op.method.upper(), op.path) for op in operations if op.path.startswith("/api/v1")} == set(SCOPES)

    statuses: dict[tuple[str, str], Counter] = defaultdict(Counter)  # (operation, mode) -> status -> count
    failures: list[str] = []
    with requests.Session() as session:
        for operation in operations:
            for mode in modes_of(operation):
                try:
                    fuzz(operation, mode, session, statuses[operation.label, mode.value])
                except Exception as err:  # noqa: BLE001 - gather every operation's failure, report them all
                    failures.append(f"{operation.label} ({mode.value}): {err}")

    print(json.dumps({f"{label} ({mode})": dict(sorted(c.items())) for (label, mode), c in statuses.items()}, indent=1))
    report: dict[str, Counter] = defaultdict(Counter)
    for (label, _), counts in statuses.items():
        report[label].update(counts)
    assert not failures, "\n\n".join(failures) + f"\n\nserver log (end):\n{server.log.read_text()[-4000:]}"
    assert not [label for label, counts in report.items() if any(code >= 500 for code in counts)], report
    never_succeeded = [op.label for op in operations if not any(200 <= c < 300 for c in report[op.label])]
    assert not never_succeeded, f"never answered 2xx: {never_succeeded}; statuses: {report}"

    # Bounded growth: a successful ingestion request adds at most BATCH rows (BATCH leads and BATCH events to /events).
    added_leads = BATCH * (report["POST /api/v1/leads"][200] + report["POST /api/v1/events"][200])
    repo = Repository.from_url(store_url)
    try:
        assert repo.count("leads") <= SEEDED_LEADS + added_leads
        assert repo.count("events") <= seeded_events + BATCH * report["POST /api/v1/events"][200]
    finally:
        repo.engine.dispose()
