"""The contracts catch every kind of bad input with a message naming rows and columns, and load nothing."""

from __future__ import annotations

import pandas as pd
import pytest

from leadscore.data.contracts import EVENTS, GOALS, LEADS, ContractError, CrmData, empty, validate


def test_valid_tables_are_normalised_to_utc_and_typed(raw_leads, raw_events):
    data = CrmData.from_frames(raw_leads, raw_events)
    assert str(data.leads["created_at"].dtype) == "datetime64[ns, UTC]"
    # An offset is honoured; a value without one is read as UTC.
    assert data.leads.loc[1, "created_at"] == pd.Timestamp("2024-01-02T09:30:00Z")
    assert data.leads.loc[2, "created_at"] == pd.Timestamp("2024-01-03T00:00:00Z")
    assert data.events.loc[1, "duration_s"] == 120.0
    assert data.events["scheduled_for"].notna().sum() == 1
    assert "segment" in data.leads.columns  # attribute columns are kept as static features
    assert data.end == pd.Timestamp("2024-01-05T00:00:00Z")


def test_naive_timestamps_are_read_in_the_given_timezone(raw_leads, raw_events):
    data = CrmData.from_frames(raw_leads, raw_events, timezone="Europe/Madrid")
    assert data.leads.loc[2, "created_at"] == pd.Timestamp("2024-01-02T23:00:00Z")


def test_missing_required_column_is_named(raw_events):
    with pytest.raises(ContractError, match=r"events.at.*required column 'at' is missing"):
        validate(EVENTS, raw_events.drop(columns="at"))


def test_unparseable_timestamp_names_rows_and_value(raw_events):
    raw_events.loc[2, "at"] = "next tuesday"
    with pytest.raises(ContractError, match=r"events.at rows 3: unparseable timestamp \(e.g. 'next tuesday'\)"):
        validate(EVENTS, raw_events)


def test_duplicate_event_id_with_other_content_is_an_error(raw_events):
    clash = raw_events.iloc[[0]].assign(type="call")
    with pytest.raises(ContractError, match=r"rows 1, 5: duplicate event_id with different content: \['e1'\]"):
        validate(EVENTS, pd.concat([raw_events, clash]))


def test_exact_duplicate_event_is_dropped_not_an_error(raw_events):
    events = validate(EVENTS, pd.concat([raw_events, raw_events.iloc[[0]]]))
    assert len(events) == 4


def test_negative_duration_is_an_error(raw_events):
    raw_events.loc[1, "duration_s"] = "-5"
    with pytest.raises(ContractError, match=r"events.duration_s rows 2: must not be negative"):
        validate(EVENTS, raw_events)


def test_non_numeric_amount_is_an_error(raw_events):
    raw_events["amount"] = [None, "12k", None, None]
    with pytest.raises(ContractError, match=r"events.amount rows 2: not a number \(e.g. '12k'\)"):
        validate(EVENTS, raw_events)


def test_event_for_unknown_lead_is_an_error_and_nothing_is_loaded(raw_leads, raw_events):
    raw_events.loc[3, "lead_id"] = "L404"
    with pytest.raises(ContractError, match=r"events.lead_id rows 4: event for an unknown lead: \['L404'\]"):
        CrmData.from_frames(raw_leads, raw_events)


def test_unknown_goal_metric_is_an_error():
    goals = pd.DataFrame(
        {"metric": ["revenue", "happiness"], "period": ["month", "week"], "target": [1000, 5], "start": "2024-01-01"}
    )
    with pytest.raises(ContractError, match=r"goals.metric rows 2: unknown value\(s\) \['happiness'\]"):
        validate(GOALS, goals)


def test_goal_scope_defaults_to_team():
    goals = validate(
        GOALS, pd.DataFrame({"metric": ["calls"], "period": ["day"], "target": [40], "start": ["2024-01-01"]})
    )
    assert goals.loc[0, "scope"] == "team"


def test_every_problem_in_every_table_is_reported_together(raw_leads, raw_events):
    raw_leads.loc[0, "created_at"] = "not a date"
    raw_events.loc[1, "duration_s"] = "-1"
    with pytest.raises(ContractError) as info:
        CrmData.from_frames(raw_leads, raw_events)
    assert {(p.table, p.column) for p in info.value.problems} == {("leads", "created_at"), ("events", "duration_s")}


def test_missing_required_value_is_an_error(raw_leads):
    raw_leads.loc[1, "lead_id"] = "  "
    with pytest.raises(ContractError, match=r"leads.lead_id rows 2: a required value is missing"):
        validate(LEADS, raw_leads)


def test_empty_tables_have_the_contract_columns():
    assert list(empty(EVENTS).columns) == EVENTS.names


def _parse_as_before(values: pd.Series, timezone: str) -> pd.Series:
    # parse_timestamps before it tried ISO 8601 first: one format inferred per value ("mixed").
    from leadscore.data.contracts import _to_utc

    text = values.astype("string").str.strip()
    try:
        parsed = pd.to_datetime(text, errors="coerce", format="mixed", utc=False)
        if getattr(parsed.dt, "tz", None) is None:
            parsed = parsed.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
        return parsed.dt.tz_convert("UTC")
    except (ValueError, TypeError, AttributeError):
        return _to_utc(values, timezone, None)


TIMESTAMP_COLUMNS = {
    "dates": ["2024-01-02", "2024-02-29", None, "1999-12-31"],
    "naive date times": ["2024-01-02 10:00", "2024-01-02T10:00:05", "2024-03-31 02:30:00", " 2024-10-27 02:30 "],
    "fractions": ["2024-01-02 10:00:00.5", "2024-01-02T10:00:00.123456", "2024-01-02T10:00:00.123456789"],
    "UTC": ["2024-01-02T10:00:00Z", "2024-07-02T10:00:00Z", None],
    "one offset": ["2024-01-02T10:00:00+01:00", "2024-01-03T10:00:00+01:00"],
    "offsets that change with summer time": ["2024-01-02T10:00:00+01:00", "2024-07-02T10:00:00+02:00"],
    "offsets and none": ["2024-01-02T10:00:00Z", "2024-01-02T10:30:00+01:00", "2024-01-03"],
    "compact": ["20240102", "20240102T100000"],
    "not ISO": ["02/01/2024", "Jan 3 2024 10:00", "2024-01-02"],
    "some unparseable": ["2024-01-02", "yesterday", "2024-13-45"],
}


@pytest.mark.parametrize("timezone", ["UTC", "Europe/Madrid"])
@pytest.mark.parametrize("values", TIMESTAMP_COLUMNS.values(), ids=TIMESTAMP_COLUMNS.keys())
def test_timestamps_parse_as_they_did_before_the_iso_fast_path(values, timezone):
    from leadscore.data.contracts import _to_utc

    column = pd.Series(values, dtype="str")
    expected = _parse_as_before(column, timezone)
    pd.testing.assert_series_equal(_to_utc(column, timezone, None), expected, check_dtype=False)


def test_many_reused_event_ids_are_refused_naming_the_first_five(raw_leads):
    ids = [f"e{i % 7}" for i in range(70)]  # seven ids, each used ten times with different content
    events = pd.DataFrame({"event_id": ids, "lead_id": "L1", "at": "2024-01-02", "type": [f"t{i}" for i in range(70)]})
    with pytest.raises(ContractError) as caught:
        CrmData.from_frames(raw_leads, events)
    (problem,) = caught.value.problems
    assert problem.rows == tuple(range(1, 71))
    assert problem.message == "duplicate event_id with different content: ['e0', 'e1', 'e2', 'e3', 'e4']"
