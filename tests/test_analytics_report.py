"""`leadscore report` on a small simulated CRM: the three views printed, the four charts written."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from leadscore.cli import app

simulator = pytest.importorskip("leadscore.simulation.simulator", reason="the simulator module is not available")


@pytest.fixture(scope="module")
def crm_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("crm")
    simulator.simulate(n_leads=400, n_reps=4, months=3, seed=3).write(folder)
    return folder


def test_report_prints_the_three_views_and_writes_the_charts(crm_dir, tmp_path):
    out = tmp_path / "charts"
    result = CliRunner().invoke(app, ["report", "--data", str(crm_dir), "--period", "week", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for title in ("Funnel", "Salespeople", "Team goals", "This month against last month"):
        assert title in result.output
    for name in ("funnel", "leaderboard", "burnup", "month_over_month"):
        png = out / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_report_rejects_an_unknown_period(crm_dir, tmp_path):
    result = CliRunner().invoke(app, ["report", "--data", str(crm_dir), "--period", "year", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown period 'year'" in result.output
