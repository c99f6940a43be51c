"""Reading and writing CRM data sets: files in, validated contract tables out.

A data set is a folder holding ``leads``, ``events`` and optionally ``goals`` and ``expenses``, each as ``.csv``
or ``.parquet``. A foreign CRM export is mapped onto the contracts by a :class:`ColumnMapping` (which column
is which, and optionally which of its values mean which of ours) rather than by code.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from hashlib import blake2b
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import yaml

from leadscore.data.contracts import CONTRACTS, ContractError, CrmData, Problem

TABLES = ("leads", "events", "goals", "expenses")
REQUIRED_TABLES = ("leads", "events")
SUFFIXES = (".parquet", ".csv")


@dataclass
class ColumnMapping:
    """How a foreign export's columns (and values) map onto the contract tables.

    ``columns[table][ours] = theirs`` renames their column to ours; ``values[table][column][theirs] = ours``
    translates values (e.g. their activity names to our event types); ``timezone`` is the zone of timestamps
    written without an offset; ``files[table]`` names the file when it is not ``<table>.csv``.

    Examples
    --------
    >>> m = ColumnMapping.from_pairs(["events.lead_id=case_id", "events.type=activity"])
    >>> m.columns["events"]
    {'lead_id': 'case_id', 'type': 'activity'}
    """

    columns: dict[str, dict[str, str]] = field(default_factory=dict)
    values: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    timezone: str = "UTC"
    timestamp_format: str | None = None

    @classmethod
    def from_pairs(cls, pairs: Iterable[str], *, timezone: str = "UTC") -> ColumnMapping:
        """Build from ``table.ours=theirs`` strings, as given on the command line."""
        columns: dict[str, dict[str, str]] = {}
        for pair in pairs:
            target, sep, source = pair.partition("=")
            table, dot, ours = target.strip().partition(".")
            if not sep or not dot or not source.strip():
                raise ValueError(f"mapping {pair!r} is not of the form table.column=their_column")
            _check_target(table, ours)
            columns.setdefault(table, {})[ours] = source.strip()
        return cls(columns=columns, timezone=timezone)

    @classmethod
    def from_dict(cls, config: Mapping) -> ColumnMapping:
        """Build from a config mapping: ``{table: {columns: {...}, values: {...}, file: ...}, timezone: ...}``."""
        mapping = cls(timezone=config.get("timezone", "UTC"), timestamp_format=config.get("timestamp_format"))
        for table, spec in config.items():
            if table in ("timezone", "timestamp_format"):
                continue
            if table not in TABLES:
                raise ValueError(f"unknown table {table!r} in mapping; expected one of {list(TABLES)}")
            spec = spec or {}
            unknown = set(spec) - {"columns", "values", "file"}
            if unknown:
                raise ValueError(f"unknown key(s) {sorted(unknown)} under {table!r}; use columns, values, file")
            for ours in spec.get("columns", {}) or {}:
                _check_target(table, ours)
            mapping.columns[table] = dict(spec.get("columns", {}) or {})
            mapping.values[table] = {k: dict(v) for k, v in (spec.get("values", {}) or {}).items()}
            if spec.get("file"):
                mapping.files[table] = spec["file"]
        return mapping

    @classmethod
    def from_file(cls, path: str | Path) -> ColumnMapping:
        """Read a YAML (or JSON) mapping file."""
        with open(path, encoding="utf-8") as fh:
            config = yaml.safe_load(fh) or {}
        if not isinstance(config, Mapping):
            raise ValueError(f"mapping file {path} must hold a mapping of tables, not {type(config).__name__}")
        return cls.from_dict(config)

    def merged(self, other: ColumnMapping) -> ColumnMapping:
        """This mapping with ``other``'s entries taking precedence (command-line pairs over a file)."""
        out = ColumnMapping(
            columns={t: dict(c) for t, c in self.columns.items()},
            values={t: dict(v) for t, v in self.values.items()},
            files={**self.files, **other.files},
            timezone=other.timezone if other.timezone != "UTC" else self.timezone,
            timestamp_format=other.timestamp_format or self.timestamp_format,
        )
        for table, cols in other.columns.items():
            out.columns.setdefault(table, {}).update(cols)
        for table, vals in other.values.items():
            out.values.setdefault(table, {}).update(vals)
        return out

    def apply(self, table: str, frame: pd.DataFrame) -> pd.DataFrame:
        """Rename and translate ``frame`` (a raw ``table`` export) into contract column names and values."""
        renames = self.columns.get(table, {})
        missing = [theirs for theirs in renames.values() if theirs not in frame.columns]
        if missing:
            raise ContractError(
                Problem(
                    table=table,
                    column=theirs,
                    rows=(),
                    message=f"mapped column {theirs!r} not found (columns: {list(frame.columns)})",
                )
                for theirs in missing
            )
        out = frame.rename(columns={theirs: ours for ours, theirs in renames.items()})
        for column, translation in self.values.get(table, {}).items():
            if column in out.columns:
                out[column] = _translated(out[column], translation)
        return out


def _translated(values: pd.Series, translation: Mapping) -> pd.Series:
    """``values`` with each string that ``translation`` names replaced by its translation, the rest untouched."""
    # Only string keys: a value read as the number 1 is not the text "1" (the keys come from YAML, typed).
    textual = {theirs: ours for theirs, ours in translation.items() if isinstance(theirs, str)}
    # Each distinct value is looked up once: a million activities hold a few dozen names.
    codes, distinct = pd.factorize(values)
    named = np.asarray(distinct.isin(list(textual)))
    if not named.any():
        return values
    translated = pd.Series(np.asarray(distinct.map(textual), dtype=object)[codes], index=values.index)
    return values.where(~((codes >= 0) & named[codes]), translated)


def _check_target(table: str, column: str) -> None:
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r} in mapping; expected one of {list(TABLES)}")
    contract = CONTRACTS[table]
    if column not in contract.names and not contract.keep_extra_columns:
        raise ValueError(f"{table} has no column {column!r}; its columns are {contract.names}")


def read_table(path: str | Path) -> pd.DataFrame:
    """Read one CSV or Parquet file as raw values (strings stay strings; nothing parsed yet).

    CSV separators (``,``, ``;`` or tab) are detected; empty fields become missing values. A CSV file is read
    with Arrow's parser, which reads text columns several times faster than pandas' (``dtype=str`` costs pandas
    most of its time); what Arrow refuses but pandas reads (a short row, a header shorter than its rows) is
    read by pandas, as before.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "events.csv"
    >>> _ = path.write_text("case;amount;note\\nc1;1,5;\\n")
    >>> read_table(path).to_dict("records")
    [{'case': 'c1', 'amount': '1,5', 'note': nan}]
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix not in (".csv", ".txt", ".tsv"):
        raise ValueError(f"{path}: unsupported file type {path.suffix!r}; use .csv or .parquet")
    separator = _separator(path)
    if separator is not None:
        try:
            return _read_csv_with_arrow(path, separator)
        except ValueError:  # Arrow's refusals (ArrowInvalid) and pandas' on the header: pandas decides below
            pass
    # Everything is read as text: the contracts decide what is a number or a timestamp, and say where not.
    options = {"dtype": str, "keep_default_na": False, "na_values": [""]}
    options |= {"sep": None, "engine": "python"} if separator is None else {"sep": separator}
    try:
        return pd.read_csv(path, **options)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ContractError(
            [Problem(table=path.stem, column=None, rows=(), message=f"{path} is not a readable CSV file: {err}")]
        ) from err


def _separator(path: Path) -> str | None:
    """``,`` unless the header says otherwise; then the one :class:`csv.Sniffer` finds in it (as pandas does).

    None when the sniffer finds none: pandas' own sniffing then has the last word.
    """
    with open(path, encoding="utf-8", errors="replace") as fh:
        header = fh.readline()
    if header.count(";") <= header.count(",") and "\t" not in header:
        return ","
    try:
        return csv.Sniffer().sniff(header).delimiter
    except csv.Error:
        return None


def _read_csv_with_arrow(path: Path, separator: str) -> pd.DataFrame:
    # The column names are pandas' (repeated names numbered, empty ones "Unnamed: i"), so both readers agree.
    names = pd.read_csv(path, sep=separator, nrows=0).columns.tolist()
    table = pa_csv.read_csv(
        path,
        read_options=pa_csv.ReadOptions(column_names=names, skip_rows=1),
        parse_options=pa_csv.ParseOptions(delimiter=separator, newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types={name: pa.large_string() for name in names},
            null_values=[""],
            strings_can_be_null=True,
        ),
    )
    return table.to_pandas()


def find_table_file(folder: Path, table: str, mapping: ColumnMapping | None = None) -> Path | None:
    """The file holding ``table`` in ``folder``, or None when there is none."""
    if mapping and table in mapping.files:
        path = folder / mapping.files[table]
        if not path.exists():
            raise FileNotFoundError(f"{path} (the {table} file named in the mapping) does not exist")
        return path
    for suffix in SUFFIXES:
        path = folder / f"{table}{suffix}"
        if path.exists():
            return path
    return None


def derive_event_ids(events: pd.DataFrame) -> pd.Series:
    """Deterministic ids for exports without one: a hash of the row's content, so exact repeats collapse.

    A row's content is its values as pandas writes them as text (missing ones empty), in column order, joined
    by the unit separator ``\\x1f``; the id is ``h`` and the hex of its 10-byte BLAKE2b digest. The same rows
    always get the same ids, so loading an export twice stores its events once.

    Examples
    --------
    >>> events = pd.DataFrame({"case": ["c1", "c1", "c2"], "activity": ["call", "call", None]})
    >>> derive_event_ids(events).tolist()
    ['hb63525f5dd6919008446', 'hb63525f5dd6919008446', 'h95eecc98f731ee868f7c']
    """
    # The rows' text is joined column by column in Arrow (a per-row DataFrame.agg made it 4,000 rows/s); the
    # text of each value, and so every id, is exactly what stores already hold from earlier loads.
    text = [pa.array(events.iloc[:, i].astype("string"), type=pa.large_string()) for i in range(events.shape[1])]
    separator = pa.scalar("\x1f", type=pa.large_string())
    rows = pc.binary_join_element_wise(*text, separator, null_handling="replace", null_replacement="")
    # BLAKE2b has no vectorised form: one C call per row on the row's UTF-8 bytes, about 0.5 s per million.
    ids = ["h" + blake2b(content, digest_size=10).hexdigest() for content in rows.cast(pa.large_binary()).to_pylist()]
    return pd.Series(ids, index=events.index, dtype="str")


def load_dataset(path: str | Path, mapping: ColumnMapping | None = None) -> CrmData:
    """Load and validate a CRM data set folder.

    Every table's problems are reported together, and nothing is returned unless all of them pass.

    Examples
    --------
    >>> data = load_dataset("data/demo")  # doctest: +SKIP
    >>> data.events.columns[:4].tolist()  # doctest: +SKIP
    ['event_id', 'lead_id', 'at', 'type']
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder holding leads and events files")
    mapping = mapping or ColumnMapping()
    raw: dict[str, pd.DataFrame | None] = {}
    for table in TABLES:
        file = find_table_file(folder, table, mapping)
        if file is None:
            if table in REQUIRED_TABLES:
                raise FileNotFoundError(f"{folder} has no {table}.csv or {table}.parquet")
            raw[table] = None
            continue
        raw[table] = mapping.apply(table, read_table(file))
    events = raw["events"]
    if events is not None and "event_id" not in events.columns:
        events = events.assign(event_id=derive_event_ids(events))
        raw["events"] = events
    return CrmData.from_frames(raw["leads"], raw["events"], raw["goals"], raw["expenses"], timezone=mapping.timezone)


def write_dataset(data: CrmData, out_dir: str | Path, fmt: str = "csv") -> dict[str, Path]:
    """Write the four tables to ``out_dir`` as ``<table>.csv`` or ``<table>.parquet``; returns the paths."""
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"format {fmt!r} is not supported; use csv or parquet")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for table in TABLES:
        frame: pd.DataFrame = getattr(data, table)
        path = out / f"{table}.{fmt}"
        if fmt == "parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False, date_format="%Y-%m-%dT%H:%M:%S%z")
        paths[table] = path
    return paths
