"""The repository on SQLite and PostgreSQL: idempotent, all-or-nothing ingestion and contract-shaped reads."""

from __future__ import annotations

import random
import threading
import time

import pandas as pd
import pytest
import sqlalchemy as sa

from leadscore.data.contracts import EVENTS, GOALS, LEADS, ContractError, CrmData, validate
from leadscore.store import EventConflictError, Repository, UnknownLeadError
from leadscore.store.engine import create_engine, run_in_write_transaction

pytest_plugins = ["api_fixtures"]


def events(*rows: dict) -> pd.DataFrame:
    base = {"lead_id": "L1", "at": "2024-01-02T10:00:00Z", "type": "call"}
    return pd.DataFrame([{**base, **row} for row in rows])


def test_ingested_leads_and_events_load_back_as_validated_frames(repo, raw_leads, raw_events):
    repo.ingest(leads=raw_leads, events=raw_events)

    expected = CrmData.from_frames(raw_leads, raw_events)
    pd.testing.assert_frame_equal(repo.load_leads(), expected.leads.sort_values("lead_id", ignore_index=True))
    pd.testing.assert_frame_equal(
        repo.load_events(), expected.events.sort_values(["lead_id", "at", "event_id"], ignore_index=True)
    )
    # What the store returns is already normalised: validating it again changes nothing.
    pd.testing.assert_frame_equal(validate(EVENTS, repo.load_events()), repo.load_events())
    pd.testing.assert_frame_equal(validate(LEADS, repo.load_leads()), repo.load_leads())


def test_timestamps_come_back_in_utc_to_the_microsecond(repo, raw_leads):
    repo.ingest(leads=raw_leads)
    sent = events({"event_id": "e1", "at": "2024-06-30T23:59:59.123456789+02:00"})
    repo.ingest(events=sent)

    at = repo.load_events()["at"]
    assert str(at.dtype) == "datetime64[ns, UTC]"
    assert at[0] == pd.Timestamp("2024-06-30T21:59:59.123457Z")  # rounded up: never known before it happened
    # ... and a retry of the same nanosecond timestamp is recognised as the same event.
    assert repo.ingest(events=sent).events_already_stored == 1


def test_retrying_a_batch_stores_nothing_twice(repo, raw_leads, raw_events):
    first = repo.ingest(leads=raw_leads, events=raw_events)
    retry = repo.ingest(leads=raw_leads, events=raw_events)

    assert (first.events_inserted, first.events_already_stored) == (4, 0)
    assert (retry.events_inserted, retry.events_already_stored) == (0, 4)
    assert (retry.leads_created, retry.leads_updated, retry.leads_unchanged) == (0, 0, 3)
    assert repo.count("events") == 4
    assert repo.count("leads") == 3


def test_exact_repeats_within_a_batch_are_stored_once(repo, raw_leads, raw_events):
    repo.ingest(leads=raw_leads)
    doubled = pd.concat([raw_events, raw_events], ignore_index=True)
    result = repo.ingest(events=doubled)
    assert (result.events_received, result.events_inserted) == (8, 4)
    assert repo.count("events") == 4


def test_same_event_id_with_other_content_is_a_conflict_and_stores_nothing(repo, raw_leads, raw_events):
    repo.ingest(leads=raw_leads, events=raw_events)
    changed = raw_events.copy()
    changed.loc[1, "type"] = "email_sent"  # e2 was a call
    changed.loc[2, "duration_s"] = "30"  # e3 had no duration
    new = events({"event_id": "e-new"})

    with pytest.raises(EventConflictError, match=r"'e2' \(differs in type\).*'e3' \(differs in duration_s\)") as err:
        repo.ingest(events=pd.concat([new, changed], ignore_index=True))

    assert err.value.event_ids == ["e2", "e3"]
    assert "e-new" not in set(repo.load_events()["event_id"])  # all or nothing


def test_a_batch_with_one_bad_row_stores_nothing(repo, raw_leads, raw_events):
    bad = raw_events.copy()
    bad.loc[3, "duration_s"] = "-5"

    with pytest.raises(ContractError, match=r"events.duration_s rows 4: must not be negative"):
        repo.ingest(leads=raw_leads, events=bad)

    assert repo.count("leads") == 0  # the leads of the same call were not stored either
    assert repo.count("events") == 0


def test_event_for_an_unknown_lead_is_refused_naming_its_rows(repo, raw_leads):
    repo.ingest(leads=raw_leads)
    sent = events({"event_id": "e1"}, {"event_id": "e2", "lead_id": "ghost"}, {"event_id": "e3"})

    with pytest.raises(ContractError, match=r"events.lead_id rows 2: event for an unknown lead .*'ghost'") as err:
        repo.ingest(events=sent)

    assert err.value.problems[0].rows == (2,)
    assert repo.count("events") == 0


def test_events_may_belong_to_leads_sent_in_the_same_call(repo):
    leads = pd.DataFrame({"lead_id": ["L1"], "created_at": ["2024-01-01"]})
    result = repo.ingest(leads=leads, events=events({"event_id": "e1"}))
    assert (result.leads_created, result.events_inserted) == (1, 1)


def test_a_lead_sent_again_replaces_the_stored_one(repo, raw_leads):
    repo.ingest(leads=raw_leads)
    changed = raw_leads.copy()
    changed.loc[0, "owner_id"] = "rep_9"
    changed.loc[1, "segment"] = None  # an attribute dropped

    result = repo.ingest(leads=changed)

    assert (result.leads_created, result.leads_updated, result.leads_unchanged) == (0, 2, 1)
    stored = repo.load_leads().set_index("lead_id")
    assert stored.loc["L1", "owner_id"] == "rep_9"
    assert pd.isna(stored.loc["L2", "segment"])


def test_lead_attributes_keep_their_types(repo):
    leads = pd.DataFrame(
        {"lead_id": ["a", "b"], "created_at": ["2024-01-01"] * 2, "size": [40, 7.5], "country": ["ES", None]}
    )
    repo.ingest(leads=leads)
    stored = repo.load_leads()
    assert stored["size"].tolist() == [40.0, 7.5]
    assert stored["country"].tolist()[0] == "ES" and pd.isna(stored["country"].tolist()[1])


def test_loads_can_be_restricted_to_leads_or_to_leads_open_at_a_time(repo, raw_leads, raw_events):
    closing = events({"event_id": "won-L1", "lead_id": "L1", "at": "2024-02-01", "type": "won", "amount": 900})
    repo.ingest(leads=raw_leads, events=pd.concat([raw_events, closing], ignore_index=True))

    assert repo.load_leads(["L2", "L3", "nobody"])["lead_id"].tolist() == ["L2", "L3"]
    assert repo.load_events(["L1"])["event_id"].tolist() == ["e1", "e2", "won-L1"]
    assert repo.load_leads(open_at=pd.Timestamp("2024-01-02T12:00Z"))["lead_id"].tolist() == ["L1", "L2"]
    open_later = repo.load_crm(open_at=pd.Timestamp("2024-03-01T00:00Z"))
    assert open_later.leads["lead_id"].tolist() == ["L2", "L3"]
    assert set(open_later.events["lead_id"]) == {"L2", "L3"}
    assert repo.load_events([]).empty and list(repo.load_events([]).columns) == EVENTS.names


def test_goals_are_upserted_on_their_key_and_deleted(repo):
    goals = pd.DataFrame(
        {"metric": ["revenue", "calls"], "period": ["month", "day"], "target": [5000, 20], "start": ["2024-01-01"] * 2}
    )
    assert repo.upsert_goals(goals) == 2
    goals.loc[0, "target"] = 6000
    repo.upsert_goals(goals)

    stored = repo.load_goals()
    pd.testing.assert_frame_equal(stored, validate(GOALS, goals).sort_values("metric", ignore_index=True))
    assert repo.delete_goal("calls", "day", pd.Timestamp("2024-01-01", tz="UTC"))
    assert repo.load_goals()["metric"].tolist() == ["revenue"]
    assert not repo.delete_goal("calls", "day", pd.Timestamp("2024-01-01", tz="UTC"))


def test_expenses_are_added_loaded_by_period_and_deleted(repo):
    spent = pd.DataFrame({"at": ["2024-01-05", "2024-02-05", "2024-02-20"], "amount": [10, 20, 30]})
    ids = repo.add_expenses(spent)
    assert len(set(ids)) == 3

    february = repo.load_expenses(start=pd.Timestamp("2024-02-01", tz="UTC"), end=pd.Timestamp("2024-03-01", tz="UTC"))
    assert february["amount"].tolist() == [20.0, 30.0]
    assert february.index.tolist() == ids[1:]
    assert repo.delete_expenses(ids[:2]) == 2
    assert repo.load_expenses()["amount"].tolist() == [30.0]


def test_score_history_is_appended_and_read_newest_first(repo, raw_leads):
    repo.ingest(leads=raw_leads)
    first = pd.DataFrame(
        {
            "lead_id": ["L1"],
            "cutoff": ["2024-02-01T00:00Z"],
            "probability": [0.2],
            "grade": ["C"],
            "reasons_up": [["3 emails replied"]],
            "reasons_down": [[]],
            "model_version": ["3"],
        }
    )
    repo.append_scores(first, scored_at=pd.Timestamp("2024-02-01T08:00Z"))
    repo.append_scores(first.assign(probability=0.35), scored_at=pd.Timestamp("2024-02-02T08:00Z"))

    history = repo.load_score_history("L1")
    assert history["probability"].tolist() == [0.35, 0.2]
    assert history.loc[0, "reasons_up"] == ["3 emails replied"]
    assert history.loc[0, "cutoff"] == pd.Timestamp("2024-02-01", tz="UTC")
    assert len(repo.load_score_history("L1", limit=1)) == 1
    with pytest.raises(UnknownLeadError, match="'nobody'"):
        repo.append_scores(first.assign(lead_id="nobody"))


def test_concurrent_overlapping_batches_store_every_event_exactly_once(store_url, raw_leads):
    Repository.from_url(store_url).ingest(leads=raw_leads)
    all_events = pd.DataFrame(
        {
            "event_id": [f"e{i:04d}" for i in range(400)],
            "lead_id": [f"L{1 + i % 3}" for i in range(400)],
            "at": pd.Timestamp("2024-01-10", tz="UTC") + pd.to_timedelta(range(400), unit="min"),
            "type": "email_sent",
        }
    )
    errors: list[BaseException] = []

    def client(seed: int) -> None:
        repo = Repository.from_url(store_url)
        rng = random.Random(seed)
        try:
            for _ in range(6):  # overlapping random batches, shuffled, each sent twice (a retry)
                rows = rng.sample(range(400), 80)
                batch = all_events.iloc[rows]
                repo.ingest(events=batch)
                repo.ingest(events=batch.sample(frac=1, random_state=seed))
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)
        finally:
            repo.engine.dispose()

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert not errors, errors
    repo = Repository.from_url(store_url)
    stored = repo.load_events()
    assert stored["event_id"].is_unique
    sent_ids = set()
    for seed in range(4):
        rng = random.Random(seed)
        for _ in range(6):
            sent_ids.update(all_events["event_id"].iloc[rng.sample(range(400), 80)])
    assert set(stored["event_id"]) == sent_ids
    repo.engine.dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path):
    repo = Repository.from_url(f"sqlite:///{tmp_path / 'x.db'}")
    with repo.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    repo.engine.dispose()


def _locked() -> sa.exc.OperationalError:
    return sa.exc.OperationalError("INSERT ...", {}, Exception("database is locked"))


def test_a_transient_error_retries_the_transaction_with_doubling_waits(tmp_path, monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    calls = []

    def work(conn):
        calls.append(1)
        if len(calls) < 3:
            raise _locked()
        return "stored"

    assert run_in_write_transaction(engine, work) == "stored"
    assert waits == [0.05, 0.1]


def test_a_transaction_locked_on_every_attempt_raises_the_database_error(tmp_path, monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")

    def work(conn):
        raise _locked()

    with pytest.raises(sa.exc.OperationalError, match="database is locked"):
        run_in_write_transaction(engine, work, attempts=4)
    assert waits == [0.05, 0.1, 0.2]


def test_errors_that_are_not_transient_are_not_retried(tmp_path, monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda s: pytest.fail("slept before re-raising a permanent error"))
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    calls = []

    def work(conn):
        calls.append(1)
        raise ValueError("bad batch")

    with pytest.raises(ValueError, match="bad batch"):
        run_in_write_transaction(engine, work)
    assert len(calls) == 1


def test_leads_sent_as_sparse_attribute_mappings_store_as_the_same_extra_columns(repo, raw_leads):
    dense = raw_leads.assign(stage=["proposal", None, "won"], label=[1, None, 0.5])
    base = dense[list(LEADS.names)]
    mappings = [
        {k: v for k, v in row.items() if pd.notna(v)} for row in dense[["segment", "stage", "label"]].to_dict("records")
    ]

    first = repo.ingest(leads=base, lead_attributes=mappings)
    again = repo.ingest(leads=dense)  # the same leads as extra columns: nothing changed

    assert (first.leads_created, again.leads_unchanged) == (3, 3)
    stored = repo.load_leads().set_index("lead_id")
    assert stored.loc["L1", "stage"] == "proposal" and stored.loc["L1", "label"] == 1
    assert pd.isna(stored.loc["L2", "stage"]) and stored.loc["L3", "label"] == 0.5


def test_sparse_attributes_with_a_row_count_or_extra_columns_that_do_not_fit_are_refused(repo, raw_leads):
    with pytest.raises(ValueError, match="2 mappings for 3 leads"):
        repo.ingest(leads=raw_leads[list(LEADS.names)], lead_attributes=[{}, {}])
    with pytest.raises(ValueError, match="not both"):
        repo.ingest(leads=raw_leads, lead_attributes=[{}, {}, {}])
    assert repo.count("leads") == 0


def test_a_selection_of_attributes_is_read_alone_typed_as_the_full_read(repo):
    # 300 leads with 100 custom fields each, 30,000 names in all (the case): a selection reads its own.
    n, per_lead = 300, 100
    base = pd.DataFrame({"lead_id": [f"L{i:03d}" for i in range(n)], "created_at": ["2024-01-01"] * n})
    mappings = [{f"field_{i}_{j}": f"v{j}" for j in range(per_lead)} for i in range(n)]
    for i, m in enumerate(mappings):
        m.update({"size": float(i), "tier": "gold" if i % 3 else None, "flag": i % 2 == 0})
    repo.ingest(leads=base, lead_attributes=mappings)

    chosen = repo.load_leads(attributes=["tier", "size", "flag", "never_sent"])
    full = repo.load_leads(lead_ids=["L001", "L002"])

    assert chosen.columns.tolist() == [*LEADS.names, "tier", "size", "flag"]
    assert chosen["size"].tolist() == [float(i) for i in range(n)] and chosen["flag"].tolist()[:2] == [1.0, 0.0]
    assert pd.isna(chosen.loc[0, "tier"]) and chosen.loc[1, "tier"] == "gold"
    assert full.shape[1] == len(LEADS.names) + 2 * per_lead + 3  # the full read still has every name
    assert repo.load_leads(attributes=[]).columns.tolist() == list(LEADS.names)
    some = repo.load_leads(["L005", "L004"], attributes=["size"])
    assert some[["lead_id", "size"]].values.tolist() == [["L004", 4.0], ["L005", 5.0]]
