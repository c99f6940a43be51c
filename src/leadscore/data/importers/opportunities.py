"""Opportunity tables (one row per deal, as it stands now) turned into leads and an event log.

Many CRMs export a *snapshot*: one row per opportunity with its current stage, the date it started, the date it
closed and its value, but no history of what happened in between. The analytics need events, so a snapshot is
rewritten as the little history it does tell:

- a lead, created at the row's creation date, owned by its owner, with the chosen columns as attributes;
- a ``stage_changed`` event at the creation date, into the stage the lead entered then (``entry_stage``), or,
  for an open deal whose current stage maps to one of ours, into that stage (the snapshot has no date for any
  later move, so the move is placed at the only date known);
- for a closed deal, a ``won`` (with the deal value as ``amount``) or ``lost`` (with the lost reason, if a column
  holds one, as ``subtype``) event at the close date.

Which column is which, and which stage values mean won or lost, is a :class:`OpportunityMapping`, not code.
Rows that cannot be placed in time (no creation date, a closed deal without a close date, a close before the
creation) are not guessed: they are returned in ``skipped`` with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.data.contracts import STAGES, CrmData, parse_timestamps


@dataclass(frozen=True)
class OpportunityMapping:
    """Which columns of an opportunity table hold what, and what its stage values mean.

    Parameters
    ----------
    id, created_at, stage : str
        The columns holding the opportunity's id, the date it started and its current stage.
    won, lost : tuple of str
        The stage values that mean won and lost.
    closed_at, value, owner, source, lost_reason : str, optional
        The columns holding the close date, the deal value, the salesperson, the lead source, the lost reason.
    attributes : tuple of str
        Further columns copied onto the leads (product, account, manager, region, ...).
    open_stages : mapping
        Their open stage values mapped onto :data:`leadscore.data.contracts.STAGES`.
    entry_stage : str
        Our stage a deal is in from its creation date (for Maven, ``engage_date`` starts "Engaging").
    timezone : str
        The zone of dates written without an offset.

    Examples
    --------
    >>> m = OpportunityMapping.from_dict({"id": "deal", "created_at": "opened", "stage": "status",
    ...                                   "won": ["Closed Won"], "lost": ["Closed Lost"]})
    >>> m.won
    ('Closed Won',)
    """

    id: str
    created_at: str
    stage: str
    won: tuple[str, ...]
    lost: tuple[str, ...]
    closed_at: str | None = None
    value: str | None = None
    owner: str | None = None
    source: str | None = None
    lost_reason: str | None = None
    attributes: tuple[str, ...] = ()
    open_stages: Mapping[str, str] = field(default_factory=dict)
    entry_stage: str = "new"
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        for name in ("won", "lost", "attributes"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        ours = set(STAGES)
        bad = {k: v for k, v in self.open_stages.items() if v not in ours}
        if self.entry_stage not in ours:
            bad["entry_stage"] = self.entry_stage
        if bad:
            raise ValueError(f"stage(s) {bad} are not among ours: {list(STAGES)}")
        if set(self.won) & set(self.lost):
            raise ValueError(f"stage value(s) {sorted(set(self.won) & set(self.lost))} mean both won and lost")

    @classmethod
    def from_dict(cls, config: Mapping) -> OpportunityMapping:
        """Build from a plain mapping (e.g. read from YAML); unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = set(config) - known
        if unknown:
            raise ValueError(f"unknown key(s) {sorted(unknown)} in the opportunity mapping; known: {sorted(known)}")
        return cls(**dict(config))

    def columns(self) -> list[str]:
        """Every column of the opportunity table this mapping reads."""
        named = [self.id, self.created_at, self.stage, self.closed_at, self.value, self.owner, self.source]
        return [c for c in [*named, self.lost_reason, *self.attributes] if c is not None]


# The Maven Analytics "CRM Sales Opportunities" pipeline, with sales_teams.csv joined on (see load_maven).
MAVEN_MAPPING = OpportunityMapping(
    id="opportunity_id",
    created_at="engage_date",
    stage="deal_stage",
    won=("Won",),
    lost=("Lost",),
    closed_at="close_date",
    value="close_value",
    owner="sales_agent",
    attributes=("product", "account", "manager", "regional_office"),
    open_stages={"Prospecting": "new", "Engaging": "contacted"},
    entry_stage="contacted",
)


@dataclass
class ImportedOpportunities:
    """The converted data set and the rows that could not be converted, each with its reason."""

    data: CrmData
    skipped: pd.DataFrame


def opportunities_to_crm(table: pd.DataFrame, mapping: OpportunityMapping) -> ImportedOpportunities:
    """Convert an opportunity snapshot table into validated leads and events.

    Parameters
    ----------
    table : DataFrame
        One row per opportunity.
    mapping : OpportunityMapping
        Which column is which.

    Returns
    -------
    ImportedOpportunities
        ``data`` (a :class:`~leadscore.data.contracts.CrmData`) and ``skipped`` (the rows left out, with a
        ``skip_reason`` column).

    Examples
    --------
    >>> t = pd.DataFrame({"deal": ["d1", "d2"], "opened": ["2024-01-01", "2024-01-03"],
    ...                   "closed": ["2024-01-10", None], "status": ["Won", "Open"], "value": [500, None]})
    >>> m = OpportunityMapping(id="deal", created_at="opened", stage="status", won=("Won",), lost=("Lost",),
    ...                        closed_at="closed", value="value")
    >>> imported = opportunities_to_crm(t, m)
    >>> imported.data.events[["lead_id", "type", "amount"]].values.tolist()
    [['d1', 'stage_changed', nan], ['d1', 'won', 500.0], ['d2', 'stage_changed', nan]]
    """
    missing = [c for c in mapping.columns() if c not in table.columns]
    if missing:
        raise ValueError(f"column(s) {missing} named in the mapping are not in the table {list(table.columns)}")
    t = table.reset_index(drop=True)
    created = parse_timestamps(t[mapping.created_at], timezone=mapping.timezone)
    closed = (
        parse_timestamps(t[mapping.closed_at], timezone=mapping.timezone)
        if mapping.closed_at
        else pd.Series(pd.NaT, index=t.index, dtype="datetime64[ns, UTC]")
    )
    stage = t[mapping.stage].astype("str")
    is_won = stage.isin(mapping.won).to_numpy()
    is_lost = stage.isin(mapping.lost).to_numpy()
    is_closed = is_won | is_lost
    reasons = np.select(
        [
            created.isna().to_numpy(),
            is_closed & closed.isna().to_numpy(),
            is_closed & (closed < created).to_numpy(),
        ],
        [
            f"no {mapping.created_at}",
            f"closed without a {mapping.closed_at or 'close date'}",
            "closes before it starts",
        ],
        "",
    )
    skip = reasons != ""
    skipped = t[skip].assign(skip_reason=reasons[skip]).reset_index(drop=True)
    keep = ~skip
    t, created, closed, stage = t[keep], created[keep], closed[keep], stage[keep]
    is_won, is_lost, is_closed = is_won[keep], is_lost[keep], is_closed[keep]
    ids = t[mapping.id].astype("str").to_numpy()

    def column(name: str | None) -> np.ndarray:
        return t[name].to_numpy(dtype=object) if name else np.full(len(t), None, dtype=object)

    leads = pd.DataFrame({"lead_id": ids, "created_at": created.to_numpy(), "owner_id": column(mapping.owner)})
    leads["source"] = column(mapping.source)
    for name in mapping.attributes:
        leads[name] = column(name)

    mapped = stage.map(dict(mapping.open_stages)).to_numpy(dtype=object)
    entered = np.where(is_closed | pd.isna(mapped), mapping.entry_stage, mapped)
    stage_events = pd.DataFrame(
        {
            "event_id": [f"{i}:stage" for i in ids],
            "lead_id": ids,
            "at": created.to_numpy(),
            "type": "stage_changed",
            "stage": entered,
            "rep_id": column(mapping.owner),
        }  # fmt: skip
    )
    close_ids = ids[is_closed]
    closing = pd.DataFrame(
        {
            "event_id": [f"{i}:close" for i in close_ids],
            "lead_id": close_ids,
            "at": closed.to_numpy()[is_closed],
            "type": np.where(is_won[is_closed], "won", "lost"),
            "rep_id": column(mapping.owner)[is_closed],
            "amount": np.where(is_won, pd.to_numeric(pd.Series(column(mapping.value)), errors="coerce"), np.nan)[
                is_closed
            ],
            "subtype": np.where(is_lost, column(mapping.lost_reason), None)[is_closed],
        }
    )
    events = pd.concat([stage_events, closing], ignore_index=True)
    events = events.sort_values(["lead_id", "at"], kind="stable", ignore_index=True)
    return ImportedOpportunities(CrmData.from_frames(leads, events, timezone=mapping.timezone), skipped)


def load_maven(folder: str | Path) -> ImportedOpportunities:
    """Load the Maven "CRM Sales Opportunities" pipeline, with each agent's manager and regional office.

    ``sales_pipeline.csv`` is joined with ``sales_teams.csv`` on ``sales_agent``, then converted with
    :data:`MAVEN_MAPPING`. The 500 "Prospecting" deals have no date at all and come back in ``skipped``.

    Examples
    --------
    >>> imported = load_maven("../shared/data/maven_crm_sales_opportunities")  # doctest: +SKIP
    >>> len(imported.data.leads), len(imported.skipped)  # doctest: +SKIP
    (8300, 500)
    """
    folder = Path(folder)
    for name in ("sales_pipeline.csv", "sales_teams.csv"):
        if not (folder / name).exists():
            raise FileNotFoundError(f"{folder / name} does not exist")
    pipeline = pd.read_csv(folder / "sales_pipeline.csv", dtype={"close_value": "float64"})
    teams = pd.read_csv(folder / "sales_teams.csv")
    table = pipeline.merge(teams, on="sales_agent", how="left", validate="many_to_one")
    return opportunities_to_crm(table, MAVEN_MAPPING)
