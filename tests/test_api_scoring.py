"""Scoring over HTTP with a real (small) model in a throwaway MLflow registry."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from leadscore import registry
from leadscore.api.main import create_app
from leadscore.api.score_schemas import ScoreResponse, StoredLeadScore
from leadscore.data.contracts import EVENTS
from leadscore.features.builder import build_features
from leadscore.grades import grades

pytest_plugins = ["api_fixtures"]

KEY = {"X-API-Key": "all-key"}
CUTOFF = pd.Timestamp("2024-10-01", tz="UTC")


@pytest.fixture
def champion_v1(model_registry):
    """The registry with version 1 as champion, before and after the test (tests may move the alias)."""
    registry.promote("1", uri=model_registry)
    yield model_registry
    registry.promote("1", uri=model_registry)


@pytest.fixture
def client(store_url, make_settings, champion_v1):
    with TestClient(create_app(make_settings(store_url, mlflow_tracking_uri=champion_v1))) as test_client:
        yield test_client


@pytest.fixture
def stored_client(client, crm_sample):
    """The client over a store holding ``crm_sample``, once the score keeper has scored its open leads."""
    repo = client.app.state.repository
    repo.import_crm(crm_sample)
    client.app.state.score_keeper.wake()
    deadline = time.monotonic() + 120
    while repo.pending_scores() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert repo.pending_scores() == 0, client.app.state.score_keeper.problem
    return client


def open_features(data, cutoff=CUTOFF) -> pd.DataFrame:
    return build_features(data.leads, data.events, cutoff)


def history_payload(data, lead_ids) -> dict:
    leads = data.leads[data.leads["lead_id"].isin(lead_ids)]
    events = data.events[data.events["lead_id"].isin(lead_ids)]
    attributes = [c for c in leads.columns if c not in ("lead_id", "created_at", "owner_id", "source")]
    lead_rows = json.loads(leads.to_json(orient="records", date_format="iso"))
    for row in lead_rows:
        row["attributes"] = {k: row.pop(k) for k in attributes if row.get(k) is not None}
        for k in attributes:
            row.pop(k, None)
    return {
        "leads": lead_rows,
        "events": json.loads(events[EVENTS.names].to_json(orient="records", date_format="iso")),
        "cutoff": CUTOFF.isoformat(),
    }


def own_probabilities(uri: str, version: str, features: pd.DataFrame) -> pd.Series:
    """What registered ``version`` itself says for these feature rows: MLflow's loader, then ``predict_proba``."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    model = mlflow.sklearn.load_model(f"models:/{registry.MODEL_NAME}/{version}")
    return pd.Series(model.predict_proba(features[list(model.feature_names_in_)])[:, 1], index=features["lead_id"])


# The service scores through the compiled model (leadscore.model.compiled), equal to the pipeline to 1e-9 on the
# log-odds; a probability moves by at most a quarter of that.
SAME_PROBABILITY = 1e-9


@pytest.fixture
def mlflow_loads_skops(monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")  # MLflow's own loader asks for the opt-in


def test_without_a_model_scoring_is_a_503_saying_how_to_train(store_url, make_settings):
    with TestClient(create_app(make_settings(store_url))) as client:
        responses = [
            client.post("/api/v1/scores", json={"dataframe_records": [{"x": 1}]}, headers=KEY),
            client.get("/api/v1/model", headers=KEY),
            client.get("/api/v1/leads/prioritized", headers=KEY),
            client.get("/api/v1/leads/L1/score", headers=KEY),
            client.post("/api/v1/model/reload", headers=KEY),
        ]
        ready = client.get("/readyz")
        ingest = client.post("/api/v1/leads", json={"leads": [{"lead_id": "L1", "created_at": "2024-01-01"}]},
                             headers=KEY)  # fmt: skip
    for response in responses:
        assert response.status_code == 503, response.request.url
        assert "leadscore train" in response.json()["detail"]
    assert ready.status_code == 503
    assert ready.json()["database"]["ok"] and not ready.json()["model"]["loaded"]
    assert ingest.status_code == 200  # ingestion needs no model


def test_readiness_and_model_info_once_a_model_is_loaded(client, champion_v1):
    from mlflow import MlflowClient

    assert client.get("/readyz").json()["model"] == {"loaded": True, "detail": "version 1 (champion)", "version": "1"}
    info = client.get("/api/v1/model", headers=KEY).json()
    assert (info["version"], info["alias"], info["source"], info["chosen"]) == ("1", "champion", "crm", "logistic")
    mlflow_client = MlflowClient(champion_v1)
    run = mlflow_client.get_run(mlflow_client.get_model_version(registry.MODEL_NAME, "1").run_id)
    assert info["trained_at"] and info["metrics"]["roc_auc"] == run.data.metrics["roc_auc"]
    assert info["metrics"]["log_loss"] == run.data.metrics["log_loss"]
    assert {"name": "stage", "kind": "categorical"} in info["features"]


def test_scores_from_histories_equal_scores_from_the_same_feature_rows(client, crm_sample):
    features = open_features(crm_sample)
    open_ids = features["lead_id"].head(5).tolist()
    closed = crm_sample.events.query("type == 'won' and at < @CUTOFF")["lead_id"].iloc[0]
    later = crm_sample.leads.loc[crm_sample.leads["created_at"] > CUTOFF, "lead_id"].iloc[0]

    by_history = client.post("/api/v1/scores", json=history_payload(crm_sample, [*open_ids, closed, later]),
                             headers=KEY)  # fmt: skip
    rows = json.loads(features[features["lead_id"].isin(open_ids)].drop(columns="cutoff").to_json(orient="records"))
    by_records = client.post("/api/v1/scores", json={"dataframe_records": rows}, headers=KEY)
    split = {"columns": list(rows[0]), "data": [list(r.values()) for r in rows]}
    by_split = client.post("/api/v1/scores", json={"dataframe_split": split}, headers=KEY)

    assert by_history.status_code == by_records.status_code == by_split.status_code == 200, by_history.text
    history = {s["lead_id"]: s for s in by_history.json()["scores"]}
    assert sorted(history) == sorted(open_ids)
    for other in (by_records.json()["scores"], by_split.json()["scores"]):
        assert {s["lead_id"]: s["probability"] for s in other} == pytest.approx(
            {k: v["probability"] for k, v in history.items()}, rel=1e-9
        )
    reasons = {n["lead_id"]: n["reason"] for n in by_history.json()["not_scored"]}
    assert "closed (won)" in reasons[closed] and "after the cutoff" in reasons[later]
    first = history[open_ids[0]]
    assert first["model_version"] == "1" and first["reasons_up"]
    assert first["cutoff"].startswith("2024-10-01")


def test_served_probabilities_are_the_named_versions_own_predictions(client, champion_v1, crm_sample,
                                                                     mlflow_loads_skops):  # fmt: skip
    features = open_features(crm_sample)
    ids = features["lead_id"].head(30).tolist()
    rows = features[features["lead_id"].isin(ids)]
    own = {v: own_probabilities(champion_v1, v, rows) for v in ("1", "2")}
    assert (own["1"] - own["2"]).abs().max() > 0.01, "the two versions must disagree for this test to mean much"
    records = json.loads(rows.drop(columns="cutoff").to_json(orient="records"))
    for version in ("1", "2"):
        registry.promote(version, uri=champion_v1)
        assert client.post("/api/v1/model/reload", headers=KEY).json()["version"] == version
        for body in (history_payload(crm_sample, ids), {"dataframe_records": records}):
            answer = client.post("/api/v1/scores", json=body, headers=KEY).json()
            assert answer["model_version"] == version
            scores = answer["scores"]
            assert sorted(s["lead_id"] for s in scores) == sorted(ids)
            assert {s["model_version"] for s in scores} == {version}
            served = pd.Series({s["lead_id"]: s["probability"] for s in scores})
            np.testing.assert_allclose(served[own[version].index], own[version], rtol=0, atol=SAME_PROBABILITY)
            expected_grades = grades(served.to_numpy(), client.app.state.model_holder.require().scorer.grade_cutoffs)
            assert [s["grade"] for s in scores] == expected_grades.tolist()


def test_stored_leads_are_served_the_named_versions_own_predictions(stored_client, champion_v1, crm_sample,
                                                                    mlflow_loads_skops):  # fmt: skip
    features = open_features(crm_sample)
    own = own_probabilities(champion_v1, "1", features)
    for lead_id in features["lead_id"].head(5):
        answer = stored_client.get(f"/api/v1/leads/{lead_id}/score?as_of=2024-10-01T00:00:00Z", headers=KEY).json()
        assert answer["model_version"] == "1"
        assert answer["probability"] == pytest.approx(own[lead_id], rel=0, abs=SAME_PROBABILITY)
    listed = stored_client.get("/api/v1/leads/prioritized?as_of=2024-10-01T00:00:00Z&limit=1000", headers=KEY).json()
    assert listed["model_version"] == "1"
    served = pd.Series({i["lead_id"]: i["probability"] for i in listed["items"]})
    assert sorted(served.index) == sorted(own.index)
    np.testing.assert_allclose(served[own.index], own, rtol=0, atol=SAME_PROBABILITY)


def test_scoring_answers_match_the_documented_response_and_reasons_can_be_left_out(client, crm_sample):
    features = open_features(crm_sample)
    ids = features["lead_id"].head(20).tolist()
    rows = json.loads(features[features["lead_id"].isin(ids)].drop(columns="cutoff").to_json(orient="records"))
    for body in ({"dataframe_records": rows, "cutoff": CUTOFF.isoformat()}, history_payload(crm_sample, ids)):
        full = client.post("/api/v1/scores", json=body, headers=KEY)
        bare = client.post("/api/v1/scores", json={**body, "reasons": False}, headers=KEY)
        assert full.status_code == bare.status_code == 200, full.text
        # The route writes its JSON itself: it must be exactly what the response model would have written.
        for response in (full, bare):
            documented = ScoreResponse.model_validate_json(response.content)
            assert json.loads(documented.model_dump_json()) == response.json()
        with_reasons, without = full.json()["scores"], bare.json()["scores"]
        assert [s["probability"] for s in without] == pytest.approx([s["probability"] for s in with_reasons], 1e-12)
        assert [s["grade"] for s in without] == [s["grade"] for s in with_reasons]
        assert all(s["reasons_up"] == s["reasons_down"] == [] for s in without)
        assert any(s["reasons_up"] for s in with_reasons) and any(s["reasons_down"] for s in with_reasons)


def test_a_reference_percentile_does_not_depend_on_the_rest_of_the_batch(client, crm_sample):
    rows = json.loads(open_features(crm_sample).head(6).drop(columns="cutoff").to_json(orient="records"))
    alone = client.post("/api/v1/scores", json={"dataframe_records": rows[:1]}, headers=KEY).json()["scores"][0]
    batch = client.post("/api/v1/scores", json={"dataframe_records": rows}, headers=KEY).json()["scores"][0]
    assert alone["percentile"] == batch["percentile"]


def test_events_sent_for_scoring_need_no_ids_and_missing_attributes_are_reported(client, crm_sample):
    lead_id = open_features(crm_sample)["lead_id"].iloc[0]
    payload = history_payload(crm_sample, [lead_id])
    for event in payload["events"]:
        event.pop("event_id")
    payload["leads"][0]["attributes"] = {}
    response = client.post("/api/v1/scores", json=payload, headers=KEY)
    assert response.status_code == 200, response.text
    assert [s["lead_id"] for s in response.json()["scores"]] == [lead_id]
    assert "segment" in response.json()["missing_attributes"]


def test_feature_rows_missing_a_feature_or_with_a_bad_value_are_a_422_naming_it(client, crm_sample):
    row = json.loads(open_features(crm_sample).head(1).drop(columns="cutoff").to_json(orient="records"))[0]
    null = client.post("/api/v1/scores", json={"dataframe_records": [{**row, "call_total": None}]}, headers=KEY)
    assert null.status_code == 200  # a null value is a missing value, which the model handles
    without = {k: v for k, v in row.items() if k != "call_total"}
    response = client.post("/api/v1/scores", json={"dataframe_records": [without]}, headers=KEY)
    assert response.status_code == 422
    assert "call_total" in response.json()["detail"][0]["msg"]
    bad = client.post("/api/v1/scores", json={"dataframe_records": [row, {**row, "call_total": "many"}]},
                      headers=KEY)  # fmt: skip
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "dataframe_records", 1, "call_total"]


def test_feature_rows_with_unusable_text_or_infinite_numbers_are_a_422(client, crm_sample):
    row = json.loads(open_features(crm_sample).head(1).drop(columns="cutoff").to_json(orient="records"))[0]
    escaped = json.dumps({"dataframe_records": [{**row, "stage": "\ud800"}]})  # valid JSON, invalid Unicode
    json_headers = {**KEY, "Content-Type": "application/json"}
    lone_surrogate = client.post("/api/v1/scores", content=escaped, headers=json_headers)
    assert lone_surrogate.status_code == 422
    assert lone_surrogate.json()["detail"][0]["loc"] == ["body", "dataframe_records", 0, "stage"]
    with_sentinel = {**row, "call_total": 123456.5}
    raw = json.dumps({"dataframe_split": {"columns": list(with_sentinel), "data": [list(with_sentinel.values())]}})
    raw = raw.replace("123456.5", "Infinity")  # Python's JSON reader accepts it; the service must not
    infinite = client.post("/api/v1/scores", content=raw, headers=json_headers)
    assert infinite.status_code == 422
    column = list(with_sentinel).index("call_total")
    assert infinite.json()["detail"][0]["loc"] == ["body", "dataframe_split", "data", 0, column]


@pytest.mark.parametrize(
    ("column", "cell"),
    [
        ("call_total", "9" * 400),  # a number too big for a float
        ("call_total", "-" + "9" * 400),
        ("call_total", "[" * 900 + "]" * 900),  # a number that is a deeply nested list
        ("stage", "[" * 900 + "]" * 900),  # a text that is a deeply nested list or object
        ("stage", '{"a": ' * 500 + "1" + "}" * 500),
    ],
    ids=["huge-integer", "huge-negative-integer", "deep-list-as-number", "deep-list-as-text", "deep-object-as-text"],
)
def test_a_feature_cell_too_big_or_too_deep_is_a_422_naming_it_never_a_500(client, crm_sample, column, cell):
    row = json.loads(open_features(crm_sample).head(1).drop(columns="cutoff").to_json(orient="records"))[0]
    row[column] = "@SENTINEL@"
    json_headers = {**KEY, "Content-Type": "application/json"}
    by_records = json.dumps({"dataframe_records": [row]}).replace('"@SENTINEL@"', cell)
    answer = client.post("/api/v1/scores", content=by_records, headers=json_headers)
    assert answer.status_code == 422, answer.text[:300]
    assert answer.json()["detail"][0]["loc"] == ["body", "dataframe_records", 0, column]
    assert len(answer.text) < 2_000  # the message shows the value shortened, not whole
    by_split = json.dumps({"dataframe_split": {"columns": list(row), "data": [list(row.values())]}})
    answer = client.post("/api/v1/scores", content=by_split.replace('"@SENTINEL@"', cell), headers=json_headers)
    assert answer.status_code == 422, answer.text[:300]
    assert answer.json()["detail"][0]["loc"] == ["body", "dataframe_split", "data", 0, list(row).index(column)]


def test_a_number_sent_for_a_text_feature_is_read_as_its_text(client, crm_sample):
    row = json.loads(open_features(crm_sample).head(1).drop(columns="cutoff").to_json(orient="records"))[0]
    as_number = client.post("/api/v1/scores", json={"dataframe_records": [{**row, "stage": 12345}]}, headers=KEY)
    as_text = client.post("/api/v1/scores", json={"dataframe_records": [{**row, "stage": "12345"}]}, headers=KEY)
    assert as_number.status_code == as_text.status_code == 200
    assert as_number.json()["scores"] == as_text.json()["scores"]


def test_a_score_request_must_say_what_to_score(client):
    response = client.post("/api/v1/scores", json={"cutoff": "2024-01-01"}, headers=KEY)
    assert response.status_code == 422
    assert "exactly one of" in response.json()["detail"][0]["msg"]
    assert client.post("/api/v1/scores", json={"dataframe_records": []}, headers={"X-API-Key": "read-key"}
                       ).status_code == 403  # fmt: skip


def test_a_stored_lead_is_scored_recorded_and_trended(stored_client, crm_sample):
    lead_id = open_features(crm_sample)["lead_id"].iloc[0]
    repo = stored_client.app.state.repository
    kept = len(repo.load_score_history(lead_id))  # the keeper's score as of now, if the lead is open now
    url = f"/api/v1/leads/{lead_id}/score?as_of=2024-10-01T00:00:00Z"
    first = stored_client.get(url, headers=KEY)
    second = stored_client.get(url, headers=KEY)

    assert first.status_code == 200, first.text
    assert len(first.json()["history"]) == kept
    assert second.json()["trend"]["direction"] == "flat"
    assert second.json()["trend"]["previous_probability"] == pytest.approx(first.json()["probability"])
    assert len(second.json()["history"]) == kept + 1
    assert len(repo.load_score_history(lead_id)) == kept + 2


def test_a_kept_score_is_read_as_stored_and_says_when_it_is_stale(stored_client, crm_sample):
    repo = stored_client.app.state.repository
    keeper = stored_client.app.state.score_keeper
    _, _, rows = repo.prioritized_page(limit=1)
    [row] = rows
    url = f"/api/v1/leads/{row['lead_id']}/score"
    current = stored_client.get(url, headers=KEY).json()
    StoredLeadScore.model_validate(current)  # written straight to JSON: still the documented answer
    assert (current["stale"], current["stale_reason"]) == (False, None)
    assert current["probability"] == row["probability"] and current["model_version"] == "1"
    assert current["reasons_up"] == row["reasons_up"]
    assert pd.Timestamp(current["cutoff"]) == row["cutoff"] and pd.Timestamp(current["scored_at"]) == row["computed_at"]

    keeper.stop()  # so that the stale score can be seen before it is redone
    event = {"event_id": "kept-1", "lead_id": row["lead_id"], "at": "2024-06-01T10:00:00Z", "type": "call"}
    assert stored_client.post("/api/v1/events", json={"events": [event]}, headers=KEY).status_code == 200
    stale = stored_client.get(url, headers=KEY).json()
    listed = stored_client.get("/api/v1/leads/prioritized?limit=1000", headers=KEY).json()["items"]
    assert (stale["stale"], stale["probability"]) == (True, row["probability"])
    assert stale["stale_reason"] == "new data since this score; re-scoring is queued"
    assert [(i["stale"], i["stale_reason"]) for i in listed if i["lead_id"] == row["lead_id"]] == [
        (True, stale["stale_reason"])
    ]
    keeper.drain()
    fresh = stored_client.get(url, headers=KEY).json()
    assert fresh["stale"] is False and pd.Timestamp(fresh["cutoff"]) > pd.Timestamp(current["cutoff"])


def test_scoring_an_unknown_or_closed_stored_lead_says_why(stored_client, crm_sample):
    assert stored_client.get("/api/v1/leads/nobody/score", headers=KEY).status_code == 404
    won = crm_sample.events.query("type == 'won'").iloc[0]
    response = stored_client.get(f"/api/v1/leads/{won['lead_id']}/score?as_of=2025-02-01T00:00:00Z", headers=KEY)
    assert response.status_code == 409
    assert "closed (won)" in response.json()["detail"]


def test_the_prioritized_list_ranks_every_open_lead_and_pages_through_them(stored_client, crm_sample):
    url = "/api/v1/leads/prioritized?as_of=2024-10-01T00:00:00Z"
    first = stored_client.get(f"{url}&limit=25", headers=KEY).json()
    rest = stored_client.get(f"{url}&limit=1000&offset=25", headers=KEY).json()
    items = first["items"] + rest["items"]

    assert first["total"] == len(open_features(crm_sample)) == len(items)
    probabilities = [i["probability"] for i in items]
    assert probabilities == sorted(probabilities, reverse=True)
    assert [i["rank"] for i in items] == list(range(1, len(items) + 1))
    median = float(np.median(probabilities))
    for item in items:  # the rule of serving.prioritize: nothing planned, quiet too long, worth chasing
        chase = item["next_scheduled"] is None and item["days_since_last_touch"] > item["cadence_days"]
        assert item["needs_follow_up"] == (chase and item["probability"] >= median)
        assert 1 <= item["cadence_days"] <= 14
        assert item["relationship_start"] <= "2024-10-01"
    assert 0 < sum(i["needs_follow_up"] for i in items) < len(items) / 2
    by_value = stored_client.get(f"{url}&order_by=expected_value&limit=1000", headers=KEY).json()["items"]
    values = [i["expected_value"] for i in by_value if i["expected_value"] is not None]
    assert values == sorted(values, reverse=True) and by_value[0]["expected_value"] is not None


def test_the_prioritized_list_filters_and_notices_new_leads(stored_client, crm_sample):
    url = "/api/v1/leads/prioritized?as_of=2024-10-01T00:00:00Z&limit=1000"
    owner = crm_sample.leads["owner_id"].iloc[0]
    mine = stored_client.get(f"{url}&owner={owner}", headers=KEY).json()
    assert mine["items"] and {i["owner_id"] for i in mine["items"]} == {owner}
    follow = stored_client.get(f"{url}&needs_follow_up=true", headers=KEY).json()["items"]
    assert all(i["needs_follow_up"] for i in follow)
    typo = stored_client.get(f"{url}&ownr={owner}", headers=KEY)  # never the unfiltered list by mistake
    assert typo.status_code == 422 and typo.json()["detail"][0]["loc"] == ["query", "ownr"]
    twice = stored_client.get(f"{url}&owner={owner}&owner=someone", headers=KEY)
    assert twice.status_code == 422 and "more than once" in twice.json()["detail"][0]["msg"]
    epoch = stored_client.get("/api/v1/leads/prioritized?as_of=1700000000", headers=KEY)
    assert epoch.status_code == 422 and epoch.json()["detail"][0]["loc"] == ["query", "as_of"]

    before = stored_client.get(url, headers=KEY).json()["total"]
    new_lead = {"lead_id": "fresh", "created_at": "2024-09-30T00:00:00Z", "owner_id": owner}
    assert stored_client.post("/api/v1/leads", json={"leads": [new_lead]}, headers=KEY).status_code == 200
    assert stored_client.get(url, headers=KEY).json()["total"] == before + 1  # the cached list was rebuilt


def test_reload_picks_up_a_moved_champion_alias(client, champion_v1):
    registry.promote("2", uri=champion_v1)
    moved = client.post("/api/v1/model/reload", headers=KEY).json()
    again = client.post("/api/v1/model/reload", headers=KEY).json()

    assert (moved["changed"], moved["previous_version"], moved["version"]) == (True, "1", "2")
    assert (again["changed"], again["version"]) == (False, "2")
    assert client.get("/api/v1/model", headers=KEY).json()["version"] == "2"


def test_the_service_notices_a_moved_alias_by_itself(store_url, make_settings, champion_v1):
    settings = make_settings(store_url, mlflow_tracking_uri=champion_v1, model_poll_seconds=0.2)
    with TestClient(create_app(settings)) as client:
        registry.promote("2", uri=champion_v1)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and client.get("/api/v1/model", headers=KEY).json()["version"] != "2":
            time.sleep(0.1)
        assert client.get("/api/v1/model", headers=KEY).json()["version"] == "2"


def test_a_broken_registry_keeps_the_current_model(client, champion_v1, tmp_path):
    client.app.state.model_holder.tracking_uri = f"sqlite:///{tmp_path / 'gone' / 'mlflow.db'}"
    outcome = client.post("/api/v1/model/reload", headers=KEY).json()
    assert outcome["changed"] is False and outcome["version"] == "1"
    assert "no model registry" in outcome["detail"]
    assert client.get("/readyz").json()["model"]["loaded"] is True


def _counted_things(reasons: list[str]) -> set[str]:
    """The counted things a list of reasons talks about ("3 meetings held so far" -> "meetings held")."""
    import re

    from leadscore.features.catalogue import COUNTED_TYPES

    nouns = {noun: plural for singular, plural in COUNTED_TYPES.values() for noun in (singular, plural)}
    nouns |= {"interaction": "interactions", "interactions": "interactions"}
    found = set()
    for reason in reasons:
        match = re.match(r"^(?:\d+|no) (.+?) (?:so far|in the last \d+ days)$", reason)
        if match and match.group(1) in nouns:
            found.add(nouns[match.group(1)])
    return found


def test_no_lead_is_told_one_count_both_up_and_down_and_reasons_speak_spanish(stored_client, crm_sample):
    listed = stored_client.get("/api/v1/leads/prioritized?as_of=2024-10-01T00:00:00Z&limit=1000", headers=KEY).json()
    assert listed["items"]
    for item in listed["items"]:
        assert not _counted_things(item["reasons_up"]) & _counted_things(item["reasons_down"]), item
    lead_id = listed["items"][0]["lead_id"]
    url = f"/api/v1/leads/{lead_id}/score?as_of=2024-10-01T00:00:00Z"
    english = stored_client.get(url, headers=KEY).json()
    spanish = stored_client.get(f"{url}&lang=es", headers=KEY).json()
    assert spanish["probability"] == english["probability"]
    assert len(spanish["reasons_up"]) == len(english["reasons_up"]) and spanish["reasons_up"] != english["reasons_up"]
    refused = stored_client.get(f"{url}&lang=fr", headers=KEY)
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["query", "lang"]


CLASHING = {"stage": "proposal", "label": 1, "cutoff": "Q3", "email_sent_7d": 4, "segment": "SMB"}


def test_leads_with_attributes_named_like_features_are_scored_stored_or_sent(stored_client, crm_sample):
    lead_ids = open_features(crm_sample)["lead_id"].head(3).tolist()
    payload = history_payload(crm_sample, lead_ids)
    for lead in payload["leads"]:
        lead["attributes"] = {**lead["attributes"], **CLASHING}

    sent = stored_client.post("/api/v1/scores", json=payload, headers=KEY)
    stored = stored_client.post("/api/v1/leads", json={"leads": payload["leads"]}, headers=KEY)
    one = stored_client.get(f"/api/v1/leads/{lead_ids[0]}/score?as_of=2024-10-01T00:00:00Z", headers=KEY)
    listed = stored_client.get("/api/v1/leads/prioritized?as_of=2024-10-01T00:00:00Z&limit=1000", headers=KEY)

    assert sent.status_code == 200, sent.text
    assert sorted(s["lead_id"] for s in sent.json()["scores"]) == sorted(lead_ids)
    assert stored.status_code == 200 and one.status_code == 200, one.text
    assert listed.status_code == 200 and set(lead_ids) <= {item["lead_id"] for item in listed.json()["items"]}


def test_the_service_reads_only_the_model_s_attributes(client, champion_v1):
    scorer = client.app.state.model_holder.current.scorer
    assert scorer.attributes and all(not a.startswith("attr_") for a in scorer.attributes)
    assert all(f"attr_{a}" in scorer.features for a in scorer.attributes)
