"""The analysts' notebooks: committed clean, shaped as stories, and run top to bottom on a small demo.

The run executes every notebook in ``notebooks/`` in order, in a real Jupyter kernel (nbclient, kernel
``python3`` of this environment), with the working directory set to ``notebooks/`` as in JupyterLab, on a
small simulated demo (``LEADSCORE_NB_*`` variables) and a temporary MLflow store, so 03 scores with the
champion that 02 registered. Nothing is written to the repository's ``data/`` or ``models/``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from leadscore import notebooks as nb
from leadscore.data.contracts import CrmData
from leadscore.data.public import missing_message, shared_data_dir

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
EXPECTED = [
    "01-explore-pipeline.ipynb",
    "02-train-and-evaluate.ipynb",
    "03-score-and-prioritize.ipynb",
    "04-sales-performance-and-goals.ipynb",
    "05-real-data.ipynb",
    "06-monitoring-and-drift.ipynb",
]
# The small demo the suite runs the notebooks on: big enough for every candidate model to train.
SMALL_DEMO = {"LEADSCORE_NB_LEADS": "1500", "LEADSCORE_NB_REPS": "12", "LEADSCORE_NB_MONTHS": "9",
              "LEADSCORE_NB_SEED": "7", "LEADSCORE_NB_BANK_ROWS": "10000"}  # fmt: skip
CELL_TIMEOUT_S = 600


def _read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS / name, as_version=4)


def _code_cells(notebook: nbformat.NotebookNode) -> list:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


# -- how they are kept ---------------------------------------------------------------------------------------


def test_the_numbered_notebooks_are_there():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_is_committed_without_outputs(name):
    dirty = [i for i, cell in enumerate(_read(name).cells) if cell.cell_type == "code"
             and (cell.get("outputs") or cell.get("execution_count") is not None)]  # fmt: skip
    assert not dirty, f"{name}: cells {dirty} hold outputs or execution counts; clear them before committing"


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_is_valid_and_runs_on_the_project_kernel(name):
    notebook = _read(name)
    nbformat.validate(notebook)
    assert notebook.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_opens_with_its_question_and_ends_with_the_takeaway(name):
    cells = _read(name).cells
    assert cells[0].cell_type == "markdown" and "What this notebook answers" in cells[0].source
    assert cells[-1].cell_type == "markdown" and "What to take away" in cells[-1].source
    assert 10 <= len(cells) <= 25, f"{name} has {len(cells)} cells; keep a notebook focused (10 to 25)"


@pytest.mark.parametrize("name", EXPECTED)
def test_first_code_cell_holds_the_parameters_read_from_the_environment(name):
    first = _code_cells(_read(name))[0]
    assert "parameters" in first.metadata.get("tags", [])
    assert "os.environ.get(" in first.source


# -- the helpers they use ------------------------------------------------------------------------------------


def test_load_crm_generates_the_demo_when_the_folder_is_empty_then_reads_it(tmp_path):
    said = []
    first = nb.load_crm(tmp_path / "demo", n_leads=150, n_reps=3, months=3, seed=1, say=said.append)
    assert len(first.leads) == 150 and said and "generated" in said[0]
    again = nb.load_crm(tmp_path / "demo", n_leads=999, n_reps=3, months=3, seed=1, say=said.append)
    assert len(again.leads) == 150 and len(said) == 1  # read back, not generated again with the new size
    pd.testing.assert_frame_equal(first.events, again.events)


def test_load_crm_reads_a_foreign_export_through_a_mapping(tmp_path, raw_leads, raw_events):
    raw_leads.rename(columns={"lead_id": "case_id"}).to_csv(tmp_path / "leads.csv", index=False)
    foreign_events = raw_events.rename(columns={"lead_id": "case_id", "type": "activity"})
    foreign_events.to_csv(tmp_path / "events.csv", index=False)
    mapping = tmp_path / "mapping.yaml"
    leads = "leads: {columns: {lead_id: case_id}}"
    events = "events: {columns: {lead_id: case_id, type: activity}}"
    mapping.write_text(f"{leads}\n{events}\n")
    data = nb.load_crm(tmp_path, mapping=mapping, say=lambda message: None)
    assert data.leads["lead_id"].tolist() == ["L1", "L2", "L3"]
    assert "custom_thing" in set(data.events["type"])


def test_load_crm_does_not_invent_a_demo_for_a_mapped_export_that_is_missing(tmp_path):
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("events: {columns: {type: activity}}\n")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        nb.load_crm(tmp_path / "nowhere", mapping=mapping, say=lambda message: None)


def test_event_fields_show_which_types_fill_each_optional_column(raw_leads, raw_events):
    data = CrmData.from_frames(raw_leads, raw_events)
    fields = nb.event_fields(data)
    assert fields.loc["call", "duration_s"] == 1.0
    assert fields.loc["email_sent", "duration_s"] == 0.0
    assert fields.loc["meeting_scheduled", "scheduled_for"] == 1.0
    assert fields["events"].sum() == len(data.events)


def test_overview_and_missing_values_describe_every_table(raw_leads, raw_events):
    data = CrmData.from_frames(raw_leads, raw_events)
    overview = nb.table_overview(data).set_index("table")
    assert overview.loc["events", "rows"] == 4 and overview.loc["goals", "rows"] == 0
    assert overview.loc["leads", "to"] == data.leads["created_at"].max()
    missing = nb.missing_values(data).set_index("column")
    assert missing.loc["owner_id", "missing"] == 1 and "lead_id" not in missing.index


def test_thin_keeps_the_time_order_and_the_whole_span():
    frame = pd.DataFrame({"t": range(1000)})
    thinned = nb.thin(frame, 10)
    assert len(thinned) == 10 and thinned["t"].is_monotonic_increasing
    assert thinned["t"].iloc[0] == 0 and thinned["t"].iloc[-1] == 999
    assert nb.thin(frame, 0) is frame and nb.thin(frame, 5000) is frame


def test_tracking_store_makes_a_relative_sqlite_path_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    absolute = f"sqlite:///{tmp_path.resolve()}/models/mlflow.db"
    assert nb.tracking_store("sqlite:///models/mlflow.db") == absolute
    assert nb.tracking_store("http://mlflow:5000") == "http://mlflow:5000"


def test_chart_returns_the_png_a_leadscore_chart_writes():
    from leadscore.analytics import charts

    frame = pd.DataFrame({"stage": ["new", "won"], "leads_reached": [10, 4]})
    image = nb.chart(charts.plot_funnel, frame, title="Funnel")
    assert image.data[:8] == b"\x89PNG\r\n\x1a\n"


# -- they run ------------------------------------------------------------------------------------------------


def _execute(name: str, env: dict[str, str]) -> tuple[nbformat.NotebookNode, float]:
    from nbclient import NotebookClient

    notebook = _read(name)
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(NOTEBOOKS)}},  # the working directory, as in JupyterLab
    )
    started = time.perf_counter()
    client.execute(env=env)
    return notebook, time.perf_counter() - started


def _text(notebook: nbformat.NotebookNode) -> str:
    """Everything the notebook printed (streams and plain-text results)."""
    parts = []
    for cell in _code_cells(notebook):
        for output in cell.get("outputs", []):
            parts.append(output.get("text", "") + output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def _environment(tmp_path: Path) -> dict[str, str]:
    """The kernel's environment: a small demo, the public data, and stores in ``tmp_path`` only."""
    return {
        **os.environ,
        **SMALL_DEMO,
        "LEADSCORE_NB_DATA": str(tmp_path / "demo"),
        "LEADSCORE_SHARED_DATA": str(shared_data_dir()),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}",
        "LEADSCORE_MODELS_DIR": str(tmp_path / "models"),
    }


def _run_all(names: list[str], tmp_path: Path) -> dict[str, nbformat.NotebookNode]:
    """Execute ``names`` in order in one environment; check each drew pictures and was not rewritten."""
    env = _environment(tmp_path)
    executed, seconds = {}, {}
    for name in names:
        committed = (NOTEBOOKS / name).read_bytes()
        # A failing cell raises CellExecutionError, which shows the cell and its traceback.
        executed[name], seconds[name] = _execute(name, env)
        assert (NOTEBOOKS / name).read_bytes() == committed, f"running {name} rewrote it"
        outputs = [output for cell in _code_cells(executed[name]) for output in cell.outputs]
        images = sum("image/png" in output.get("data", {}) for output in outputs)
        assert images >= 2, f"{name} drew {images} pictures"
    print("notebook run times (s):", {name: round(s, 1) for name, s in seconds.items()})
    return executed


@pytest.mark.slow
def test_crm_notebooks_run_top_to_bottom_in_order_on_a_small_demo(tmp_path):
    executed = _run_all(EXPECTED[:4], tmp_path)
    assert "generated the simulated demo (1,500 leads" in _text(executed["01-explore-pipeline.ipynb"])
    trained = _text(executed["02-train-and-evaluate.ipynb"])
    assert "version 1 is the champion" in trained and "'contract_note'" in trained
    scored = _text(executed["03-score-and-prioritize.ipynb"])
    assert "model version 1:" in scored and "No champion" not in scored  # 02's champion, not one of its own


@pytest.mark.slow
def test_real_data_notebook_runs_and_its_guard_catches_duration(tmp_path):
    problem = missing_message("uci_bank_marketing")
    if problem:
        pytest.skip(f"05-real-data: {problem}")
    executed = _run_all(["05-real-data.ipynb"], tmp_path)
    real = _text(executed["05-real-data.ipynb"])
    assert "column(s) duration look like they give the outcome away" in real
    assert "chosen:" in real and "subscribed:" in real


@pytest.mark.slow
def test_monitoring_notebook_judges_promises_and_flags_the_new_event_type(tmp_path):
    executed = _run_all(["06-monitoring-and-drift.ipynb"], tmp_path)
    text = _text(executed["06-monitoring-and-drift.ipynb"])
    assert "one promise per lead, model version and week" in text
    assert "webinar" in text  # the injected event type, flagged in the drift timeline
