"""`leadscore retrain`: a challenger trained on the latest data, judged by the gate and the retraining rules."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console

from leadscore.cli.app import app

console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


@app.command()
def retrain(
    data_dir: Path | None = typer.Option(
        None, "--data", help="A CRM data set folder to train on (default: the store, under its lease)."
    ),
    url: str | None = typer.Option(
        None, "--url", help="The store (default: LEADSCORE_DATABASE_URL or the SQLite file)."
    ),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help="MLflow store (default models/mlflow.db)."),
    if_due: bool = typer.Option(
        False,
        "--if-due",
        help="Only when due: this schedule slot not done yet by any service on the store, or a drift alert "
        "(for cron or a systemd timer). Without it, retrain now.",
    ),
    every_days: float | None = typer.Option(
        None, "--every-days", help="The schedule's period for --if-due (default LEADSCORE_RETRAIN_EVERY_DAYS, else 15)."
    ),
    max_champion_age_days: float | None = typer.Option(
        None,
        "--max-champion-age-days",
        help="Promote a challenger that clears the quality bar when the champion's data is older than this; 0 "
        "never (default LEADSCORE_RETRAIN_MAX_CHAMPION_AGE_DAYS, 90).",
    ),
    min_auc_ratio: float | None = typer.Option(
        None,
        "--min-auc-ratio",
        help="The quality bar: challenger's ROC AUC at least this share of the champion's (default 0.98).",
    ),
    on_drift: bool | None = typer.Option(
        None,
        "--drift/--no-drift",
        help="Ask the drift report on the champion (leadscore.monitoring.drift): with --if-due an alert retrains "
        "within a done slot; its alert and reasons are recorded with the decision (LEADSCORE_RETRAIN_ON_DRIFT).",
    ),
    promote_on_drift: bool | None = typer.Option(
        None, "--promote-on-drift/--no-promote-on-drift", help="Under a drift alert, promote over the quality bar."
    ),
    horizon_days: int | None = typer.Option(None, "--horizon-days", help="Label: won within this many days."),
    candidates: str = typer.Option(
        "logistic", "--candidates", help="Comma-separated candidates (default the logistic regression alone)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object: the decision and its evidence."),
) -> None:
    """Retrain on the latest data and let the gate and the retraining rules decide on the champion.

    Every decision is recorded on the version with its rule and figures; `leadscore rollback` undoes a promotion.
    """
    from leadscore.retraining.drift_trigger import champion_drift
    from leadscore.retraining.job import DEFAULT_EVERY_DAYS, RetrainOutcome, run_due
    from leadscore.retraining.job import retrain as run_retrain
    from leadscore.retraining.rules import RetrainPolicy
    from leadscore.settings import get_settings

    settings = get_settings()
    age = settings.retrain_max_champion_age_days if max_champion_age_days is None else max_champion_age_days
    try:
        policy = RetrainPolicy(
            max_champion_age_days=age or None,
            min_auc_ratio=settings.retrain_min_auc_ratio if min_auc_ratio is None else min_auc_ratio,
            promote_on_drift=settings.retrain_promote_on_drift if promote_on_drift is None else promote_on_drift,
        )
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    uri = tracking_uri or settings.mlflow_tracking_uri
    drift_check = champion_drift(uri) if (settings.retrain_on_drift if on_drift is None else on_drift) else None
    options = dict(
        policy=policy,
        tracking_uri=uri,
        horizon_days=horizon_days or settings.horizon_days,
        candidates=tuple(c.strip() for c in candidates.split(",") if c.strip()),
        progress=None if as_json else (lambda message: err_console.print(f"[dim]{message}[/dim]")),
    )
    try:
        if data_dir is not None:
            from leadscore.cli.data import load_or_exit

            if if_due:
                raise typer.BadParameter("--if-due needs the store (its lease keeps the schedule); drop --data")
            data = load_or_exit(data_dir, None)
            drift = None if drift_check is None else drift_check(data, data.end)
            registered = run_retrain(data, drift=drift, trigger="manual", **options)
            outcome = RetrainOutcome(
                True,
                "manual",
                "",
                version=registered.version,
                promoted=registered.promoted,
                rule=registered.rule,
                reason=registered.reason,
                evidence=registered.evidence,
            )
        else:
            from leadscore.store import Repository, create_engine, upgrade_database

            target = url or settings.resolved_database_url()
            upgrade_database(target)
            engine = create_engine(target)
            if drift_check is not None:  # the store's retraining also tells webhook subscribers of a drift alert
                drift_check = champion_drift(uri, engine=engine)
            try:
                outcome = run_due(
                    engine,
                    Repository(engine).load_crm,
                    every_days=every_days or settings.retrain_every_days or DEFAULT_EVERY_DAYS,
                    drift_check=drift_check,
                    drift_cooldown_days=settings.retrain_drift_cooldown_days,
                    force=not if_due,
                    **options,
                )
            finally:
                engine.dispose()
    except (ValueError, FileNotFoundError) as err:
        err_console.print(f"[red]Cannot retrain:[/red] {err}")
        raise typer.Exit(code=2) from err
    if as_json:
        from leadscore.cli.output import print_json

        print_json(outcome.as_dict())
        return
    if not outcome.ran:
        console.print(f"no retraining: {outcome.skipped} ({outcome.slot})")
        return
    verdict = "promoted to champion" if outcome.promoted else "kept as challenger"
    console.print(f"version {outcome.version} {verdict} by rule [bold]{outcome.rule}[/bold]: {outcome.reason}")
    if outcome.promoted:
        console.print("to undo: leadscore rollback")
