"""``leadscore monitor``: the stored scores against what happened, and the drift of the latest weeks."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from leadscore.cli.app import app

console = Console()


def _pct(value) -> str:
    return "" if value is None or value != value else f"{value:.1%}"


def _num(value, digits: int = 3) -> str:
    return "" if value is None or value != value else f"{value:.{digits}f}"


@app.command("monitor")
def monitor(
    url: str | None = typer.Option(None, "--url", help="Database URL (default: LEADSCORE_DATABASE_URL)."),
    now: str | None = typer.Option(None, "--now", help="Judge as of this time (default: now)."),
    version: str | None = typer.Option(None, "--version", help="Only this model version's scores."),
    weeks: int = typer.Option(12, "--weeks", min=1, help="How many of the latest weeks to print."),
    drift_weeks: int = typer.Option(1, "--drift-weeks", min=0, help="Drift reports of the last N whole weeks."),
    as_json: bool = typer.Option(False, "--json", help="Print everything as one JSON object."),
    chart: Path | None = typer.Option(None, "--chart", help="Write the reliability chart (SVG) here."),
    log_mlflow: bool = typer.Option(True, "--log/--no-log", help="Log the weekly figures to each version's run."),
) -> None:
    """Outcomes against promises per model version and week (reliability by band and grade, AUC, log loss, ECE,
    scores still waiting), and drift of the champion's inputs and scores against its training data."""
    from datetime import UTC, datetime

    import pandas as pd

    from leadscore.data.records import to_json
    from leadscore.monitoring.reference import load_reference
    from leadscore.monitoring.report import monitor_store, reliability_svg
    from leadscore.monitoring.tracking import log_outcomes
    from leadscore.serving.scorer import Scorer
    from leadscore.settings import get_settings
    from leadscore.store import Repository, create_engine

    settings = get_settings()
    when = pd.Timestamp(now) if now else pd.Timestamp(datetime.now(UTC))
    when = when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")
    engine = create_engine(url or settings.resolved_database_url())
    uri = settings.mlflow_tracking_uri
    scorer = reference = data = None
    if drift_weeks:
        try:
            scorer = Scorer.from_registry("champion", tracking_uri=uri)
            reference = load_reference(scorer.model_version, uri)
            data = Repository(engine).load_crm(attributes=scorer.attributes)
        except LookupError as err:
            console.print(f"[yellow]No drift report:[/yellow] {err}", highlight=False)
    answer = monitor_store(
        engine,
        now=when,
        horizon_days=scorer.card.horizon_days if scorer is not None else settings.horizon_days,
        scorer=scorer,
        reference=reference,
        data=data,
        drift_weeks=drift_weeks,
        model_version=version,
    )
    logged = log_outcomes(answer.outcomes, uri) if log_mlflow else {}
    if chart is not None and len(answer.outcomes.overall_bands):
        reliability_svg(answer.outcomes.overall_bands, chart)
    if as_json:
        typer.echo(to_json({**answer.to_dict(), "mlflow_logged": logged}).decode())
        return
    _print(answer, weeks, logged, chart)


def _print(answer, weeks: int, logged: dict, chart) -> None:
    out = answer.outcomes
    console.print(f"Outcomes as of {out.now:%Y-%m-%d %H:%M} UTC, horizon {out.horizon_days:g} days. {out.rule}.")
    if out.weeks.empty:
        console.print("No stored scores yet.")
    else:
        table = Table(title="Per model version and week")
        for name in ("version", "week", "promises", "resolved", "waiting", "predicted", "realised", "AUC",
                     "log loss", "ECE"):  # fmt: skip
            table.add_column(name, justify="left" if name in ("version", "week") else "right")
        for r in out.weeks.groupby("model_version").tail(weeks).itertuples():
            table.add_row(str(r.model_version), f"{r.week:%Y-%m-%d}", str(r.promises), str(r.resolved),
                          str(r.waiting), _pct(r.mean_predicted), _pct(r.realised_rate), _num(r.roc_auc),
                          _num(r.log_loss), _num(r.ece))  # fmt: skip
        console.print(table)
        bands = Table(title="Reliability by score band (all weeks)")
        for name in ("version", "band", "resolved", "predicted", "realised", "95% interval"):
            bands.add_column(name, justify="left" if name in ("version", "band") else "right")
        for r in out.overall_bands.itertuples():
            interval = f"{_pct(r.lower)} - {_pct(r.upper)}" if r.resolved else ""
            bands.add_row(str(r.model_version), str(r.band), str(r.resolved), _pct(r.mean_predicted),
                          _pct(r.realised_rate), interval)  # fmt: skip
        console.print(bands)
    for report in answer.drift:
        verdict = "[red]ALERT[/red]" if report.alert else "[green]no alert[/green]"
        console.print(
            f"Drift, week to {report.cutoff:%Y-%m-%d}, version {report.model_version}: {verdict}; score PSI "
            f"{report.score_psi:.3f}; {report.leads} worked open leads; not worked for a horizon "
            f"{report.unworked_share:.0%} (training {report.unworked_share_reference:.0%})",
            highlight=False,
        )
        for reason in report.reasons:
            console.print(f"  - {reason}", highlight=False)
        moved = report.features[report.features["status"] != "stable"].sort_values("psi", ascending=False)
        for r in moved.head(10).itertuples():
            console.print(f"  {r.status:6} {r.feature}: PSI {r.psi:.2f}", highlight=False)
    if answer.drift_note:
        console.print(f"Drift: {answer.drift_note}", highlight=False)
    if logged:
        console.print(f"MLflow: {sum(logged.values())} new values logged ({', '.join(logged)})", highlight=False)
    if chart is not None:
        console.print(f"Reliability chart: {chart}", highlight=False)
