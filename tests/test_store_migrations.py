"""Schema migrations: a new database is created, an existing one is upgraded in place, models match them."""

from __future__ import annotations

import subprocess
import sys
import threading

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from leadscore.store import Repository, create_engine, current_revision, head_revision, upgrade_database
from leadscore.store.tables import Base

pytest_plugins = ["api_fixtures"]


def test_upgrading_an_empty_database_creates_the_schema_at_head(database_url):
    assert current_revision(database_url) is None
    assert upgrade_database(database_url) == head_revision()
    assert upgrade_database(database_url) == head_revision()  # a second upgrade is a no-op
    engine = create_engine(database_url)
    tables = set(sa.inspect(engine).get_table_names())
    engine.dispose()
    assert tables == {
        *("leads", "events", "goals", "expenses", "score_history", "alembic_version"),
        *("event_days", "lead_first_touch", "lead_scores", "lead_stage_stays", "job_leases"),
        *("webhook_subscriptions", "webhook_outbox", "webhook_deliveries"),
    }


def test_the_models_match_the_migrations(database_url):
    upgrade_database(database_url)
    engine = create_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    engine.dispose()
    assert diff == []


def test_an_existing_database_is_upgraded_in_place_keeping_its_data(database_url):
    upgrade_database(database_url, "0001")  # a database from before the score history existed
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO leads (lead_id, created_at, attributes, updated_at) VALUES (:i, :t, :a, :t)"),
            {"i": "L1", "t": pd.Timestamp("2024-01-01", tz="UTC").to_pydatetime(), "a": '{"segment": "SMB"}'},
        )
        conn.execute(
            sa.text(
                "INSERT INTO events (event_id, lead_id, at, type, ingested_at) VALUES ('e1', 'L1', :t, 'call', :t)"
            ),
            {"t": pd.Timestamp("2024-01-02", tz="UTC").to_pydatetime()},
        )
    engine.dispose()
    assert current_revision(database_url) == "0001"

    assert upgrade_database(database_url) == head_revision()

    repo = Repository.from_url(database_url)
    assert repo.load_leads()[["lead_id", "segment"]].values.tolist() == [["L1", "SMB"]]
    assert repo.load_events()["event_id"].tolist() == ["e1"]
    scores = pd.DataFrame({"lead_id": ["L1"], "cutoff": ["2024-01-03T00:00Z"], "probability": [0.4]})
    assert repo.append_scores(scores) == 1  # the new table is there and usable
    assert repo.pending_scores() == 1  # the lead stored before the kept scores existed is queued for its first
    repo.engine.dispose()


def test_processes_starting_together_migrate_once(database_url):
    code = "import sys; from leadscore.store import upgrade_database; print(upgrade_database(sys.argv[1]))"
    processes = [
        subprocess.Popen([sys.executable, "-c", code, database_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    outcomes = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], [err.decode()[-1000:] for _, err in outcomes]
    assert [out.decode().strip() for out, _ in outcomes] == [head_revision()] * 3


def test_threads_of_one_process_may_upgrade_together(database_url):
    results: list[object] = []

    def start() -> None:
        try:
            results.append(upgrade_database(database_url))
        except Exception as err:  # noqa: BLE001 - collected and asserted on
            results.append(err)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == [head_revision()] * 3


def test_unsupported_database_urls_are_refused_by_name():
    with pytest.raises(ValueError, match="unsupported database 'mysql://u@h/db'"):
        create_engine("mysql://u@h/db")


def test_upgrading_from_0005_fills_the_stays_and_queues_kept_scores_once(database_url):
    upgrade_database(database_url, "0005")  # a store with kept scores, before the stays and changed_at
    t = {d: pd.Timestamp(f"2024-01-0{d}", tz="UTC").to_pydatetime() for d in (1, 3, 5)}
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO leads (lead_id, created_at, attributes, updated_at) VALUES ('L1', :a, '{}', :a)"),
            {"a": t[1]},
        )
        conn.execute(
            sa.text(
                "INSERT INTO events (event_id, lead_id, at, type, stage, ingested_at) "
                "VALUES ('e1', 'L1', :b, 'stage_changed', 'qualified', :b)"
            ),
            {"b": t[3]},
        )
        conn.execute(
            sa.text(
                "INSERT INTO lead_scores (lead_id, probability, grade, stale, changes, computed_at) "
                "VALUES ('L1', 0.4, 'B', false, 0, :c)"
            ),
            {"c": t[5]},
        )
    engine.dispose()

    upgrade_database(database_url)

    engine = create_engine(database_url)
    with engine.connect() as conn:
        stays = conn.execute(
            sa.text("SELECT stage_rank, entered_us, left_us FROM lead_stage_stays ORDER BY entered_us")
        ).all()
        kept = conn.execute(sa.text("SELECT stale, stale_reason, changed_at FROM lead_scores")).one()
    engine.dispose()
    us = {d: int(pd.Timestamp(v).value // 1000) for d, v in t.items()}
    assert [tuple(r) for r in stays] == [(1, us[1], us[3]), (3, us[3], None)]  # new, then qualified
    assert bool(kept[0]) and kept[1] == "re-scoring once after an upgrade of the store"
    assert pd.Timestamp(kept[2]).tz_localize(None) == pd.Timestamp(t[5]).tz_localize(None)
