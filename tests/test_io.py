"""Data sets are read from CSV or Parquet, mapped from foreign exports, and rejected whole when bad."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.data.contracts import ContractError, CrmData
from leadscore.data.io import ColumnMapping, load_dataset, read_table, write_dataset


@pytest.fixture
def dataset(raw_leads, raw_events) -> CrmData:
    return CrmData.from_frames(raw_leads, raw_events)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_written_dataset_reads_back_identically(dataset, tmp_path, fmt):
    write_dataset(dataset, tmp_path, fmt=fmt)
    again = load_dataset(tmp_path)
    pd.testing.assert_frame_equal(again.events, dataset.events, check_dtype=False)
    pd.testing.assert_frame_equal(again.leads, dataset.leads, check_dtype=False)


def _foreign_export(folder, raw_leads, raw_events):
    # A process-mining style export: case_id, activity, resource, timestamp, in local time without offsets.
    raw_leads.rename(columns={"lead_id": "case_id", "created_at": "opened"}).to_csv(folder / "cases.csv", index=False)
    events = raw_events.drop(columns=["event_id"]).rename(
        columns={"lead_id": "case_id", "type": "activity", "rep_id": "resource", "at": "timestamp"}
    )
    events["activity"] = events["activity"].replace({"email_sent": "Send email"})
    events["timestamp"] = events["timestamp"].str.replace("Z", "", regex=False)
    events.to_csv(folder / "events.csv", sep=";", index=False)


def test_foreign_export_is_mapped_by_a_config_file(tmp_path, raw_leads, raw_events):
    _foreign_export(tmp_path, raw_leads, raw_events)
    (tmp_path / "mapping.yaml").write_text(
        """
timezone: Europe/Madrid
leads:
  file: cases.csv
  columns: {lead_id: case_id, created_at: opened}
events:
  columns: {lead_id: case_id, type: activity, rep_id: resource, at: timestamp}
  values:
    type: {"Send email": email_sent}
"""
    )
    data = load_dataset(tmp_path, ColumnMapping.from_file(tmp_path / "mapping.yaml"))
    assert data.events["type"].tolist()[0] == "email_sent"
    assert data.events["rep_id"].tolist()[:2] == ["rep_1", "rep_1"]
    # 10:00 in Madrid (winter) is 09:00 UTC.
    assert data.events.loc[0, "at"] == pd.Timestamp("2024-01-02T09:00:00Z")
    # Ids were derived from content: deterministic and unique.
    assert data.events["event_id"].is_unique
    assert load_dataset(tmp_path, ColumnMapping.from_file(tmp_path / "mapping.yaml")).events.equals(data.events)


def test_mapping_pairs_from_the_command_line(tmp_path, raw_leads, raw_events):
    raw_leads.to_csv(tmp_path / "leads.csv", index=False)
    raw_events.rename(columns={"lead_id": "case_id"}).to_csv(tmp_path / "events.csv", index=False)
    data = load_dataset(tmp_path, ColumnMapping.from_pairs(["events.lead_id=case_id"]))
    assert set(data.events["lead_id"]) == {"L1", "L2", "L3"}


def test_mapped_column_that_is_not_in_the_file_is_named(tmp_path, raw_leads, raw_events):
    raw_leads.to_csv(tmp_path / "leads.csv", index=False)
    raw_events.to_csv(tmp_path / "events.csv", index=False)
    with pytest.raises(ContractError, match=r"mapped column 'case_id' not found"):
        load_dataset(tmp_path, ColumnMapping.from_pairs(["events.lead_id=case_id"]))


def test_mapping_to_a_column_the_contract_does_not_have_is_refused():
    with pytest.raises(ValueError, match=r"events has no column 'colour'"):
        ColumnMapping.from_pairs(["events.colour=color"])
    with pytest.raises(ValueError, match=r"not of the form table.column=their_column"):
        ColumnMapping.from_pairs(["lead_id"])


def test_missing_events_file_is_named(tmp_path, raw_leads):
    raw_leads.to_csv(tmp_path / "leads.csv", index=False)
    with pytest.raises(FileNotFoundError, match=r"has no events.csv or events.parquet"):
        load_dataset(tmp_path)


def test_check_command_reports_problems_and_exits_2(tmp_path, raw_leads, raw_events):
    raw_events.loc[0, "at"] = "31/31/2024"
    raw_leads.to_csv(tmp_path / "leads.csv", index=False)
    raw_events.to_csv(tmp_path / "events.csv", index=False)
    result = CliRunner().invoke(app, ["check", str(tmp_path)])
    assert result.exit_code == 2
    assert "events.at rows 1: unparseable timestamp" in result.output


def test_check_command_summarises_a_valid_dataset(tmp_path, dataset):
    write_dataset(dataset, tmp_path)
    result = CliRunner().invoke(app, ["check", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "custom_thing 1" in result.output


def _read_as_before(path, sep=","):
    # What read_table did before it read with Arrow: pandas' own parser, every value as text, blanks missing.
    options = {"dtype": str, "keep_default_na": False, "na_values": [""]}
    options |= {"sep": None, "engine": "python"} if sep is None else {"sep": sep}
    return pd.read_csv(path, **options)


TRICKY_CSV = {
    "quotes, separators and newlines in values": 'a,b,c\n1,"x, y",\n2,"two\nlines",""\n\n3, padded ,NA\n',
    "a byte-order mark": "\ufeffid,name\n1,Zoë\n",
    "repeated and missing header names": "a,a,,b\n1,2,3,4\n",
    "unicode everywhere": "ñ,日本\nü,🚀\n",
    "escaped quotes": 'a,b\n"he said ""hi""",2\n',
    "Windows line ends": "a,b\r\n1,2\r\n3,\r\n",
    "words pandas would read as missing": "a,b\nnull,NaN\nN/A,None\n",
    "a short row (padded)": "a,b,c\n1,2\n4,5,6\n",
    "a header shorter than the rows (first column the index)": "a,b\nx,1,2\ny,3,4\n",
    "only a header": "a,b\n",
}


@pytest.mark.parametrize("text", TRICKY_CSV.values(), ids=TRICKY_CSV.keys())
def test_csv_is_read_exactly_as_pandas_reads_it(tmp_path, text):
    path = tmp_path / "table.csv"
    path.write_text(text, encoding="utf-8")
    pd.testing.assert_frame_equal(read_table(path), _read_as_before(path))


@pytest.mark.parametrize("sep", [";", "\t"])
def test_semicolon_and_tab_separated_files_are_recognised(tmp_path, sep):
    path = tmp_path / "table.csv"
    path.write_text(sep.join(["id", "amount", "note"]) + "\n" + sep.join(["1", "1,5", "a, b"]) + "\n")
    table = read_table(path)
    pd.testing.assert_frame_equal(table, _read_as_before(path, sep=None))
    assert table.loc[0, "amount"] == "1,5"


def test_a_file_that_is_not_utf8_is_a_contract_error_naming_it(tmp_path):
    path = tmp_path / "events.csv"
    path.write_bytes("id,name\n1,Zo\u00eb\n".encode("latin-1"))
    with pytest.raises(ContractError, match=r"events.csv is not a readable CSV file"):
        read_table(path)


def test_the_uci_bank_file_is_read_as_before(shared_data):
    path = shared_data / "uci_bank_marketing" / "bank-additional-full.csv"
    pd.testing.assert_frame_equal(read_table(path), _read_as_before(path, sep=None))


def test_value_translation_changes_only_the_strings_it_names():
    mapping = ColumnMapping.from_dict({"events": {"values": {"type": {"Send email": "email_sent", "1": "call"}}}})
    raw = pd.DataFrame({"type": pd.Series(["Send email", "1", 1, None, "send email", float("nan"), "x"], dtype=object)})
    translated = mapping.apply("events", raw)["type"].tolist()
    assert translated[:3] == ["email_sent", "call", 1]
    assert translated[3] is None and translated[4] == "send email" and pd.isna(translated[5])
    assert translated[6] == "x"
    text = pd.DataFrame({"type": pd.Series(["Send email", None, "1"], dtype="str")})
    assert mapping.apply("events", text)["type"].tolist()[::2] == ["email_sent", "call"]
