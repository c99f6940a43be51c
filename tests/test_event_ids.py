"""Event ids derived from a row's content: the vectorised function gives exactly the ids stores already hold.

Stores use the event id as the idempotency key, so an export loaded before and after the change must give the
same ids row for row, or a second load would store every event twice. The reference is the original
row-by-row algorithm, kept here only.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leadscore.data.io import ColumnMapping, derive_event_ids, load_dataset, read_table


def reference_event_ids(events: pd.DataFrame) -> pd.Series:
    """The ids as derived before vectorising: each row's text joined by a unit separator, hashed with BLAKE2b."""
    content = events.astype("string").fillna("").agg("\x1f".join, axis=1)
    return content.map(lambda s: "h" + hashlib.blake2b(s.encode(), digest_size=10).hexdigest())


def _assert_same_ids(events: pd.DataFrame) -> None:
    expected = reference_event_ids(events)
    got = derive_event_ids(events)
    assert got.index.equals(events.index)
    assert got.tolist() == expected.tolist()


def varied_events() -> pd.DataFrame:
    """Text, blanks, NaN, None, numbers, booleans, timestamps with and without a zone, unicode, odd characters."""
    n = 9
    return pd.DataFrame(
        {
            "case": ["c1", "c1", "c2", "Ωmega", "日本語", "emoji 🚀", "", " padded ", "tab\tand\x1fsep"],
            "activity": ["Send email", None, "Phone call", np.nan, "Réunion", "call", "call", "x", pd.NA],
            "when_text": ["2024-01-02 10:00:00", "2024-01-02T10:00:00Z", "02/01/2024", None, "", "x", "1", "2", "3"],
            "when_aware": pd.to_datetime(
                ["2024-01-02T10:00:00Z", None, "2024-03-31T01:59:59.123456Z"] + ["2024-06-01T00:00:00Z"] * 6,
                format="ISO8601",
            ),
            "when_naive": pd.to_datetime(
                ["2024-01-02 10:00", "2024-01-02 10:00:00.5", None] + ["2023-12-31"] * 6, format="mixed"
            ),
            "seconds": [120.0, np.nan, 0.1 + 0.2, -0.0, 1e21, 3.0, float("inf"), 1.5e-7, 2.0],
            "count": pd.array([1, None, 3, 4, 5, 6, 7, 8, 9], dtype="Int64"),
            "integers": np.arange(n, dtype=np.int64) * 10**12,
            "flag": [True, False, True, False, True, False, True, False, True],
            "maybe": [True, None, False, None, True, None, False, None, True],
            "mixed": [1, "one", 1.0, None, b"bytes", pd.Timestamp("2024-01-01"), 2.5, np.nan, "ü"],
            "category": pd.Categorical(["a", "b", None, "a", "b", "a", "b", "a", "b"]),
            "text_dtype": pd.array(["x", None, "z", "ä", "", "y", "x", "y", "z"], dtype="string"),
        },
        index=pd.Index([10, 11, 12, 13, 14, 15, 16, 17, 18]),
    )


def test_derived_ids_are_the_old_ids_on_a_varied_table():
    _assert_same_ids(varied_events())


def test_derived_ids_are_the_old_ids_on_any_subset_of_columns_and_rows():
    events = varied_events()
    for columns in (["case"], ["seconds"], ["when_aware", "case"], ["maybe", "mixed", "category"]):
        _assert_same_ids(events[columns])
    _assert_same_ids(events.iloc[::-2])


def test_exact_repeats_share_an_id_and_any_difference_changes_it():
    events = pd.DataFrame({"lead": ["a", "a", "a", "a"], "what": ["call", "call", "call ", None]})
    ids = derive_event_ids(events)
    assert ids[0] == ids[1]
    assert ids.iloc[1:].is_unique
    assert ids.str.fullmatch(r"h[0-9a-f]{20}").all()


def test_an_empty_table_gets_no_ids():
    ids = derive_event_ids(pd.DataFrame({"lead": pd.Series([], dtype="str"), "at": pd.Series([], dtype="str")}))
    assert len(ids) == 0


@pytest.fixture(scope="module")
def maven_pipeline(shared_data) -> Path:
    path = shared_data / "maven_crm_sales_opportunities" / "sales_pipeline.csv"
    if not path.exists():
        pytest.skip(f"the Maven CRM pipeline is not at {path}")
    return path


def test_derived_ids_are_the_old_ids_on_the_real_maven_export(maven_pipeline):
    # As the loader reads it (all text, blanks missing) and as pandas types it (dates, floats, NaN).
    _assert_same_ids(read_table(maven_pipeline))
    _assert_same_ids(pd.read_csv(maven_pipeline, parse_dates=["engage_date", "close_date"]))


def test_a_mapped_export_without_ids_loads_with_the_old_ids(tmp_path, maven_pipeline):
    # The Maven deals as a foreign event log: one "engaged" row per deal with a date, no event id.
    deals = read_table(maven_pipeline).dropna(subset=["engage_date"])
    deals[["opportunity_id", "engage_date", "sales_agent"]].to_csv(tmp_path / "deals.csv", index=False)
    log = deals.assign(activity="Engaged")[["opportunity_id", "activity", "engage_date", "sales_agent", "close_value"]]
    log.to_csv(tmp_path / "log.csv", index=False)
    mapping = ColumnMapping.from_dict(
        {
            "leads": {"file": "deals.csv", "columns": {"lead_id": "opportunity_id", "created_at": "engage_date"}},
            "events": {
                "file": "log.csv",
                "columns": {"lead_id": "opportunity_id", "type": "activity", "at": "engage_date"},
                "values": {"type": {"Engaged": "stage_changed"}},
            },
        }
    )
    data = load_dataset(tmp_path, mapping)
    raw = mapping.apply("events", read_table(tmp_path / "log.csv"))
    assert data.events["event_id"].tolist() == reference_event_ids(raw).tolist()
    assert len(data.events) == len(deals)
