"""What the monitor reads from the store: the scores given (``score_history``) and the leads' closings.

Two narrow reads (SQLAlchemy Core, the same on SQLite and PostgreSQL): no lead attributes, no activity, so the
outcome report costs one pass over the score history and the closing events' index.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from leadscore.store.tables import events_table, score_history_table

HISTORY_COLUMNS = ("id", "lead_id", "scored_at", "cutoff", "probability", "grade", "model_version")


def load_history(engine: sa.Engine, *, since=None, model_version: str | None = None) -> pd.DataFrame:
    """The stored scores (:data:`HISTORY_COLUMNS`), optionally those with a cutoff from ``since`` on and of one
    ``model_version``."""
    t = score_history_table
    stmt = sa.select(*(t.c[c] for c in HISTORY_COLUMNS))
    if since is not None:
        stmt = stmt.where(t.c.cutoff >= pd.Timestamp(since).to_pydatetime())
    if model_version is not None:
        stmt = stmt.where(t.c.model_version == str(model_version))
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    frame = pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))
    for c in ("scored_at", "cutoff"):
        frame[c] = pd.to_datetime(frame[c], utc=True).astype("datetime64[ns, UTC]")
    frame["probability"] = frame["probability"].astype(float)
    frame["model_version"] = frame["model_version"].astype("object").where(frame["model_version"].notna(), "?")
    return frame


def load_closings(engine: sa.Engine) -> pd.DataFrame:
    """Every won and lost event: ``lead_id, at, type`` (read through the closing events' partial index)."""
    t = events_table
    stmt = sa.select(t.c.lead_id, t.c.at, t.c.type).where(sa.text("type IN ('won', 'lost')"))
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    frame = pd.DataFrame(rows, columns=["lead_id", "at", "type"])
    frame["at"] = pd.to_datetime(frame["at"], utc=True).astype("datetime64[ns, UTC]")
    return frame
