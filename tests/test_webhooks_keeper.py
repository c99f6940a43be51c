"""The score keeper's writes produce the lead events: a new champion re-grades leads, and every lead whose kept
grade changed (and only those) gets a ``lead.grade_changed`` event stored with its new score.

On SQLite and PostgreSQL, with the real :class:`~leadscore.serving.keeper.ScoreKeeper` and two small models trained
for the module (versions 1 and 2), as in ``tests/test_store_scores.py``.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import sqlalchemy as sa

from leadscore.serving.keeper import ScoreKeeper
from leadscore.serving.scorer import Scorer
from leadscore.store.tables import lead_scores_table, webhook_outbox_table
from leadscore.webhooks import subscriptions
from leadscore.webhooks.targets import TargetPolicy

pytest_plugins = ["api_fixtures"]

T = pd.Timestamp("2024-08-01 09:30:00", tz="UTC")


def _scorer(version: str, horizon_days: int) -> Scorer:
    from leadscore.model.training import train, training_data_from_crm
    from leadscore.registry import model_card
    from leadscore.simulation.simulator import simulate

    data = simulate(n_leads=300, n_reps=3, months=10, seed=5).data
    result = train(
        training_data_from_crm(data, horizon_days=horizon_days), candidates=["logistic"], check_leakage=False
    )
    return Scorer(result.model, dataclasses.replace(model_card(result), version=version))


@pytest.fixture(scope="module")
def versions() -> tuple[Scorer, Scorer]:
    return _scorer("1", 60), _scorer("2", 20)


def kept(repo) -> dict[str, tuple[str, float, bool]]:
    t = lead_scores_table
    with repo.engine.connect() as conn:
        rows = conn.execute(sa.select(t.c.lead_id, t.c.grade, t.c.probability, t.c.needs_follow_up)).all()
    return {lead: (grade, p, bool(f)) for lead, grade, p, f in rows if p is not None}


def test_a_new_champion_s_regrading_enqueues_one_event_per_lead_whose_grade_changed(repo, versions):
    from leadscore.simulation.simulator import simulate

    v1, v2 = versions
    repo.import_crm(simulate(n_leads=120, n_reps=4, months=8, seed=11).data)
    subscriptions.create(
        repo.engine, "http://127.0.0.1:9/hook", ["lead.grade_changed"], policy=TargetPolicy(allow_private=True)
    )
    model = {"scorer": v1}
    keeper = ScoreKeeper(repo, lambda: model["scorer"], follow_up_days=14, clock=lambda: T)
    keeper.drain()
    before = kept(repo)
    assert before
    with repo.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(webhook_outbox_table)).scalar_one() == 0

    model["scorer"] = v2  # a new champion: every kept score is redone
    keeper.drain()
    after = kept(repo)
    changed = {lead for lead in after if lead in before and after[lead][0] != before[lead][0]}
    assert changed, "the two versions should grade some leads differently"
    o = webhook_outbox_table
    with repo.engine.connect() as conn:
        events = conn.execute(sa.select(o.c.kind, o.c.lead_id, o.c.payload)).all()
    assert {kind for kind, _, _ in events} == {"lead.grade_changed"}
    assert sorted(lead for _, lead, _ in events) == sorted(changed)
    for _, lead, payload in events:
        assert (payload["from_grade"], payload["to_grade"]) == (before[lead][0], after[lead][0])
        assert payload["probability"] == pytest.approx(after[lead][1])
        assert (payload["model_version"], payload["previous_model_version"]) == ("2", "1")


def test_promote_and_rollback_from_the_command_line_are_announced(
    repo, store_url, model_registry, tmp_path, monkeypatch
):
    import shutil

    from typer.testing import CliRunner

    from leadscore.cli import app
    from leadscore.settings import get_settings

    registry = tmp_path / "mlflow.db"  # a copy: the aliases change, the artifacts stay where they are
    shutil.copyfile(model_registry.removeprefix("sqlite:///"), registry)
    uri = f"sqlite:///{registry}"
    subscriptions.create(
        repo.engine, "http://127.0.0.1:9/hook", ["model.promoted"], policy=TargetPolicy(allow_private=True)
    )
    monkeypatch.setenv("LEADSCORE_DATABASE_URL", store_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        promoted = runner.invoke(app, ["promote", "2", "--tracking-uri", uri])
        assert promoted.exit_code == 0, promoted.output
        rolled = runner.invoke(app, ["rollback", "--tracking-uri", uri])
        assert rolled.exit_code == 0, rolled.output
    finally:
        get_settings.cache_clear()
    o = webhook_outbox_table
    with repo.engine.connect() as conn:
        payloads = [dict(p) for p in conn.execute(sa.select(o.c.payload).order_by(o.c.id)).scalars()]
    assert [(p["version"], p["previous_version"], p["source"]) for p in payloads] == [
        ("2", "1", "cli"),
        ("1", "2", "rollback"),
    ]
