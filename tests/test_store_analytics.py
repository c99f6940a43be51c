"""The database answers the analytics exactly as pandas does on the same data, on SQLite and PostgreSQL.

Each test stores a data set, asks :mod:`leadscore.store_analytics` and compares with :mod:`leadscore.analytics`
run on the store's own full read (``repo.load_crm()``): the reference for notebooks and files.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadscore import analytics, store_analytics
from leadscore.simulation.simulator import simulate
from leadscore.store import Repository, upgrade_database
from leadscore.store.read_model import rebuild
from leadscore.store.tables import event_days_table, first_touch_table, stage_stays_table

pytest_plugins = ["api_fixtures"]


def assert_same(ours: pd.DataFrame, reference: pd.DataFrame) -> None:
    # Sums of amounts may be added in another order by the database; nothing else may differ.
    pd.testing.assert_frame_equal(
        ours.reset_index(drop=True), reference.reset_index(drop=True), check_exact=False, rtol=1e-12
    )


@pytest.fixture(scope="module")
def crm():
    return simulate(n_leads=300, n_reps=4, months=4, seed=5).data


@pytest.fixture
def stored(repo, crm):
    repo.import_crm(crm, chunk_rows=2_000)  # several chunks: the read model is kept chunk by chunk
    return repo, repo.load_crm()


FUNNEL_CASES = [
    {},
    {"summary": True},
    {"group_by": "owner"},
    {"group_by": "source", "summary": True},
    {"group_by": "segment"},
    {"group_by": "company_size", "summary": True},
    {"group_by": "period", "period": "week"},
    {"group_by": "period", "period": "month", "summary": True},
    {"start": "2024-01-20T06:00Z", "end": "2024-02-10T18:30Z"},  # straddles a month, partial days
    {"start": "2024-01-20T06:00Z", "end": "2024-02-10T18:30Z", "group_by": "period", "period": "day"},
    {"as_of": "2024-02-15T12:00Z"},  # in the past: later stage changes and closings unknown
    {"as_of": "2024-02-15T12:00Z", "summary": True, "group_by": "owner"},
    {"start": "2030-01-01", "end": "2030-02-01"},  # an empty range
]


@pytest.mark.parametrize("options", FUNNEL_CASES, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "all")
def test_the_database_funnel_is_the_pandas_funnel(stored, options):
    repo, data = stored
    options = dict(options)
    summary = options.pop("summary", False)
    reference = (analytics.funnel_summary if summary else analytics.funnel)(data, **options)
    assert_same(store_analytics.funnel(repo, summary=summary, **options), reference)


PERFORMANCE_CASES = [
    {},
    {"start": "2024-01-31T22:00Z", "end": "2024-03-02T03:15Z"},  # straddles two month ends, partial days
    {"start": "2024-01-15T12:00Z", "end": "2024-04-02", "period": "month"},
    {"start": "2024-02-01", "end": "2024-03-01", "period": "week"},
    {"start": "2024-02-26T07:00Z", "end": "2024-03-04T19:00Z", "period": "day"},
    {"start": "2024-03-10T10:00Z", "end": "2024-03-10T16:00Z"},  # inside one day
    {"as_of": "2024-02-20T09:30Z"},
    {"start": "2030-01-01", "end": "2030-02-01"},
]


@pytest.mark.parametrize("options", PERFORMANCE_CASES, ids=lambda o: ",".join(o.values()) or "all")
def test_the_database_rep_performance_is_the_pandas_one(stored, options):
    repo, data = stored
    ours = store_analytics.rep_performance(repo, **options)
    reference = analytics.rep_performance(data, **options)
    assert_same(ours, reference)
    assert_same(analytics.vs_team_median(ours), analytics.vs_team_median(reference))


GOAL_CASES = [
    {},
    {"as_of": "2024-03-01T00:00Z"},  # exactly a month start: this month is empty, last month whole
    {"as_of": "2024-02-29T15:00Z", "scope": "team"},
    {"as_of": "2024-03-31T15:00Z", "scope": "rep_02"},
    {"as_of": "2024-04-03T08:00Z", "metric": "revenue"},
    {"as_of": "2024-04-03T08:00Z", "metric": "calls", "period": "day"},
    {"as_of": "2024-04-03T08:00Z", "period": "week"},
    {"as_of": "2023-06-01"},  # before any goal
]


@pytest.mark.parametrize("options", GOAL_CASES, ids=lambda o: ",".join(o.values()) or "all")
def test_the_database_goal_progress_is_the_pandas_one(stored, options):
    repo, data = stored
    assert_same(store_analytics.goal_progress(repo, **options), analytics.goal_progress(data, **options))


LOST_REASON_CASES = [
    {},
    {"group_by": "owner"},
    {"group_by": "source"},
    {"group_by": "segment"},
    {"group_by": "period", "period": "week"},
    {"start": "2024-01-20T06:00Z", "end": "2024-02-10T18:30Z", "group_by": "owner"},
    {"as_of": "2024-02-15T12:00Z"},  # later losses (and reasons) unknown
    {"start": "2030-01-01", "end": "2030-02-01"},  # an empty range
]


@pytest.mark.parametrize("options", LOST_REASON_CASES, ids=lambda o: ",".join(o.values()) or "all")
def test_the_database_lost_reasons_are_the_pandas_ones(stored, options):
    repo, data = stored
    assert_same(store_analytics.lost_reasons(repo, **options), analytics.lost_reasons(data, **options))


DAILY_CASES = [
    (metric, options)
    for metric in ("revenue", "conversions", "expenses", "new_leads", "calls")
    for options in ({}, {"as_of": "2024-03-01T00:00Z"}, {"as_of": "2024-03-31T15:00Z", "scope": "rep_02"})
]


@pytest.mark.parametrize(("metric", "options"), DAILY_CASES, ids=lambda v: v if isinstance(v, str) else str(v))
def test_the_database_burnup_and_month_over_month_are_the_pandas_ones(stored, metric, options):
    repo, data = stored
    assert_same(
        store_analytics.month_over_month_daily(repo, metric, **options),
        analytics.month_over_month_daily(data, metric, **options),
    )
    for period in ("month", "week", "day"):
        assert_same(
            store_analytics.goal_burnup(repo, metric, period=period, **options),
            analytics.goal_burnup(data, metric, period=period, **options),
        )


def open_pipeline(data, as_of) -> pd.DataFrame:
    """A made-up scored pipeline: every lead created before ``as_of`` (the closed ones are left out by both)."""
    leads = data.leads[data.leads["created_at"] < pd.Timestamp(as_of)]
    probability = np.linspace(0.05, 0.95, len(leads))
    return pd.DataFrame({"lead_id": leads["lead_id"].to_numpy(), "probability": probability})


@pytest.mark.parametrize(
    "options",
    [{}, {"scope": "rep_02"}, {"period": "week", "horizon_days": 30.0}, {"as_of": "2024-03-10T12:00Z"}],
    ids=lambda o: ",".join(str(v) for v in o.values()) or "all",
)
def test_the_database_forecast_is_the_pandas_one(stored, options):
    repo, data = stored
    pipeline = open_pipeline(data, options.get("as_of", data.end + pd.Timedelta(1, "ns")))
    ours = store_analytics.forecast(repo, pipeline, **options)
    assert_same(ours, analytics.forecast(data, pipeline, **options))
    assert ours["pipeline_leads"].iloc[0] > 0


def test_the_database_forecast_refuses_unknown_leads_and_leaves_out_later_ones(stored):
    repo, data = stored
    as_of = "2024-03-10T12:00Z"
    later = data.leads.loc[data.leads["created_at"] >= pd.Timestamp(as_of), "lead_id"].iloc[:2].tolist()
    pipeline = pd.DataFrame({"lead_id": [*later, "L-none"], "probability": [0.5, 0.5, 0.5]})
    with pytest.raises(ValueError, match="not in the data set: \\['L-none'\\]"):
        store_analytics.forecast(repo, pipeline, as_of)
    ours = store_analytics.forecast(repo, pipeline.iloc[:2], as_of)
    assert_same(ours, analytics.forecast(data, pipeline.iloc[:2], as_of))
    assert ours["pipeline_leads"].tolist() == [0, 0]


def test_a_one_lead_store_answers_like_pandas(repo):
    leads = pd.DataFrame({"lead_id": ["a"], "created_at": ["2024-01-31T23:00Z"], "owner_id": ["ann"]})
    events = pd.DataFrame(
        {
            "event_id": ["1", "2", "3"],
            "lead_id": ["a"] * 3,
            "at": ["2024-02-01T01:00Z", "2024-02-03T00:00Z", "2024-02-05T10:00Z"],
            "type": ["call", "stage_changed", "won"],
            "stage": [None, "proposal", None],
            "duration_s": [60.0, None, None],
            "amount": [None, None, 900.0],
        }
    )
    repo.ingest(leads=leads, events=events)
    data = repo.load_crm()
    assert_same(store_analytics.funnel(repo), analytics.funnel(data))
    assert_same(store_analytics.funnel(repo, summary=True), analytics.funnel_summary(data))
    assert_same(store_analytics.rep_performance(repo, period="day"), analytics.rep_performance(data, period="day"))


def test_bad_parameters_are_refused_as_by_pandas(stored):
    repo, _ = stored
    with pytest.raises(ValueError, match="unknown grouping 'colour'"):
        store_analytics.funnel(repo, group_by="colour")
    with pytest.raises(ValueError, match="ends before it starts"):
        store_analytics.rep_performance(repo, "2024-03-01", "2024-02-01")
    with pytest.raises(ValueError, match="too many periods"):
        store_analytics.rep_performance(repo, "1900-01-01", "2100-01-01", period="day")
    with pytest.raises(ValueError, match="unknown metric"):
        store_analytics.goal_progress(repo, metric="smiles")


def read_model(repo: Repository) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    days = event_days_table
    columns = [days.c.day, days.c.type, days.c.rep_id, days.c.events, days.c.cold_calls, days.c.timed_calls]
    with repo.engine.connect() as conn:
        counted = pd.DataFrame(conn.execute(sa.select(*columns, days.c.call_seconds)).all())
        touches = pd.DataFrame(conn.execute(sa.select(first_touch_table)).all())
    counted = counted.sort_values(["day", "type", "rep_id"], na_position="first", ignore_index=True)
    return counted, touches.sort_values("lead_id", ignore_index=True), stage_stays(repo)


def stage_stays(repo: Repository) -> pd.DataFrame:
    stays, columns = stage_stays_table, ["lead_id", "entered_us", "stage_rank", "left_us"]
    with repo.engine.connect() as conn:
        rows = conn.execute(sa.select(*(stays.c[c] for c in columns))).all()
    return pd.DataFrame(rows, columns=columns).sort_values(columns, na_position="first", ignore_index=True)


def test_the_read_model_kept_on_ingest_equals_one_rebuilt_from_the_events(repo, crm):
    # Events arrive in batches out of time order, retried, and a lead changes owner after its events are in.
    events = crm.events.sample(frac=1.0, random_state=1)
    repo.ingest(leads=crm.leads)
    for batch in np.array_split(np.arange(len(events)), 7):
        repo.ingest(events=events.iloc[batch])
    repo.ingest(events=events.iloc[:500])  # a retry stores nothing twice
    silent = crm.events.loc[crm.events["rep_id"].isna(), "lead_id"].iloc[0]
    moved = crm.leads[crm.leads["lead_id"] == silent].assign(owner_id="rep_99")
    repo.ingest(leads=moved)
    # A lead whose creation the CRM corrects after its stage changes are in: its first stay moves with it.
    changed = crm.events.loc[crm.events["type"] == "stage_changed", "lead_id"]
    staged = changed[changed != silent].iloc[0]
    corrected = crm.leads[crm.leads["lead_id"] == staged]
    repo.ingest(leads=corrected.assign(created_at=corrected["created_at"] - pd.Timedelta(hours=5)))
    kept = read_model(repo)
    with repo.engine.begin() as conn:
        rebuild(conn)
    rebuilt = read_model(repo)
    for ours, reference in zip(kept, rebuilt, strict=True):
        pd.testing.assert_frame_equal(ours, reference)
    assert "rep_99" in set(kept[0]["rep_id"])
    assert len(kept[2]) > len(crm.leads)  # every lead's stay in 'new', and the later stages'
    data = repo.load_crm()
    assert_same(store_analytics.rep_performance(repo), analytics.rep_performance(data))
    assert_same(store_analytics.funnel(repo), analytics.funnel(data))


# ------------------------------------------------------------------ small stores made up by hypothesis

TYPES = ["email_sent", "email_opened", "call", "meeting_held", "meeting_cancelled", "stage_changed", "won", "lost"]
STAGES = ["new", "contacted", "proposal", "other"]
BASE = pd.Timestamp("2024-01-30", tz="UTC")


@st.composite
def small_stores(draw):
    n_leads = draw(st.integers(1, 5))
    hours = st.integers(0, 24 * 6)
    leads = pd.DataFrame(
        {
            "lead_id": [f"L{i}" for i in range(n_leads)],
            "created_at": [BASE + pd.Timedelta(hours=draw(hours)) for _ in range(n_leads)],
            "owner_id": [draw(st.sampled_from(["ann", "bob", None])) for _ in range(n_leads)],
            "segment": [draw(st.sampled_from(["smb", "ent", None])) for _ in range(n_leads)],
        }
    )
    n_events = draw(st.integers(0, 14))
    events = pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(n_events)],
            "lead_id": [f"L{draw(st.integers(0, n_leads - 1))}" for _ in range(n_events)],
            "at": [BASE + pd.Timedelta(hours=draw(hours)) for _ in range(n_events)],
            "type": [draw(st.sampled_from(TYPES)) for _ in range(n_events)],
            "rep_id": [draw(st.sampled_from(["ann", "cy", None])) for _ in range(n_events)],
            "stage": [draw(st.sampled_from(STAGES)) for _ in range(n_events)],
            "duration_s": [draw(st.sampled_from([None, 30.0, 95.0])) for _ in range(n_events)],
            "amount": [draw(st.sampled_from([None, 100.0, 250.0])) for _ in range(n_events)],
        }
    )
    window = sorted(BASE + pd.Timedelta(hours=draw(hours)) for _ in range(2))
    as_of = BASE + pd.Timedelta(hours=draw(st.integers(0, 24 * 8)))
    return leads, events, window, as_of


def same_answer_or_error(ours, reference) -> None:
    """Both give the same table, or both refuse with the same message (e.g. no lead has the attribute)."""
    try:
        expected = reference()
    except ValueError as err:
        with pytest.raises(ValueError) as refused:
            ours()
        assert str(refused.value) == str(err)
        return
    assert_same(ours(), expected)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_stores())
def test_small_made_up_stores_answer_like_pandas(store):
    leads, events, (start, end), as_of = store
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'leadscore.db'}"
        upgrade_database(url)
        repo = Repository.from_url(url)
        try:
            repo.ingest(leads=leads, events=events)
            data = repo.load_crm()
            if start == end:
                end = end + pd.Timedelta(hours=1)
            for options in ({}, {"start": start, "end": end, "as_of": as_of}):
                assert_same(store_analytics.funnel(repo, **options), analytics.funnel(data, **options))
                same_answer_or_error(
                    lambda o=options: store_analytics.funnel(repo, summary=True, group_by="segment", **o),
                    lambda o=options: analytics.funnel_summary(data, group_by="segment", **o),
                )
            ranged = {"start": start, "end": end, "as_of": as_of}
            assert_same(store_analytics.rep_performance(repo, **ranged), analytics.rep_performance(data, **ranged))
            assert_same(
                store_analytics.rep_performance(repo, period="day", **ranged),
                analytics.rep_performance(data, period="day", **ranged),
            )
            same_answer_or_error(
                lambda r=ranged: store_analytics.lost_reasons(repo, group_by="segment", **r),
                lambda r=ranged: analytics.lost_reasons(data, group_by="segment", **r),
            )
            for metric in ("revenue", "calls"):
                assert_same(
                    store_analytics.goal_burnup(repo, metric, as_of, period="week", target=5),
                    analytics.goal_burnup(data, metric, as_of, period="week", target=5),
                )
        finally:
            repo.engine.dispose()


@st.composite
def crowded_funnels(draw):
    """A few leads whose stage changes and closings crowd onto a few instants: ties of time between stage
    changes, with the creation and with the closing; repeated stages; changes after the closing."""
    n_leads = draw(st.integers(1, 4))
    instants = st.integers(0, 6).map(lambda d: BASE + pd.Timedelta(days=d))
    leads = pd.DataFrame(
        {
            "lead_id": [f"L{i}" for i in range(n_leads)],
            "created_at": [draw(instants) for _ in range(n_leads)],
            "owner_id": [draw(st.sampled_from(["ann", "bob"])) for _ in range(n_leads)],
        }
    )
    n_events = draw(st.integers(0, 16))
    kinds = st.sampled_from(["stage_changed"] * 4 + ["won", "lost", "call"])
    events = pd.DataFrame(
        {
            "event_id": [f"e{draw(st.integers(10, 99))}_{i}" for i in range(n_events)],
            "lead_id": [f"L{draw(st.integers(0, n_leads - 1))}" for _ in range(n_events)],
            "at": [draw(instants) for _ in range(n_events)],
            "type": [draw(kinds) for _ in range(n_events)],
            "stage": [draw(st.sampled_from([*STAGES, "qualified", None])) for _ in range(n_events)],
            "amount": [draw(st.sampled_from([None, 100.0])) for _ in range(n_events)],
        }
    )
    batches = draw(st.integers(1, 3))
    as_of = draw(instants) + pd.Timedelta(hours=draw(st.sampled_from([0, 12])))
    return leads, events, batches, as_of


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(crowded_funnels())
def test_funnel_stays_kept_batch_by_batch_answer_like_pandas(funnel_store):
    leads, events, batches, as_of = funnel_store
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'leadscore.db'}"
        upgrade_database(url)
        repo = Repository.from_url(url)
        try:
            repo.ingest(leads=leads)
            for batch in np.array_split(np.arange(len(events))[::-1], batches):  # later ids first
                if len(batch):
                    repo.ingest(events=events.iloc[batch])
            data = repo.load_crm()
            for options in ({}, {"as_of": as_of}, {"as_of": as_of, "group_by": "owner"}):
                assert_same(store_analytics.funnel(repo, **options), analytics.funnel(data, **options))
            kept = stage_stays(repo)
            with repo.engine.begin() as conn:
                rebuild(conn)
            pd.testing.assert_frame_equal(kept, stage_stays(repo))
        finally:
            repo.engine.dispose()
