"""Today's leads and a lead's page: the prioritised list and what is behind one lead's score.

The list reads the same scored table as ``GET /api/v1/leads/prioritized``
(:func:`leadscore.api.open_leads.open_leads_table`, cached), and a lead's page the same row as
``GET /api/v1/leads/{id}/score`` (the lead's kept score), so the numbers on screen are the API's.
Its reasons are said in the reader's language; its trend is :func:`leadscore.serving.trend.score_trend`, ending at
the row's cutoff.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from leadscore.api.champion import LoadedModel
from leadscore.api.deps import ModelDep, RepoDep, SettingsDep
from leadscore.api.open_leads import open_leads_table, require_crm_model
from leadscore.api.web import i18n
from leadscore.api.web.charts import Line, line_chart
from leadscore.api.web.render import PREFIX, Lang, Viewer, page
from leadscore.data.records import records
from leadscore.serving.prioritize import rank
from leadscore.serving.trend import score_trend
from leadscore.settings import Settings
from leadscore.store import Repository

router = APIRouter(prefix=PREFIX, include_in_schema=False)

PAGE_SIZE = 25
TIMELINE_ROWS = 200
TIMELINE_COLUMNS = ["at", "type", "duration_s", "scheduled_for", "stage", "amount", "subtype"]


class LeadsFilter(BaseModel):
    """The list's filters as a form sends them ("" is "any")."""

    model_config = ConfigDict(extra="ignore")
    owner: str | None = Field(None, max_length=200)
    stage: str | None = Field(None, max_length=200)
    grade: str | None = Field(None, max_length=10)
    source: str | None = Field(None, max_length=200)
    order_by: Literal["probability", "expected_value"] = "probability"
    follow_up: bool = False
    page: int = Field(1, ge=1, le=100_000)

    @field_validator("owner", "stage", "grade", "source", mode="before")
    @classmethod
    def _empty_is_any(cls, value: object) -> object:
        return None if value == "" else value

    def query(self, **changes: object) -> str:
        """This filter as a query string, with ``changes``."""
        values = {**self.model_dump(), **changes}
        kept = {k: v for k, v in values.items() if v not in (None, False, "") and not (k == "page" and v == 1)}
        return "&".join(f"{k}={'1' if v is True else v}" for k, v in kept.items())


def _choices(table: pd.DataFrame, column: str) -> list[str]:
    return sorted(str(v) for v in table[column].dropna().unique()) if column in table else []


@router.get("/leads", response_class=HTMLResponse)
def todays_leads(
    request: Request,
    viewer: Viewer,
    lang: Lang,
    repo: RepoDep,
    model: ModelDep,
    settings: SettingsDep,
    chosen: Annotated[LeadsFilter, Query()],
) -> HTMLResponse:
    """The prioritised list of open leads, filtered, sorted and paged."""
    cutoff, table = open_leads_table(request, repo, model, settings)
    ranked = rank(
        table,
        by=chosen.order_by,
        owner=chosen.owner,
        stage=chosen.stage,
        grade=chosen.grade,
        source=chosen.source,
        needs_follow_up=True if chosen.follow_up else None,
    )
    pages = max(1, math.ceil(len(ranked) / PAGE_SIZE))
    current = min(chosen.page, pages)
    start = (current - 1) * PAGE_SIZE
    rows = records(ranked.iloc[start : start + PAGE_SIZE])
    for i, row in enumerate(rows):
        row["rank"] = start + i + 1
    return page(
        request,
        "leads.html",
        lang,
        viewer=viewer,
        cutoff=cutoff,
        rows=rows,
        total=len(ranked),
        open_total=len(table),
        current=current,
        pages=pages,
        chosen=chosen,
        owners=_choices(table, "owner_id"),
        stages=_choices(table, "stage"),
        grades=_choices(table, "grade"),
        sources=_choices(table, "source"),
        model_version=model.version,
    )


def lead_score(
    request: Request, repo: Repository, model: LoadedModel, settings: Settings, lead_id: str
) -> dict[str, Any] | None:
    """The lead's score as ``GET /api/v1/leads/{id}/score`` answers it: its kept row (None when it has none: closed,
    or not scored yet), or with ``LEADSCORE_STORED_SCORES=false`` its row of the table scored as of now."""
    if settings.stored_scores:
        row = repo.latest_score(lead_id)
        return row if row is not None and row["probability"] is not None else None
    _, table = open_leads_table(request, repo, model, settings)
    mine = table[table["lead_id"] == lead_id]
    return records(mine)[0] if len(mine) else None


@router.get("/leads/{lead_id}", response_class=HTMLResponse)
def lead_page(
    request: Request,
    viewer: Viewer,
    lang: Lang,
    repo: RepoDep,
    model: ModelDep,
    settings: SettingsDep,
    lead_id: Annotated[str, Path(min_length=1, max_length=200)],
) -> HTMLResponse:
    """One lead: its score and grade with the trend, the reasons up and down, and its interactions.

    The score is the lead's own row (:func:`lead_score`), so probability, grade and reasons are the API's; the
    trend ends at that row's cutoff. In English the reasons are the row's words; in another language they are the
    same contributions said in it (the trend's last point is the lead as of the row's cutoff).
    """
    require_crm_model(model)
    leads = repo.load_leads([lead_id], attributes=model.scorer.attributes)
    if leads.empty:
        raise HTTPException(404, detail="No lead with that id.")
    events = repo.load_events([lead_id])
    row = lead_score(request, repo, model, settings, lead_id)
    reasons_up: list[str] = []
    reasons_down: list[str] = []
    trend_svg = None
    if row is not None:
        cutoff = pd.Timestamp(row["cutoff"])
        said = lang != "en"  # English reasons are the row's own; others are said again from the contributions
        trend = score_trend(model.scorer, leads, events, cutoff, reasons=said, lang=lang)
        reasons_up, reasons_down = row["reasons_up"], row["reasons_down"]
        if said and len(trend) and trend["cutoff"].iloc[-1] == cutoff:
            reasons_up, reasons_down = trend["reasons_up"].iloc[-1], trend["reasons_down"].iloc[-1]
        trend_svg = line_chart(
            [Line(i18n.translate("Probability", lang), trend["probability"].tolist())],
            [i18n.fmt_day(t.date(), lang) for t in trend["cutoff"]],
            title=i18n.translate("Score over the last weeks", lang),
            y_format=lambda v: i18n.fmt_percent(v, lang, 0),
        )
    timeline = events.sort_values("at", ascending=False, kind="stable").head(TIMELINE_ROWS)
    timeline = timeline.reindex(columns=TIMELINE_COLUMNS)  # a store without a column still draws the table
    lead = records(leads)[0]
    return page(
        request,
        "lead.html",
        lang,
        viewer=viewer,
        lead=lead,
        row=row,
        reasons_up=reasons_up,
        reasons_down=reasons_down,
        trend_svg=trend_svg,
        timeline=records(timeline),
        n_events=len(events),
    )
