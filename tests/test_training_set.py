"""The training set: which snapshots exist, their labels, censoring, and that their features are point in time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadscore.data.contracts import CrmData
from leadscore.features.builder import build_features
from leadscore.features.catalogue import CATALOGUE_VERSION
from leadscore.features.training_set import build_training_set, label_snapshots, weekly_cutoffs


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def crm(leads: list[tuple[str, str]], events: list[tuple[str, str, str]]) -> CrmData:
    """A validated data set from (lead_id, created_at) and (lead_id, at, type) tuples."""
    return CrmData.from_frames(
        pd.DataFrame(leads, columns=["lead_id", "created_at"]).assign(source="web"),
        pd.DataFrame([(f"e{i}", *e) for i, e in enumerate(events)], columns=["event_id", "lead_id", "at", "type"]),
    )


@pytest.fixture
def history() -> CrmData:
    return crm(
        leads=[
            ("won_inside", "2024-01-01"),
            ("won_after", "2024-01-01"),
            ("lost", "2024-01-01"),
            ("still_open", "2024-01-01"),
            ("closed_before", "2023-12-01"),
            ("created_later", "2024-02-01"),
            ("won_at_horizon", "2024-01-01"),
            ("won_at_cutoff", "2024-01-01"),
        ],
        events=[
            ("won_inside", "2024-01-10", "call"),
            ("won_inside", "2024-02-15", "won"),
            ("won_after", "2024-06-20", "won"),  # after t1's horizon, inside t2's
            ("lost", "2024-02-01", "lost"),
            ("closed_before", "2023-12-20", "won"),
            ("won_at_horizon", "2024-04-14", "won"),  # exactly t1 + 90 days
            ("won_at_cutoff", "2024-01-15", "won"),  # exactly at t1: closed, not scored
            ("still_open", "2024-07-01", "call"),  # the end of the data
        ],
    )


T1, T2, T3 = ts("2024-01-15"), ts("2024-04-01"), ts("2024-04-10")


def labels_of(frame: pd.DataFrame, cutoff: pd.Timestamp) -> dict[str, int]:
    at = frame[frame["cutoff"] == cutoff]
    return dict(zip(at["lead_id"], at["label"].astype(int), strict=True))


def test_labels_are_won_within_the_horizon_after_the_cutoff(history):
    labels = label_snapshots(history, [T1, T2], horizon_days=90)
    assert labels_of(labels, T1) == {
        "won_inside": 1,
        "won_after": 0,
        "lost": 0,
        "still_open": 0,
        "won_at_horizon": 1,
    }
    assert labels_of(labels, T2) == {"won_after": 1, "still_open": 0, "created_later": 0, "won_at_horizon": 1}


def test_snapshots_whose_horizon_runs_past_the_end_are_censored(history):
    assert history.end == ts("2024-07-01")
    labels = label_snapshots(history, [T1, T2, T3], horizon_days=90)
    assert sorted(labels["cutoff"].unique()) == [T1, T2]  # T3 + 90 days is after the end of the data
    assert sorted(label_snapshots(history, [T3], horizon_days=30)["lead_id"]) == [
        "created_later",
        "still_open",
        "won_after",
        "won_at_horizon",
    ]
    empty = label_snapshots(history, [T3], horizon_days=90)
    assert empty.empty and empty.columns.tolist() == ["lead_id", "cutoff", "label"]


def test_a_shorter_horizon_turns_a_late_win_into_a_negative(history):
    assert labels_of(label_snapshots(history, [T1], horizon_days=30), T1)["won_inside"] == 0
    assert labels_of(label_snapshots(history, [T1], horizon_days=31), T1)["won_inside"] == 1


def test_training_set_rows_are_the_labelled_snapshots_with_their_point_in_time_features(history):
    training = build_training_set(history, [T2, T1, T3], horizon_days=90)
    assert training.columns[:3].tolist() == ["lead_id", "cutoff", "label"]
    labels = label_snapshots(history, [T1, T2], horizon_days=90)
    pd.testing.assert_frame_equal(training[["lead_id", "cutoff", "label"]], labels)
    for cutoff in (T1, T2):
        rows = training[training["cutoff"] == cutoff].drop(columns="label").reset_index(drop=True)
        pd.testing.assert_frame_equal(rows, build_features(history.leads, history.events, cutoff))
    at_t1 = training[training["cutoff"] == T1].set_index("lead_id")
    assert at_t1.loc["won_inside", "call_total"] == 1
    assert at_t1.loc["won_inside", "interactions_total"] == 1  # the win itself is in the future


def test_training_set_records_its_vocabulary_and_the_catalogue_version(history):
    training = build_training_set(history, [T1], extra_types=["webinar"])
    assert training.attrs == {"extra_types": ("webinar",), "horizon_days": 90, "catalogue_version": CATALOGUE_VERSION}
    assert "event_webinar_30d" in training.columns


def test_an_all_censored_training_set_is_empty_with_every_column(history):
    empty = build_training_set(history, [T3], horizon_days=90)
    full = build_training_set(history, [T1], horizon_days=90)
    assert empty.empty
    assert empty.dtypes.to_dict() == full.dtypes.to_dict()


def test_default_cutoffs_are_the_mondays_after_the_first_lead(history):
    cutoffs = weekly_cutoffs(history)
    assert cutoffs[0] == ts("2023-12-04") and cutoffs[-1] == ts("2024-07-01")
    assert (cutoffs.day_of_week == 0).all() and (np.diff(cutoffs.asi8) == 7 * 86_400 * 10**9).all()
    training = build_training_set(history)
    assert training["cutoff"].max() + pd.Timedelta(days=90) <= history.end
    assert training["cutoff"].min() == ts("2023-12-04")


def test_weekly_cutoffs_take_a_step_and_bounds():
    data = crm([("a", "2024-01-03")], [("a", "2024-03-01", "call")])
    days = weekly_cutoffs(data, every_days=1, start="2024-02-27", end="2024-03-01")
    assert [str(t.date()) for t in days] == ["2024-02-28", "2024-02-29", "2024-03-01"]
    assert weekly_cutoffs(data, start="2024-01-08")[0] == ts("2024-01-15")  # strictly after the start
    with pytest.raises(ValueError, match="every_days must be at least 1"):
        weekly_cutoffs(data, every_days=0)
    with pytest.raises(ValueError, match="horizon_days must be positive"):
        label_snapshots(data, ["2024-01-08"], horizon_days=0)


# Property: the labels agree with the definition, snapshot by snapshot, on random histories.

BASE = ts("2024-01-01")


@st.composite
def random_crm(draw):
    n = draw(st.integers(1, 6))
    leads = [(f"L{i}", str(BASE + pd.Timedelta(days=draw(st.integers(0, 60))))) for i in range(n)]
    events = [
        (
            f"L{draw(st.integers(0, n - 1))}",
            str(BASE + pd.Timedelta(days=draw(st.integers(0, 200)))),
            draw(st.sampled_from(["won", "lost", "call", "email_sent"])),
        )
        for _ in range(draw(st.integers(1, 15)))
    ]
    return crm(leads, events)


@settings(max_examples=40, deadline=None)
@given(random_crm(), st.lists(st.integers(0, 200), min_size=1, max_size=4), st.integers(1, 120))
def test_labels_match_the_definition_on_random_histories(data, days, horizon):
    cutoffs = [BASE + pd.Timedelta(days=d) for d in days]
    got = label_snapshots(data, cutoffs, horizon_days=horizon)
    expected = set()
    horizon_td = pd.Timedelta(days=horizon)
    for t in sorted(set(cutoffs)):
        if t + horizon_td > data.end:
            continue
        for lead in data.leads.itertuples():
            mine = data.events[data.events["lead_id"] == lead.lead_id]
            closed = mine[mine["type"].isin(["won", "lost"]) & (mine["at"] <= t)]
            if lead.created_at > t or len(closed):
                continue
            won = mine[(mine["type"] == "won") & (mine["at"] > t) & (mine["at"] <= t + horizon_td)]
            expected.add((lead.lead_id, t, int(len(won) > 0)))
    assert set(zip(got["lead_id"], got["cutoff"], got["label"].astype(int), strict=True)) == expected
    assert len(got) == len(expected)


# Point in time, adversarially: long histories of every event type with cutoffs on event times and a nanosecond
# either side, wins exactly at the end of the horizon and a nanosecond to months either side of it.

import pit_histories as pit  # noqa: E402

HORIZONS_DAYS = st.sampled_from([1 / 86_400, 1 / 24, 1.0, 7.0, 90.0])


def _crm(leads: pd.DataFrame, events: pd.DataFrame) -> CrmData:
    return CrmData.from_frames(leads, pit.with_ids(events))


def _first_won(events: pd.DataFrame, lead_id: str) -> pd.Timestamp | None:
    won = events.loc[(events["lead_id"] == lead_id) & (events["type"] == "won"), "at"]
    return won.min() if len(won) else None


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_leads=st.integers(1, 6), horizon=HORIZONS_DAYS, data=st.data())
def test_each_snapshot_is_the_feature_frame_at_its_cutoff_and_its_label_the_definition(seed, n_leads, horizon, data):
    leads, events = pit.history(seed, n_leads=n_leads, per_lead=60, closing_rate=0.3)
    rng = np.random.default_rng(seed + 3)
    cutoffs = [pit.T0] + [
        pit.cutoff_on_events(rng, events, data.draw(st.sampled_from(["on", "before", "after"]))) for _ in range(3)
    ]
    h = pd.Timedelta(int(round(horizon * pit.DAY)), "ns")
    # Wins at the very end of a horizon, or a nanosecond, a second, ... either side of it.
    wins = []
    for lead_id in leads["lead_id"]:
        t = cutoffs[int(rng.integers(0, len(cutoffs)))]
        shift = int(rng.choice([0, 0, *pit.offsets(rng, 2)]))
        wins.append({"lead_id": lead_id, "at": t + h + pd.Timedelta(shift, "ns"), "type": "won"})
    events = pd.concat([events, pd.DataFrame(wins).astype({"lead_id": "str", "type": "str"})], ignore_index=True)
    crm = _crm(leads, events)

    training = build_training_set(crm, cutoffs, horizon_days=horizon, extra_types=(pit.EXTRA,))
    labelled = sorted(t for t in set(cutoffs) if t + h <= crm.end)
    assert sorted(training["cutoff"].unique()) == [t for t in labelled if build_features(crm.leads, crm.events, t).size]
    for t in labelled:
        rows = training[training["cutoff"] == t].reset_index(drop=True)
        expected = build_features(crm.leads, crm.events, t, extra_types=(pit.EXTRA,))
        pd.testing.assert_frame_equal(rows.drop(columns="label"), expected)
        for lead_id, label in zip(rows["lead_id"], rows["label"], strict=True):
            won = _first_won(crm.events, lead_id)
            assert label == int(won is not None and t < won <= t + h), (lead_id, t, won)


@pytest.mark.parametrize("offset", pit.SCALES, ids=pit.SCALE_NAMES)
def test_a_win_at_the_end_of_the_horizon_is_positive_and_one_just_after_it_negative(offset):
    t, h = pit.T0, pd.Timedelta(days=30)
    late = t + h + pd.Timedelta(offset, "ns")
    data = _crm(
        pd.DataFrame({"lead_id": ["at_end", "after_end"], "created_at": [t - h] * 2}),
        pd.DataFrame(
            {"lead_id": ["at_end", "after_end", "after_end"], "at": [t + h, late, late], "type": ["won", "won", "call"]}
        ),
    )
    assert labels_of(label_snapshots(data, [t], horizon_days=30), t) == {"at_end": 1, "after_end": 0}
    training = build_training_set(data, [t], horizon_days=30)
    assert training.set_index("lead_id")["label"].to_dict() == {"at_end": 1, "after_end": 0}


@pytest.mark.parametrize("offset", pit.SCALES, ids=pit.SCALE_NAMES)
def test_a_horizon_ending_exactly_at_the_end_of_the_data_is_labelled_and_one_just_past_it_censored(offset):
    t, h = pit.T0, pd.Timedelta(days=30)
    data = _crm(
        pd.DataFrame({"lead_id": ["a"], "created_at": [t - h]}),
        pd.DataFrame({"lead_id": ["a"], "at": [t + h], "type": ["call"]}),
    )
    assert data.end == t + h
    assert len(label_snapshots(data, [t], horizon_days=30)) == 1
    assert len(build_training_set(data, [t], horizon_days=30)) == 1
    past_end = t + pd.Timedelta(offset, "ns")
    assert label_snapshots(data, [past_end], horizon_days=30).empty
    assert build_training_set(data, [past_end], horizon_days=30).empty


# Found by mutation testing (`make mutate`, README "Mutation testing"): every boundary of the label and of the
# censoring, one second either side, where a look-ahead or an off-by-one in a comparison would show.


def test_labels_and_censoring_one_second_either_side_of_each_boundary():
    t, second, horizon = ts("2024-01-15"), pd.Timedelta(seconds=1), pd.Timedelta(days=30)
    before = str(t - pd.Timedelta(days=10))
    data = crm(
        leads=[
            ("created_at_t", str(t)),
            ("created_just_after", str(t + second)),
            ("won_just_before", before),
            ("won_at_t", before),
            ("won_just_after", before),
            ("lost_just_after", before),
            ("won_at_horizon", before),
            ("won_just_past", before),
        ],
        events=[
            ("won_just_before", str(t - second), "won"),
            ("won_at_t", str(t), "won"),
            ("won_just_after", str(t + second), "won"),
            ("lost_just_after", str(t + second), "lost"),
            ("won_at_horizon", str(t + horizon), "won"),
            ("won_just_past", str(t + horizon + second), "won"),  # also the end of the data
            ("created_at_t", str(t + second), "call"),
        ],
    )
    assert data.end == t + horizon + second
    labels = label_snapshots(data, [t, t + second, t + 2 * second], horizon_days=30)
    assert labels_of(labels, t) == {
        "created_at_t": 0,
        "won_just_after": 1,
        "lost_just_after": 0,
        "won_at_horizon": 1,
        "won_just_past": 0,
    }
    # Its horizon ends exactly at the end of the data: labelled; one second later: censored.
    assert labels_of(labels, t + second) == {
        "created_at_t": 0,
        "created_just_after": 0,
        "won_at_horizon": 1,
        "won_just_past": 1,
    }
    assert sorted(labels["cutoff"].unique()) == [t, t + second]
    training = build_training_set(data, [t, t + second, t + 2 * second], horizon_days=30)
    pd.testing.assert_frame_equal(training[["lead_id", "cutoff", "label"]], labels)
    at_t = training[training["cutoff"] == t].set_index("lead_id")
    assert at_t.loc["created_at_t", "call_total"] == 0 and at_t.loc["created_at_t", "days_since_created"] == 0.0
    at_next = training[training["cutoff"] == t + second].set_index("lead_id")
    assert at_next.loc["created_at_t", "call_total"] == 1
    # A horizon given in fractions of a day is not rounded to whole days.
    assert labels_of(label_snapshots(data, [t], horizon_days=30 - 1 / 86_400), t)["won_at_horizon"] == 0
    # All censored: empty, with the same columns in the same order and the same types.
    empty = label_snapshots(data, [t + 2 * second], horizon_days=30)
    assert empty.empty and empty.dtypes.to_dict() == labels.dtypes.to_dict()
    empty = build_training_set(data, [t + 2 * second], horizon_days=30, extra_types=["webinar"])
    full = build_training_set(data, [t], horizon_days=30, extra_types=["webinar"])
    assert empty.empty and empty.columns.tolist() == full.columns.tolist()
    assert empty.dtypes.to_dict() == full.dtypes.to_dict()
    # The grid ends at the end given, not at the end of the data.
    assert weekly_cutoffs(data, start="2024-01-01", end="2024-01-29")[-1] == ts("2024-01-29")


def test_weekly_cutoffs_of_a_data_set_without_leads_need_a_start_and_take_one():
    empty = crm([], [])
    with pytest.raises(ValueError, match="the data set has no leads: give weekly_cutoffs a start"):
        weekly_cutoffs(empty)
    days = weekly_cutoffs(empty, start="2024-01-03", end="2024-01-22")
    assert [str(t.date()) for t in days] == ["2024-01-08", "2024-01-15", "2024-01-22"]
