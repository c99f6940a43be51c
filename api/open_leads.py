"""The scored table of open leads, shared by the API's prioritised list and the web app's pages.

As of now it is the scores kept in the store (:mod:`leadscore.serving.keeper`), so the web app shows what the
API lists; as of a past time (or with ``LEADSCORE_STORED_SCORES=false``) it is built by
:func:`leadscore.serving.prioritize.score_open_leads` from the stored data. Either way it is kept in the app's
:class:`~leadscore.api.cache.ScoredTableCache`, so the list, a lead's page and the API answer with the same numbers
from one build.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
from fastapi import HTTPException, Request, status

from leadscore.api.champion import LoadedModel
from leadscore.grades import batch_percentiles
from leadscore.serving.prioritize import score_open_leads
from leadscore.settings import Settings
from leadscore.store import Repository
from leadscore.store.scores import ROW_COLUMNS


def require_crm_model(model: LoadedModel) -> None:
    """409 when the model scores flat tables: stored leads need a model trained on CRM histories."""
    if model.scorer.card.source != "crm":
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail=f"model version {model.version} scores flat tables, not stored leads"
        )


def open_leads_table(
    request: Request, repo: Repository, model: LoadedModel, settings: Settings, as_of: datetime | None = None
) -> tuple[pd.Timestamp, pd.DataFrame]:
    """``(cutoff, table)``: every lead open at ``as_of`` (default now) scored, from the cache when fresh."""
    require_crm_model(model)
    scorer = model.scorer

    def build() -> tuple[pd.Timestamp, pd.DataFrame]:
        if settings.stored_scores and as_of is None:
            return kept_table(repo)
        cutoff = pd.Timestamp(as_of or datetime.now(UTC))
        data = repo.load_crm(open_at=cutoff.to_pydatetime(), attributes=scorer.attributes)
        return cutoff, score_open_leads(scorer, data, cutoff, settings.follow_up_days)

    return request.app.state.scored_cache.get((model.version, as_of), build)


def kept_table(repo: Repository) -> tuple[pd.Timestamp, pd.DataFrame]:
    """The kept scores as the table :func:`~leadscore.serving.prioritize.score_open_leads` returns (percentile
    among them), and the oldest of their cutoffs."""
    columns = [c for c in ROW_COLUMNS if c != "reasons"] + ["reasons_up", "reasons_down"]
    table = pd.DataFrame(repo.kept_scores(), columns=columns)
    if table.empty:
        return pd.Timestamp(datetime.now(UTC)), table
    for name in ("cutoff", "relationship_start", "last_interaction", "next_scheduled", "computed_at"):
        table[name] = pd.to_datetime(table[name], utc=True)
    table["percentile"] = batch_percentiles(table["probability"].to_numpy(dtype=float))
    return table["cutoff"].min(), table
