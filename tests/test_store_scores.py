"""Scores kept fresh in the store: marked stale by ingestion, re-scored by the keeper, listed by the database.

On SQLite and PostgreSQL. Two small models, trained once for the module without MLflow (a scorer needs only the
fitted pipeline and its card), play versions 1 and 2. The keeper runs in the test's thread (``step``/``drain``)
at a fixed clock, except in the test of its background thread.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pandas as pd
import pytest

from leadscore.data.contracts import CrmData
from leadscore.grades import percent
from leadscore.serving.keeper import ScoreKeeper
from leadscore.serving.kept import latest_scores
from leadscore.serving.prioritize import features_for, opportunities, rank, score_open_leads
from leadscore.serving.scorer import Scorer
from leadscore.store.scores import NEW_DATA, NOT_SCORED_YET

pytest_plugins = ["api_fixtures"]

T = pd.Timestamp("2024-08-01 09:30:00.123456", tz="UTC")
FOLLOW_UP_DAYS = 14


def _scorer(version: str, horizon_days: int) -> Scorer:
    from leadscore.model.training import train, training_data_from_crm
    from leadscore.registry import model_card
    from leadscore.simulation.simulator import simulate

    data = simulate(n_leads=300, n_reps=3, months=10, seed=5).data
    result = train(
        training_data_from_crm(data, horizon_days=horizon_days), candidates=["logistic"], check_leakage=False
    )
    return Scorer(result.model, dataclasses.replace(model_card(result), version=version))


@pytest.fixture(scope="module")
def v1() -> Scorer:
    return _scorer("1", 60)


@pytest.fixture(scope="module")
def v2() -> Scorer:
    return _scorer("2", 30)


@pytest.fixture(scope="module")
def crm() -> CrmData:
    from leadscore.simulation.simulator import simulate

    return simulate(n_leads=120, n_reps=4, months=8, seed=11).data


@pytest.fixture
def stored(repo, crm):
    repo.import_crm(crm)
    return repo


def keeper_at(repo, scorer, t=T, **options) -> ScoreKeeper:
    model = {"scorer": scorer}
    keeper = ScoreKeeper(repo, lambda: model["scorer"], follow_up_days=FOLLOW_UP_DAYS, clock=lambda: t, **options)
    keeper.model = model  # the tests swap the champion through it
    return keeper


def rows(repo) -> pd.DataFrame:
    """Every latest-score row, by lead id."""
    import sqlalchemy as sa

    from leadscore.store.tables import lead_scores_table

    with repo.engine.connect() as conn:
        found = conn.execute(sa.select(lead_scores_table).order_by(lead_scores_table.c.lead_id)).mappings().all()
    return pd.DataFrame([dict(r) for r in found], columns=list(lead_scores_table.c.keys())).set_index("lead_id")


def open_at(crm, t) -> list[str]:
    return sorted(features_for_all(crm, t)["lead_id"])


def features_for_all(crm, t):
    from leadscore.features.builder import build_features

    return build_features(crm.leads, crm.events, t)


def test_ingesting_queues_every_new_lead_and_the_keeper_scores_the_open_ones(stored, crm, v1):
    queued = rows(stored)
    assert len(queued) == len(crm.leads)
    assert queued["stale"].all() and (queued["stale_reason"] == NOT_SCORED_YET).all()
    assert queued["probability"].isna().all()

    claimed = keeper_at(stored, v1, batch_leads=50).drain()

    assert claimed == len(crm.leads)  # each lead once, in batches of 50
    kept = rows(stored)
    assert sorted(kept.index) == open_at(crm, T)  # leads closed (or not yet created) at T have no row
    assert not kept["stale"].any() and kept["stale_reason"].isna().all()
    assert (kept["model_version"] == "1").all()
    assert (pd.to_datetime(kept["cutoff"], utc=True) == T).all()
    assert stored.pending_scores() == 0


def test_only_the_leads_that_changed_are_marked_and_rescored(stored, crm, v1):
    keeper = keeper_at(stored, v1)
    keeper.drain()
    before = rows(stored)
    lead = before.index[0]

    again = stored.ingest(events=crm.events.head(200))  # a retry: already stored, nothing changed
    assert again.events_inserted == 0 and stored.pending_scores() == 0
    new_event = pd.DataFrame(
        {"event_id": ["new-1"], "lead_id": [lead], "at": [T - pd.Timedelta(hours=1)], "type": ["meeting_held"]}
    )
    stored.ingest(events=new_event)

    marked = rows(stored)
    assert marked.index[marked["stale"]].tolist() == [lead]
    assert marked.loc[lead, "stale_reason"] == NEW_DATA
    assert marked.loc[lead, "probability"] == before.loc[lead, "probability"]  # the last score stays, flagged

    later = T + pd.Timedelta(hours=2)
    keeper._clock = lambda: later
    assert keeper.drain() == 1
    after = rows(stored)
    assert not after["stale"].any()
    assert pd.Timestamp(after.loc[lead, "cutoff"]) == later
    assert pd.Timestamp(after.loc[lead, "last_interaction"]) == (T - pd.Timedelta(hours=1)).round("s")
    unchanged = after.drop(index=lead)
    assert (pd.to_datetime(unchanged["cutoff"], utc=True) == T).all()


def test_a_stored_score_is_what_the_scorer_says_for_that_lead_at_its_cutoff(stored, v1):
    keeper_at(stored, v1).drain()
    kept = rows(stored)
    for lead_id, row in kept.iterrows():
        cutoff = pd.Timestamp(row["cutoff"])
        leads, events = stored.load_leads([lead_id]), stored.load_events([lead_id])
        alone = v1.score(leads, events, cutoff, percentile_of="reference").iloc[0]
        assert row["probability"] == alone["probability"]
        assert (row["grade"], row["percentile"]) == (alone["grade"], alone["percentile"])
        assert row["reasons"] == {"up": list(alone["reasons_up"]), "down": list(alone["reasons_down"])}
        features, _ = features_for(v1, leads, events, cutoff)
        facts = opportunities(features, leads, cutoff, FOLLOW_UP_DAYS).iloc[0]
        assert row["days_since_last_touch"] == facts["days_since_last_touch"]
        assert pd.Timestamp(row["relationship_start"]) == facts["relationship_start"]


FILTERS = [
    {},
    {"needs_follow_up": True},
    {"needs_follow_up": False},
    {"grade": "C"},
    {"owner": "rep_01"},
    {"stage": "qualified", "needs_follow_up": True},
    {"source": "web"},
]


@pytest.mark.parametrize("order_by", ["probability", "expected_value"])
def test_the_prioritized_page_from_the_database_is_today_s_in_memory_list(stored, v1, order_by):
    keeper_at(stored, v1).drain()
    table = score_open_leads(v1, stored.load_crm(open_at=T.to_pydatetime()), T, FOLLOW_UP_DAYS)
    for filters in FILTERS:
        expected = rank(table, by=order_by, **filters)
        for offset, limit in ((0, 7), (7, 1000)):
            total, n_scored, page = stored.prioritized_page(
                order_by=order_by, filters=filters, limit=limit, offset=offset
            )
            want = expected.iloc[offset : offset + limit]
            assert total == len(expected) and n_scored == len(table)
            assert [r["lead_id"] for r in page] == want["lead_id"].tolist(), filters
            got = pd.DataFrame(page)
            if not len(want):
                continue
            np.testing.assert_array_equal(got["probability"], want["probability"])
            np.testing.assert_array_equal(got["expected_value"].astype(float), want["expected_value"])
            np.testing.assert_array_equal(got["needs_follow_up"], want["needs_follow_up"])
            np.testing.assert_array_equal(got["days_since_last_touch"], want["days_since_last_touch"])
            np.testing.assert_array_equal(got["cadence_days"], want["cadence_days"])
            assert got["grade"].tolist() == want["grade"].tolist()
            np.testing.assert_array_equal(percent(got["at_or_below"].to_numpy(), n_scored), want["percentile"])
            assert got["reasons_up"].tolist() == want["reasons_up"].tolist()


def test_a_lead_whose_rescore_fails_keeps_its_score_says_why_and_is_retried(stored, v1):
    keeper = keeper_at(stored, v1)
    keeper.drain()
    broken = rows(stored).index[3]

    def score_refusing_one_lead(scorer, leads, events, cutoff, follow_up_days, **options):
        # A fault injected into the real scoring path: this one lead's history cannot be scored.
        if broken in set(leads["lead_id"]):
            raise ValueError(f"cannot encode the history of {broken}")
        return latest_scores(scorer, leads, events, cutoff, follow_up_days, **options)

    failing = keeper_at(stored, v1, score=score_refusing_one_lead, retry_s=600)
    later = T + pd.Timedelta(days=2)  # time moved on: every lead is due again
    failing._clock = lambda: later
    failing.drain()

    after = rows(stored)
    ok = after.drop(index=broken)
    assert not ok["stale"].any() and (pd.to_datetime(ok["cutoff"], utc=True) == later).all()
    assert after.loc[broken, "stale"]
    assert after.loc[broken, "stale_reason"] == f"re-score failed: ValueError: cannot encode the history of {broken}"
    assert pd.Timestamp(after.loc[broken, "cutoff"]) == T  # the last good score is kept, said to be stale
    assert failing.step() == 0  # not retried before retry_at ...
    failing._clock = lambda: later + pd.Timedelta(seconds=601)
    assert [c.lead_id for c in stored.claim_scores(10, now=later + pd.Timedelta(seconds=601), due_before=T)] == [broken]
    stored.ingest(
        events=pd.DataFrame({"event_id": ["x"], "lead_id": [broken], "at": [T], "type": ["call"]})
    )  # ... and at once on new data
    assert [c.lead_id for c in stored.claim_scores(10, now=later, due_before=T)] == [broken]


def test_a_mark_that_arrives_while_a_batch_is_scored_keeps_the_lead_stale(stored, v1):
    keeper_at(stored, v1).drain()
    lead = rows(stored).index[0]
    later = T + pd.Timedelta(days=2)
    claims = stored.claim_scores(1000, now=later, due_before=later)
    ids = [c.lead_id for c in claims]
    scored = latest_scores(v1, stored.load_leads(ids, attributes=v1.attributes), stored.load_events(ids), later, 14)
    stored.ingest(events=pd.DataFrame({"event_id": ["late"], "lead_id": [lead], "at": [T], "type": ["call"]}))
    stored.write_scores(scored, claims, computed_at=later)

    after = rows(stored)
    assert after.index[after["stale"]].tolist() == [lead]
    assert after.loc[lead, "stale_reason"] == NEW_DATA


def test_a_new_champion_rescores_every_open_lead_once_and_old_rows_say_so(stored, v1, v2):
    keeper = keeper_at(stored, v1, batch_leads=10)
    keeper.drain()
    n_open = len(rows(stored))

    keeper.model["scorer"] = v2
    assert keeper.step() == 10
    midway = rows(stored)
    old = midway[midway["model_version"] == "1"]
    assert len(old) == n_open - 10 and old["stale"].all()
    assert (old["stale_reason"] == "scored by model version 1; re-scoring with version 2").all()
    assert not midway.loc[midway["model_version"] == "2", "stale"].any()

    assert keeper.drain() == n_open - 10  # the rest, each once
    done = rows(stored)
    assert (done["model_version"] == "2").all() and not done["stale"].any()
    history = stored.load_score_history(done.index[0])
    assert history["model_version"].tolist() == ["2", "1"]  # each version's score is a point of the trend


def test_time_moving_on_rescores_every_lead_once_a_refresh_period(stored, v1):
    keeper = keeper_at(stored, v1, refresh_s=3600)
    keeper.drain()
    first = rows(stored)
    keeper._clock = lambda: T + pd.Timedelta(minutes=59)
    assert keeper.drain() == 0  # not due yet
    next_day = T + pd.Timedelta(days=1, minutes=1)
    keeper._clock = lambda: next_day
    newly_open = sorted(set(open_at(stored.load_crm(), next_day)) - set(first.index))
    assert keeper.drain() == len(first) + len(newly_open)  # each due lead once, and the leads created since
    second = rows(stored)
    assert sorted(second.index) == open_at(stored.load_crm(), next_day)
    assert (pd.to_datetime(second["cutoff"], utc=True) == next_day).all()
    first, second = (
        first.loc[first.index.intersection(second.index)],
        second.loc[first.index.intersection(second.index)],
    )
    untouched = (second["last_interaction"] == first["last_interaction"]) & first["last_interaction"].notna()
    moved = second.loc[untouched, "days_since_last_touch"] - first.loc[untouched, "days_since_last_touch"]
    np.testing.assert_allclose(moved, 1 + 1 / 1440, atol=0.011)  # a day (and a minute) older, to 2 decimals


def test_the_keeper_thread_scores_ingested_events_in_the_background(stored, crm, v1):
    keeper = ScoreKeeper(stored, lambda: v1, follow_up_days=FOLLOW_UP_DAYS, idle_s=0.05)
    keeper.start()
    try:
        deadline = time.monotonic() + 120
        while stored.pending_scores() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stored.pending_scores() == 0, keeper.problem
        lead = rows(stored).index[0]
        stored.ingest(events=pd.DataFrame({"event_id": ["bg"], "lead_id": [lead], "at": [T], "type": ["call"]}))
        keeper.wake()
        deadline = time.monotonic() + 30
        while stored.pending_scores() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert stored.pending_scores() == 0 and not rows(stored).loc[lead, "stale"]
    finally:
        keeper.stop()


def test_changed_at_moves_only_when_the_probability_or_grade_changes(stored, v1):
    keeper = keeper_at(stored, v1)
    keeper.drain()
    first = rows(stored)
    assert first["changed_at"].notna().all()  # a first score is a change
    other = first.index[1]

    # The same model again under another version: every lead re-scored, to the very same probability and grade;
    # and one lead with a meeting held since, which moves its score.
    keeper.model["scorer"] = Scorer(v1.model, dataclasses.replace(v1.card, version="1-again"))
    event = pd.DataFrame(
        {"event_id": ["moves-it"], "lead_id": [other], "at": [T - pd.Timedelta(hours=2)], "type": ["meeting_held"]}
    )
    stored.ingest(events=event)
    keeper.drain()
    after = rows(stored)
    assert (after["model_version"] == "1-again").all()
    assert (pd.to_datetime(after["computed_at"]) > pd.to_datetime(first["computed_at"]).max()).all()  # re-scored
    assert after.loc[other, "probability"] != first.loc[other, "probability"]
    assert pd.Timestamp(after.loc[other, "changed_at"]) > pd.Timestamp(first.loc[other, "changed_at"])
    unchanged = after.drop(index=other)
    pd.testing.assert_series_equal(unchanged["probability"], first.drop(index=other)["probability"])
    pd.testing.assert_series_equal(unchanged["changed_at"], first.drop(index=other)["changed_at"])

    since = pd.Timestamp(first["changed_at"].max()).to_pydatetime()
    assert [r["lead_id"] for r in stored.scores_changed_since(since)] == [other]
    before_all = pd.Timestamp(first["changed_at"].min()) - pd.Timedelta(microseconds=1)
    assert [r["lead_id"] for r in stored.scores_changed_since(before_all.to_pydatetime())] == sorted(after.index)


def test_the_follow_up_flag_kept_in_small_batches_is_the_in_memory_rule(stored, v1):
    # Batches of 7 leads: each batch alone would take its stages' usual gaps (and so its flags) from 7 leads.
    keeper = keeper_at(stored, v1, batch_leads=7)
    keeper.drain()
    table = score_open_leads(v1, stored.load_crm(open_at=T.to_pydatetime()), T, FOLLOW_UP_DAYS).set_index("lead_id")
    kept = rows(stored).loc[table.index]
    np.testing.assert_array_equal(kept["cadence_days"].astype(float), table["cadence_days"])
    np.testing.assert_array_equal(kept["needs_follow_up"].astype(bool), table["needs_follow_up"])
    assert 0 < table["needs_follow_up"].sum() < len(table)  # the rule flags some leads, not all

    # Re-deriving again changes nothing; a lead re-scored with new data is flagged by the rule again too.
    assert keeper.reflag() == 0
