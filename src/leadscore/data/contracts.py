"""Data contracts: the canonical leads, events, goals and expenses tables.

Every input (a CRM export, an HTTP payload, the simulator's output) becomes these tables, and they are checked
here, once, at the edge. Inside the library a frame that passed :func:`validate` can be trusted: timestamps are
timezone-aware UTC, required columns exist, keys are unique, numbers are numbers.

Errors are collected, not raised one at a time, so a user fixing a file sees every problem in one go, each with
the table, the column and the (1-based) data rows involved.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# Event types that carry meaning for features and analytics. Any other type is kept and counted generically.
KNOWN_EVENT_TYPES: tuple[str, ...] = (
    "email_sent",
    "email_opened",
    "email_replied",
    "call",
    "meeting_scheduled",
    "meeting_held",
    "meeting_cancelled",
    "meeting_rejected",
    "web_visit",
    "form_submitted",
    "stage_changed",
    "won",
    "lost",
)
# Event types that close a lead: a closed lead is no longer scored.
CLOSING_EVENT_TYPES: tuple[str, ...] = ("won", "lost")
# Pipeline stages in order; `stage_changed` events carry one of these (other stage names are kept, ranked 0).
STAGES: tuple[str, ...] = ("new", "contacted", "qualified", "proposal", "negotiation")
# Subtype of a `call` event that marks it as a cold call.
COLD_CALL_SUBTYPE = "cold"
#: What a salesperson does to move a lead: a lead's first such event is its first response.
OUTBOUND_EVENT_TYPES: tuple[str, ...] = ("email_sent", "call", "meeting_scheduled", "meeting_held")

GOAL_METRICS: tuple[str, ...] = (
    "revenue",
    "conversions",
    "expenses",
    "new_leads",
    "meetings",
    "calls",
    "emails",
)
GOAL_PERIODS: tuple[str, ...] = ("day", "week", "month")
TEAM_SCOPE = "team"

MAX_ERRORS_SHOWN = 10

# What a contract column holds.
ColumnType = Literal["str", "timestamp", "float"]


@dataclass(frozen=True, kw_only=True)
class Column:
    """One column of a contract table."""

    name: str
    kind: ColumnType
    required: bool
    description: str
    non_negative: bool = False
    allowed: tuple[str, ...] | None = None


@dataclass(frozen=True, kw_only=True)
class TableContract:
    """A canonical table: its columns, its unique key and whether extra columns are kept."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    keep_extra_columns: bool = False

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"column {name!r} is not part of the {self.name} contract")


LEADS = TableContract(
    name="leads",
    columns=(
        Column(name="lead_id", kind="str", required=True, description="Unique identifier of the lead."),
        Column(name="created_at", kind="timestamp", required=True, description="When the relationship started (UTC)."),
        Column(name="owner_id", kind="str", required=False, description="The salesperson who owns the lead."),
        Column(
            name="source",
            kind="str",
            required=False,
            description="Where the lead came from (web, referral, event, ...).",
        ),
    ),
    key=("lead_id",),
    keep_extra_columns=True,  # segment, country, company size, ...: they become static features
)

EVENTS = TableContract(
    name="events",
    columns=(
        Column(
            name="event_id",
            kind="str",
            required=True,
            description="Unique identifier; the idempotency key for ingestion.",
        ),
        Column(name="lead_id", kind="str", required=True, description="The lead the event belongs to."),
        Column(name="at", kind="timestamp", required=True, description="When the event happened (UTC)."),
        Column(
            name="type",
            kind="str",
            required=True,
            description="email_sent, call, meeting_held, stage_changed, won, lost, or any other.",
        ),
        Column(name="rep_id", kind="str", required=False, description="The salesperson who acted."),
        Column(
            name="duration_s",
            kind="float",
            required=False,
            description="Length of a call or meeting in seconds.",
            non_negative=True,
        ),
        Column(
            name="scheduled_for",
            kind="timestamp",
            required=False,
            description="When a scheduled meeting or call is to take place.",
        ),
        Column(name="stage", kind="str", required=False, description="The new stage of a stage_changed event."),
        Column(
            name="amount",
            kind="float",
            required=False,
            description="Deal value of a won deal or a stage change.",
            non_negative=True,
        ),
        Column(
            name="subtype",
            kind="str",
            required=False,
            description="A refinement: 'cold' for cold calls, the reason of a lost deal.",
        ),
    ),
    key=("event_id",),
)

GOALS = TableContract(
    name="goals",
    columns=(
        Column(name="metric", kind="str", required=True, description="What is counted.", allowed=GOAL_METRICS),
        Column(name="period", kind="str", required=True, description="day, week or month.", allowed=GOAL_PERIODS),
        Column(name="target", kind="float", required=True, description="The target per period.", non_negative=True),
        Column(name="start", kind="timestamp", required=True, description="First day the target applies (UTC)."),
        Column(name="scope", kind="str", required=False, description="'team' or a salesperson's id."),
    ),
    key=("metric", "period", "scope", "start"),
)

EXPENSES = TableContract(
    name="expenses",
    columns=(
        Column(name="at", kind="timestamp", required=True, description="When the money was spent (UTC)."),
        Column(name="amount", kind="float", required=True, description="How much was spent.", non_negative=True),
        Column(name="rep_id", kind="str", required=False, description="The salesperson it is attributed to."),
        Column(name="campaign", kind="str", required=False, description="The campaign it is attributed to."),
        Column(name="category", kind="str", required=False, description="ads, events, tools, travel, ..."),
    ),
)

CONTRACTS: dict[str, TableContract] = {c.name: c for c in (LEADS, EVENTS, GOALS, EXPENSES)}


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One thing wrong with an input table."""

    table: str
    column: str | None
    rows: tuple[int, ...]  # 1-based data rows (the header is not counted)
    message: str

    def __str__(self) -> str:
        where = self.table if self.column is None else f"{self.table}.{self.column}"
        if self.rows:
            shown = ", ".join(str(r) for r in self.rows[:MAX_ERRORS_SHOWN])
            more = f" and {len(self.rows) - MAX_ERRORS_SHOWN} more" if len(self.rows) > MAX_ERRORS_SHOWN else ""
            where += f" rows {shown}{more}"
        return f"{where}: {self.message}"

    def as_dict(self) -> dict:
        return {"table": self.table, "column": self.column, "rows": list(self.rows), "message": self.message}


class ContractError(ValueError):
    """An input table breaks its contract. ``problems`` lists every problem found."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = list(problems)
        lines = "\n".join(f"- {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in the input:\n{lines}")


def _rows(mask: np.ndarray | pd.Series) -> tuple[int, ...]:
    return tuple(int(i) + 1 for i in np.flatnonzero(np.asarray(mask)))


def parse_timestamps(values: pd.Series, *, timezone: str = "UTC", fmt: str | None = None) -> pd.Series:
    """Parse to timezone-aware UTC; naive values are read in ``timezone``. Unparseable values become NaT."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(values):
        return values.dt.tz_localize(timezone).dt.tz_convert("UTC")
    text = values.astype("string").str.strip()
    parsed = pd.to_datetime(text, errors="coerce", format=fmt, utc=False) if fmt else _parse_any_format(text)
    if getattr(parsed.dt, "tz", None) is None:
        # Values without an offset are local times in `timezone`; values with one were converted by pandas.
        parsed = parsed.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
    return parsed.dt.tz_convert("UTC")


def _parse_any_format(text: pd.Series) -> pd.Series:
    # Most exports write ISO 8601, which pandas parses in C in 60 % of the time "mixed" takes (a format
    # inferred value by value); a column with any other value is parsed as "mixed", as it always was.
    try:
        parsed = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=False)
        if parsed.isna().sum() == text.isna().sum():
            return parsed
    except (ValueError, TypeError):
        pass
    return pd.to_datetime(text, errors="coerce", format="mixed", utc=False)


def _parse_mixed_offsets(values: pd.Series, timezone: str, fmt: str | None) -> pd.Series:
    # pandas refuses a single tz-naive/aware mix; parse each value's offset with utc=True and localise the naive.
    text = values.astype("string").str.strip()
    has_offset = text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True, na=False)
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    if has_offset.any():
        out[has_offset] = pd.to_datetime(text[has_offset], errors="coerce", format=fmt or "mixed", utc=True)
    naive = ~has_offset & text.notna()
    if naive.any():
        local = pd.to_datetime(text[naive], errors="coerce", format=fmt or "mixed")
        out[naive] = local.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
    return out


def _to_utc(values: pd.Series, timezone: str, fmt: str | None) -> pd.Series:
    try:
        return parse_timestamps(values, timezone=timezone, fmt=fmt)
    except (ValueError, TypeError, AttributeError):
        return _parse_mixed_offsets(values, timezone, fmt)


def _blank(values: pd.Series) -> pd.Series:
    """Missing values, counting empty or whitespace-only strings as missing (CRM exports are full of them)."""
    if pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values):
        return values.isna() | values.astype("string").str.strip().eq("").fillna(True)
    return values.isna()


def validate(
    contract: TableContract,
    frame: pd.DataFrame,
    *,
    timezone: str = "UTC",
    timestamp_format: str | None = None,
) -> pd.DataFrame:
    """Check ``frame`` against ``contract`` and return a normalised copy.

    Normalised means: every contract column present (optional ones filled with missing values), strings as
    strings, numbers as floats, timestamps as ``datetime64[ns, UTC]``, rows that repeat another row exactly
    dropped, and the index reset.

    Raises
    ------
    ContractError
        Listing every problem found: missing required columns, missing or unparseable values, negative
        numbers, values outside the allowed set and duplicate keys with different content.

    Examples
    --------
    >>> import pandas as pd
    >>> leads = validate(LEADS, pd.DataFrame({"lead_id": ["a"], "created_at": ["2024-01-01"]}))
    >>> str(leads.loc[0, "created_at"])
    '2024-01-01 00:00:00+00:00'
    """
    problems: list[Problem] = []
    name = contract.name
    missing = [c for c in contract.required if c not in frame.columns]
    if missing:
        raise ContractError(
            Problem(
                table=name,
                column=c,
                rows=(),
                message=f"required column {c!r} is missing (columns present: {list(frame.columns)})",
            )
            for c in missing
        )

    out = frame.reset_index(drop=True).copy()
    for col in contract.columns:
        if col.name not in out.columns:
            out[col.name] = np.nan
            if col.kind == "timestamp":
                out[col.name] = pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns, UTC]")
            elif col.kind == "str":
                out[col.name] = pd.Series(np.nan, index=out.index, dtype="str")
            continue
        raw = out[col.name]
        blank = _blank(raw)
        if col.required and blank.any():
            problems.append(
                Problem(table=name, column=col.name, rows=_rows(blank), message="a required value is missing")
            )
        if col.kind == "timestamp":
            parsed = _to_utc(raw.where(~blank), timezone, timestamp_format)
            bad = parsed.isna() & ~blank
            if bad.any():
                examples = ", ".join(repr(str(v)) for v in raw[bad].head(3))
                problems.append(
                    Problem(
                        table=name, column=col.name, rows=_rows(bad), message=f"unparseable timestamp (e.g. {examples})"
                    )
                )
            out[col.name] = parsed.astype("datetime64[ns, UTC]")
        elif col.kind == "float":
            numbers = pd.to_numeric(raw.where(~blank), errors="coerce").astype("float64")
            bad = numbers.isna() & ~blank
            if bad.any():
                examples = ", ".join(repr(str(v)) for v in raw[bad].head(3))
                problems.append(
                    Problem(table=name, column=col.name, rows=_rows(bad), message=f"not a number (e.g. {examples})")
                )
            if col.non_negative and (numbers < 0).any():
                problems.append(
                    Problem(table=name, column=col.name, rows=_rows(numbers < 0), message="must not be negative")
                )
            out[col.name] = numbers
        else:
            text = raw.where(~blank).astype("str")
            if col.allowed is not None:
                bad = text.notna() & ~text.isin(col.allowed)
                if bad.any():
                    seen = sorted({str(v) for v in text[bad]})[:5]
                    problems.append(
                        Problem(
                            table=name,
                            column=col.name,
                            rows=_rows(bad),
                            message=f"unknown value(s) {seen}; allowed: {list(col.allowed)}",
                        )
                    )
            out[col.name] = text

    if contract.name == "goals":
        out["scope"] = out["scope"].fillna(TEAM_SCOPE)

    if contract.key and not problems:
        out, key_problems = _deduplicate(contract, out)
        problems.extend(key_problems)
    if problems:
        raise ContractError(problems)
    if not contract.keep_extra_columns:
        out = out[contract.names]
    return out.reset_index(drop=True)


def _deduplicate(contract: TableContract, frame: pd.DataFrame) -> tuple[pd.DataFrame, list[Problem]]:
    """Drop rows that repeat another exactly; report a key used twice with different content."""
    key = list(contract.key)
    # Exact repeats share their key: only rows whose key recurs are compared as whole rows (as text, which is
    # what costs: about 1.4 s per 100,000 events when every row was compared).
    recurring = frame.duplicated(subset=key, keep=False).to_numpy()
    if not recurring.any():
        return frame, []
    exact = np.zeros(len(frame), dtype=bool)
    exact[recurring] = frame[recurring].astype("string").duplicated(keep="first").to_numpy()
    exact = pd.Series(exact, index=frame.index)
    deduped = frame[~exact]
    clash = deduped.duplicated(subset=key, keep=False)
    if not clash.any():
        return deduped, []
    positions = np.flatnonzero(~exact.to_numpy())[clash.to_numpy()]
    # Only the first five keys are named: joining every clashing row's key (a per-row agg) took minutes on exports
    # that reuse one id for many events.
    values = deduped.loc[clash, key].drop_duplicates().head(5).astype("string").agg("/".join, axis=1)
    message = f"duplicate {'/'.join(key)} with different content: {values.tolist()}"
    return deduped, [
        Problem(table=contract.name, column="/".join(key), rows=tuple(int(p) + 1 for p in positions), message=message)
    ]


def check_events_reference_leads(events: pd.DataFrame, leads: pd.DataFrame) -> None:
    """Raise if an event names a lead that is not in ``leads``."""
    # Arrow's hash lookup on the text: pandas' isin takes ten times as long (a quarter second per million events).
    known = pc.is_in(_text(events["lead_id"]), value_set=_text(leads["lead_id"]))
    unknown = ~known.to_numpy(zero_copy_only=False)
    if unknown.any():
        ids = sorted(set(events.loc[unknown, "lead_id"]))[:5]
        raise ContractError(
            [
                Problem(
                    table="events", column="lead_id", rows=_rows(unknown), message=f"event for an unknown lead: {ids}"
                )
            ]
        )


def _text(values: pd.Series) -> pa.Array:
    return pa.array(values, type=pa.large_string(), from_pandas=True)


def empty(contract: TableContract) -> pd.DataFrame:
    """An empty, already normalised table of ``contract``."""
    return validate(contract, pd.DataFrame({c: [] for c in contract.required}))


@dataclass
class CrmData:
    """A validated CRM data set: the four canonical tables."""

    leads: pd.DataFrame
    events: pd.DataFrame
    goals: pd.DataFrame = field(default_factory=lambda: empty(GOALS))
    expenses: pd.DataFrame = field(default_factory=lambda: empty(EXPENSES))

    @classmethod
    def from_frames(
        cls,
        leads: pd.DataFrame,
        events: pd.DataFrame,
        goals: pd.DataFrame | None = None,
        expenses: pd.DataFrame | None = None,
        *,
        timezone: str = "UTC",
    ) -> CrmData:
        """Validate raw frames and build a data set; every table's problems are reported together."""
        problems: list[Problem] = []
        tables: dict[str, pd.DataFrame] = {}
        raw = {"leads": leads, "events": events, "goals": goals, "expenses": expenses}
        for name, frame in raw.items():
            if frame is None:
                tables[name] = empty(CONTRACTS[name])
                continue
            try:
                tables[name] = validate(CONTRACTS[name], frame, timezone=timezone)
            except ContractError as err:
                problems.extend(err.problems)
        if not problems:
            try:
                check_events_reference_leads(tables["events"], tables["leads"])
            except ContractError as err:
                problems.extend(err.problems)
        if problems:
            raise ContractError(problems)
        return cls(**tables)

    @property
    def end(self) -> pd.Timestamp:
        """The last moment the data set knows about: its latest event or lead creation."""
        candidates = [self.events["at"].max(), self.leads["created_at"].max()]
        return max(t for t in candidates if pd.notna(t))
