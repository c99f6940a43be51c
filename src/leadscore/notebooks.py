"""Helpers for the analysts' notebooks (``notebooks/``): their data, MLflow store and leadscore's charts.

The notebooks read their parameters from ``LEADSCORE_NB_*`` environment variables (``notebooks/README.md``),
so that the test suite runs them on a small demo and ``make notebooks`` on the full one. These functions turn
those parameters into a data set, a tracking store and pictures; everything else the notebooks show comes
from the library itself.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.data.contracts import CrmData
from leadscore.data.io import TABLES, ColumnMapping, find_table_file, load_dataset

#: Optional event columns, and the event types that are expected to fill them in.
EVENT_FIELDS: tuple[str, ...] = ("rep_id", "duration_s", "scheduled_for", "stage", "amount", "subtype")
_TIME_COLUMNS = {"leads": "created_at", "events": "at", "goals": "start", "expenses": "at"}
MAVEN_FILE = "sales_pipeline.csv"


def has_dataset(folder: str | Path) -> bool:
    """True when ``folder`` holds a leads and an events table (``.csv`` or ``.parquet``).

    Examples
    --------
    >>> has_dataset("/nonexistent")
    False
    """
    folder = Path(folder)
    return folder.is_dir() and all(find_table_file(folder, t) is not None for t in ("leads", "events"))


def load_crm(
    data_dir: str | Path,
    *,
    mapping: str | Path | None = None,
    n_leads: int = 20_000,
    n_reps: int = 12,
    months: int = 18,
    seed: int = 7,
    say: Callable[[str], None] = print,
) -> CrmData:
    """The notebooks' data set: a CRM folder, a mapped export, Maven's pipeline or the demo (made if missing).

    Parameters
    ----------
    data_dir : str or Path
        A folder with leads and events (and goals, expenses) files; a folder holding Maven's
        ``sales_pipeline.csv`` is imported with :func:`leadscore.data.importers.load_maven`. When the folder holds
        no data set and no mapping is given, the simulated demo is generated there first.
    mapping : str or Path, optional
        A YAML column mapping for a foreign export (see :class:`leadscore.data.io.ColumnMapping`); empty for none.
    n_leads, n_reps, months, seed
        The size of the demo, used only when it is generated.
    say : callable
        Where to report what was done (``print`` in a notebook).

    Raises
    ------
    FileNotFoundError
        When a mapping is given but ``data_dir`` is not a folder.

    Examples
    --------
    >>> data = load_crm("/tmp/leadscore-doc-demo", n_leads=200, n_reps=3, months=4, seed=1)  # doctest: +SKIP
    generated the simulated demo (200 leads, 3 salespeople, 4 months, seed 1) in /tmp/leadscore-doc-demo
    """
    folder = Path(data_dir)
    if mapping:
        say(f"loading {folder} with the column mapping {mapping}")
        return load_dataset(folder, ColumnMapping.from_file(mapping))
    if (folder / MAVEN_FILE).exists():
        from leadscore.data.importers import load_maven

        imported = load_maven(folder)
        say(f"imported Maven's opportunity pipeline from {folder}; {len(imported.skipped):,} rows skipped")
        return imported.data
    if not has_dataset(folder):
        from leadscore.simulation.simulator import simulate

        simulate(n_leads=n_leads, n_reps=n_reps, months=months, seed=seed).write(folder)
        size = f"{n_leads:,} leads, {n_reps} salespeople, {months} months, seed {seed}"
        say(f"generated the simulated demo ({size}) in {folder}")
    return load_dataset(folder)


def table_overview(data: CrmData) -> pd.DataFrame:
    """One row per table: rows, columns, and the first and last timestamp (``leadscore check``'s summary).

    Examples
    --------
    >>> leads = pd.DataFrame({"lead_id": ["a"], "created_at": ["2024-01-01"]})
    >>> events = pd.DataFrame({"event_id": ["1"], "lead_id": ["a"], "at": ["2024-01-02"], "type": ["call"]})
    >>> table_overview(CrmData.from_frames(leads, events))[["table", "rows"]].values.tolist()
    [['leads', 1], ['events', 1], ['goals', 0], ['expenses', 0]]
    """
    rows = []
    for name in TABLES:
        frame: pd.DataFrame = getattr(data, name)
        times = frame[_TIME_COLUMNS[name]]
        rows.append(
            {
                "table": name,
                "rows": len(frame),
                "columns": frame.shape[1],
                "from": times.min() if len(frame) else pd.NaT,
                "to": times.max() if len(frame) else pd.NaT,
            }
        )
    return pd.DataFrame(rows)


def missing_values(data: CrmData, tables: tuple[str, ...] = ("leads", "goals", "expenses")) -> pd.DataFrame:
    """Missing values per column of ``tables``: count and share, worst first (columns without any left out).

    Events are better read by type (a call has a duration, an email has none): see :func:`event_fields`.

    Examples
    --------
    >>> leads = pd.DataFrame({"lead_id": ["a", "b"], "created_at": ["2024-01-01"] * 2,
    ...                       "source": ["web", None]})
    >>> events = pd.DataFrame({"event_id": ["1"], "lead_id": ["a"], "at": ["2024-01-02"], "type": ["call"]})
    >>> missing_values(CrmData.from_frames(leads, events))[["table", "column", "missing"]].values.tolist()
    [['leads', 'owner_id', 2], ['leads', 'source', 1]]
    """
    rows = []
    for name in tables:
        frame: pd.DataFrame = getattr(data, name)
        if frame.empty:
            continue
        missing = frame.isna().sum()
        for column, count in missing[missing > 0].items():
            rows.append({"table": name, "column": column, "missing": int(count), "share": count / len(frame)})
    out = pd.DataFrame(rows, columns=["table", "column", "missing", "share"])
    return out.sort_values(["share", "table", "column"], ascending=[False, True, True], ignore_index=True)


def event_fields(data: CrmData) -> pd.DataFrame:
    """For each event type, the share of its events that fill in each optional column, and how many there are.

    A call without a duration, a won deal without an amount or a lost one without a reason shows here as a
    share below 1 where the others are full.

    Examples
    --------
    >>> leads = pd.DataFrame({"lead_id": ["a"], "created_at": ["2024-01-01"]})
    >>> events = pd.DataFrame({"event_id": ["1", "2"], "lead_id": ["a", "a"], "at": ["2024-01-02"] * 2,
    ...                        "type": ["call", "call"], "duration_s": [60, None]})
    >>> event_fields(CrmData.from_frames(leads, events)).loc["call", ["events", "duration_s"]].tolist()
    [2.0, 0.5]
    """
    events = data.events
    filled = events[list(EVENT_FIELDS)].notna().groupby(events["type"].to_numpy()).mean()
    filled.insert(0, "events", events["type"].value_counts().reindex(filled.index).astype(float))
    filled.index.name = "type"
    return filled.sort_values("events", ascending=False)


def chart(plot: Callable[..., Path], subject, **options):
    """Draw one of leadscore's PNG charts and return it as an image for the notebook to show.

    leadscore's charts (:mod:`leadscore.analytics.charts`, :mod:`leadscore.model.plots`) write files, for reports
    and MLflow; ``plot(subject, path, **options)`` is called with a temporary path and the picture returned.

    Examples
    --------
    >>> from leadscore.analytics import charts
    >>> f = pd.DataFrame({"stage": ["new", "won"], "leads_reached": [10, 4]})
    >>> chart(charts.plot_funnel, f, title="Funnel")  # doctest: +SKIP
    <IPython.core.display.Image object>
    """
    from IPython.display import Image

    with tempfile.TemporaryDirectory() as tmp:
        path = plot(subject, Path(tmp) / "chart.png", **options)
        return Image(data=Path(path).read_bytes(), format="png")


def tracking_store(uri: str) -> str:
    """A tracking URI with a relative SQLite path made absolute (so ``mlflow ui`` works from anywhere).

    Examples
    --------
    >>> tracking_store("http://localhost:5000")
    'http://localhost:5000'
    >>> tracking_store("sqlite:////tmp/m/mlflow.db")
    'sqlite:////tmp/m/mlflow.db'
    """
    prefix = "sqlite:///"
    if not uri.startswith(prefix) or uri.startswith(prefix + "/"):
        return uri
    return prefix + str(Path(uri[len(prefix) :]).resolve())


def thin(frame: pd.DataFrame, n_rows: int) -> pd.DataFrame:
    """``n_rows`` evenly spaced rows of ``frame``, in order (all of it when ``n_rows`` is 0 or too large).

    Keeps the whole time span of a table in time order, for a quicker run on fewer rows.

    Examples
    --------
    >>> thin(pd.DataFrame({"x": range(10)}), 3)["x"].tolist()
    [0, 4, 9]
    """
    if n_rows <= 0 or n_rows >= len(frame):
        return frame
    rows = np.unique(np.linspace(0, len(frame) - 1, n_rows).round().astype(int))
    return frame.iloc[rows].reset_index(drop=True)


def weekly_scores(scorer, data: CrmData, cutoffs) -> pd.DataFrame:
    """The scores a service would have stored: every lead open at each cutoff, scored as of it, as
    ``score_history`` rows (``id, lead_id, scored_at, cutoff, probability, grade, model_version``), for
    :func:`leadscore.monitoring.outcomes.outcome_report` without a store.

    Examples
    --------
    >>> mondays = pd.date_range("2025-01-06", periods=4, freq="W-MON", tz="UTC")
    >>> history = weekly_scores(scorer, data, mondays)  # doctest: +SKIP
    """
    parts = [scorer.score(data.leads, data.events, cutoff) for cutoff in cutoffs]
    history = pd.concat(parts, ignore_index=True)[["lead_id", "cutoff", "probability", "grade", "model_version"]]
    history["cutoff"] = pd.to_datetime(history["cutoff"], utc=True)
    return history.assign(id=np.arange(len(history)), scored_at=history["cutoff"])


def drift_timeline(reports) -> pd.DataFrame:
    """One row per weekly drift report (:func:`leadscore.monitoring.drift.weekly_drift`): the week, whether it
    alerts, the score's PSI, how many inputs are at watch and alert, the worked leads and the reasons."""
    return pd.DataFrame(
        {
            "week_end": [r.cutoff for r in reports],
            "alert": [r.alert for r in reports],
            "score_psi": [r.score_psi for r in reports],
            "inputs_watch": [int((r.features["status"] == "watch").sum()) for r in reports],
            "inputs_alert": [int((r.features["status"] == "alert").sum()) for r in reports],
            "worked_leads": [r.leads for r in reports],
            "reasons": ["; ".join(r.reasons) for r in reports],
        }
    )
