"""Flat tables: column kinds are inferred, placeholders are missing, the target and time order are found."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.model.cleaning import TableCleaner
from leadscore.model.flat_table import load_flat_table, target_labels
from leadscore.model.kinds import infer_kind


def raw_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "lead": [f"L{i}" for i in range(200)],
            "calls": [str(i % 7) if i % 10 else "" for i in range(200)],
            "budget": [f"{i * 10.5}" if i % 9 else "unknown" for i in range(200)],
            "newsletter": ["yes" if i % 3 else "no" for i in range(200)],
            "first_contact": [f"2024-0{1 + i % 9}-1{i % 10}" for i in range(200)],
            "source": ["web", "ads", "?", "event"] * 50,
            "region": ["north"] * 200,
            "converted": ["yes" if i % 4 == 0 else "no" for i in range(200)],
        }
    )


def test_kinds_are_inferred_and_identifiers_and_constants_left_out():
    cleaner = TableCleaner().fit(raw_table().drop(columns="converted"))
    assert cleaner.kinds_ == {
        "calls": "numeric",
        "budget": "numeric",
        "newsletter": "boolean",
        "first_contact": "date",
        "source": "categorical",
    }
    assert "identifier" in cleaner.dropped_["lead"]
    assert cleaner.dropped_["region"] == "a single value"


def test_placeholders_become_missing_values():
    out = TableCleaner().fit_transform(raw_table().drop(columns="converted"))
    assert np.isnan(out.loc[0, "calls"]) and np.isnan(out.loc[0, "budget"])
    assert pd.isna(out.loc[2, "source"])
    assert out.loc[1, "calls"] == 1.0 and out.loc[1, "newsletter"] == 1.0 and out.loc[0, "newsletter"] == 0.0
    assert out["first_contact"].dtype == float  # days since 1970


def test_month_names_are_categories_not_dates():
    assert infer_kind(pd.Series(["may", "jun", "jul", "may"]))[0] == "categorical"


def test_a_column_never_filled_in_becomes_a_constant():
    frame = pd.DataFrame({"calls": ["1", "2", "3"], "score": [None, None, None]})
    cleaner = TableCleaner(kinds={"calls": "numeric", "score": "numeric"}).fit(frame)
    assert cleaner.empty_ == ["score"]
    assert cleaner.transform(pd.DataFrame({"calls": ["4"], "score": ["9"]}))["score"].tolist() == [0.0]


def test_missing_input_columns_are_named():
    cleaner = TableCleaner().fit(raw_table().drop(columns="converted"))
    with pytest.raises(ValueError, match="'newsletter'"):
        cleaner.transform(raw_table().drop(columns=["converted", "newsletter"]))


def test_a_column_seen_missing_in_training_may_be_absent_and_reads_as_missing():
    table = raw_table().drop(columns="converted")
    cleaner = TableCleaner().fit(table)
    assert "budget" in cleaner.optional_ and "newsletter" not in cleaner.optional_
    pd.testing.assert_frame_equal(
        cleaner.transform(table.drop(columns="budget")), cleaner.transform(table.assign(budget=None))
    )


def test_small_and_large_batches_are_cleaned_alike():
    table = raw_table().drop(columns="converted")
    cleaner = TableCleaner().fit(table)
    whole = cleaner.transform(table)
    one_by_one = pd.concat([cleaner.transform(table.iloc[[i]]) for i in range(0, 200, 17)])
    pd.testing.assert_frame_equal(whole.iloc[list(range(0, 200, 17))], one_by_one)


def test_target_values_are_read_as_yes_or_no():
    y, has, positive = target_labels(pd.Series(["No", "Yes", "", "No"]))
    assert y.tolist() == [0, 1, 0, 0] and has.tolist() == [True, True, False, True] and positive == "Yes"
    with pytest.raises(ValueError, match="exactly two values"):
        target_labels(pd.Series(["a", "b", "c"]))
    with pytest.raises(ValueError, match="cannot tell which"):
        target_labels(pd.Series(["red", "blue"]))
    assert target_labels(pd.Series(["red", "blue"]), positive="red")[0].tolist() == [1, 0]


def test_flat_table_in_row_order_and_with_a_time_column(tmp_path):
    path = tmp_path / "leads.csv"
    raw_table().to_csv(path, sep=";", index=False)
    data = load_flat_table(path, "converted", row_order_is_time=True, drop=["lead"])
    assert data.time_kind == "row order" and data.times.tolist() == list(range(200))
    assert "lead" not in data.X.columns and data.positives == 50
    timed = load_flat_table(path, "converted", time_column="first_contact", drop=["lead"])
    assert timed.time_kind == "column" and "first_contact" not in timed.X.columns
    untimed = load_flat_table(path, "converted")
    assert untimed.times is None and any("random split" in note for note in untimed.notes)


def test_unknown_columns_are_named(tmp_path):
    path = tmp_path / "leads.csv"
    raw_table().to_csv(path, index=False)
    with pytest.raises(ValueError, match="column 'won' is not in"):
        load_flat_table(path, "won")


def test_uci_bank_marketing_kinds(shared_data):
    path = shared_data / "uci_bank_marketing" / "bank-additional-full.csv"
    data = load_flat_table(path, "y", drop=["duration"], row_order_is_time=True)
    assert len(data) == 41188 and data.positives == 4640
    assert data.kinds["age"] == "numeric" and data.kinds["job"] == "categorical"
    assert data.kinds["housing"] == "boolean" and data.kinds["month"] == "categorical"
    assert "duration" not in data.X.columns
