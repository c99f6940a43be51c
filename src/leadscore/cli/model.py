"""`leadscore train`, `score`, `promote` and `rollback`: the conversion model from the command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from leadscore.cli.app import app
from leadscore.cli.data import MapPairsOption, MappingFileOption, TimezoneOption, load_or_exit, mapping_from_options
from leadscore.cli.output import print_json, registered_line, result_table
from leadscore.cli.spark import EngineOption, SampleOption, SparkMasterOption, SparkRemoteOption, check_engine
from leadscore.cli.webhooks import announce_promotion

if TYPE_CHECKING:
    import pandas as pd

# Wide enough for the candidate table when the output is not a terminal (logs, CI).
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


@app.command()
def train(
    data_dir: Path | None = typer.Option(None, "--data", help="CRM data set folder (leads, events, ...)."),
    table: Path | None = typer.Option(None, "--table", help="A flat lead table (CSV or Parquet) instead."),
    target: str | None = typer.Option(None, "--target", help="The flat table's column saying if it converted."),
    positive: str | None = typer.Option(None, "--positive", help="The target value meaning converted."),
    time_column: str | None = typer.Option(None, "--time-column", help="The flat table's time column."),
    row_order_is_time: bool = typer.Option(
        False, "--row-order-is-time", help="The flat table's rows are in time order (oldest first)."
    ),
    drop: list[str] | None = typer.Option(None, "--drop", help="A column to leave out; repeatable."),
    horizon_days: int = typer.Option(90, "--horizon-days", help="CRM label: won within this many days."),
    max_attributes: int = typer.Option(30, "--max-attributes", help="CRM: most lead attributes the model uses."),
    min_attribute_coverage: float = typer.Option(
        0.05, "--min-attribute-coverage", help="CRM: share of training snapshots an attribute must be filled for."
    ),
    candidates: str = typer.Option(
        "logistic,gradient_boosting,naive_bayes,blend", "--candidates", help="Comma-separated candidates."
    ),
    calibration: str = typer.Option("sigmoid", "--calibration", help="sigmoid, isotonic or none."),
    validation_fraction: float = typer.Option(0.2, "--validation-fraction", help="Latest share for validation."),
    allow_leaky: bool = typer.Option(False, "--allow-leaky", help="Train even if columns look leaky."),
    register_model: bool = typer.Option(True, "--register/--no-register", help="Log to MLflow and register."),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help="MLflow store (default models/mlflow.db)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object with every metric."),
    mapping_file: Path | None = MappingFileOption,
    map_pairs: list[str] | None = MapPairsOption,
    timezone: str = TimezoneOption,
    engine: str = EngineOption,
    spark_remote: str | None = SparkRemoteOption,
    spark_master: str | None = SparkMasterOption,
    sample: float = SampleOption,
) -> None:
    """Train the conversion model: compare candidates on the latest period, choose, register, gate."""
    if check_engine(engine) == "spark":
        from leadscore.cli.spark import train_on_spark

        return train_on_spark(
            data_dir=data_dir,
            table=table,
            horizon_days=horizon_days,
            candidates=candidates,
            calibration=calibration,
            validation_fraction=validation_fraction,
            allow_leaky=allow_leaky,
            register_model=register_model,
            tracking_uri=tracking_uri,
            as_json=as_json,
            sample=sample,
            master=spark_master,
            remote=spark_remote,
            mapped=bool(mapping_file or map_pairs),
            drop=drop or (),
        )
    from leadscore.model.leakage import LeakageError
    from leadscore.model.training import train as run_training
    from leadscore.registry.workflow import crm_training_data, train_and_register

    if (data_dir is None) == (table is None):
        raise typer.BadParameter("give either --data DIR (a CRM data set) or --table FILE --target COLUMN")
    say = (lambda message: None) if as_json else (lambda message: err_console.print(f"[dim]{message}[/dim]"))
    extra_types: tuple[str, ...] = ()
    try:
        if table is not None:
            from leadscore.model.flat_table import load_flat_table

            if not target:
                raise typer.BadParameter("--table needs --target COLUMN")
            labelled = load_flat_table(
                table,
                target,
                time_column=time_column,
                row_order_is_time=row_order_is_time,
                drop=drop or (),
                positive=positive,
            )
        else:
            data = load_or_exit(data_dir, mapping_from_options(mapping_file, map_pairs, timezone))
            say(f"building snapshots and point-in-time features from {data_dir}")
            from leadscore.model.attribute_selection import AttributeSelection

            selection = AttributeSelection(max_attributes=max_attributes, min_coverage=min_attribute_coverage)
            labelled, extra_types = crm_training_data(
                data,
                horizon_days=horizon_days,
                drop=drop or (),
                attributes=selection,
                validation_fraction=validation_fraction,
            )
    except (ValueError, FileNotFoundError) as err:
        err_console.print(f"[red]Cannot use {table or data_dir}:[/red] {err}")
        raise typer.Exit(code=2) from err
    options = dict(
        candidates=[c.strip() for c in candidates.split(",") if c.strip()],
        calibration=calibration,
        validation_fraction=validation_fraction,
        allow_leaky=allow_leaky,
        progress=say,
    )
    outcome = None
    try:
        if register_model:
            result, outcome = train_and_register(
                labelled, extra_types=extra_types, tracking_uri=tracking_uri, **options
            )
        else:
            result = run_training(labelled, **options)
    except LeakageError as err:
        err_console.print(f"[red]Training refused.[/red] {err}")
        raise typer.Exit(code=3) from err
    except ValueError as err:
        err_console.print(f"[red]Cannot train:[/red] {err}")
        raise typer.Exit(code=2) from err
    summary = result.metrics()
    if outcome is not None and outcome.promoted:
        announce_promotion(str(outcome.version), None, source="gate", reason=outcome.reason)
    if outcome is not None:
        summary |= {
            "version": outcome.version,
            "run_id": outcome.run_id,
            "promoted": outcome.promoted,
            "gate": outcome.reason,
            "gate_comparison": outcome.comparison,
        }
    if as_json:
        print_json(summary)
        return
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    if result.cold_start:
        console.print("[yellow]Cold start: scores from this model are provisional.[/yellow]")
    else:
        console.print(result.split.describe())
        console.print(result_table(result))
        console.print(
            f"chosen: [bold]{result.chosen.label}[/bold] (lowest validation log loss), refitted on all "
            f"{len(result.data):,} examples in {result.seconds:.1f} s"
        )
        if result.later_period:
            later = result.later_period
            console.print(
                "later period, chosen against a plain logistic regression fitted on the earlier examples: "
                + ", ".join(
                    f"{name} {later[f'later_{key}']:.4f} against {later[f'later_{key}_logistic_baseline']:.4f}"
                    for key, name in (("ece", "ECE"), ("log_loss", "log loss"), ("calibration_slope", "slope"))
                )
            )
    if outcome is not None:
        console.print(registered_line(outcome))


def _since(value: str):
    """``--changed-since`` as an aware UTC time, or a usage error that says what was wrong."""
    import pandas as pd

    try:
        when = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError) as err:
        raise typer.BadParameter(
            f"{value!r} is not a time ({err}); give e.g. 2025-01-31T18:00:00Z", param_hint="--changed-since"
        ) from err
    if pd.isna(when):
        raise typer.BadParameter(
            f"{value!r} is not a time; give e.g. 2025-01-31T18:00:00Z", param_hint="--changed-since"
        )
    return (when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")).to_pydatetime()


def _write_changed_scores(since, out: Path, db: str | None) -> None:
    """The kept scores that changed after ``since``, written to ``out`` as a CRM imports them."""
    import pandas as pd

    from leadscore.settings import get_settings
    from leadscore.store import Repository, current_revision, head_revision
    from leadscore.store.scores import CHANGED_COLUMNS

    url = db or get_settings().resolved_database_url()
    if current_revision(url) != head_revision():
        err_console.print(f"[red]The store is not at the newest schema:[/red] run `leadscore db upgrade --url {url}`.")
        raise typer.Exit(code=2)
    repo = Repository.from_url(url)
    try:
        rows = repo.scores_changed_since(since)
    finally:
        repo.engine.dispose()
    columns = [c for c in CHANGED_COLUMNS if c != "reasons"] + ["reasons_up", "reasons_down"]
    scores = pd.DataFrame(rows, columns=columns)
    for name in ("cutoff", "changed_at"):
        scores[name] = pd.to_datetime(scores[name], utc=True)
    _write_scores(scores, out)
    console.print(f"{len(scores):,} kept scores changed since {since.isoformat()} -> {out}")


def _write_scores(scores: pd.DataFrame, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    flat = scores.assign(
        reasons_up=scores["reasons_up"].map("; ".join), reasons_down=scores["reasons_down"].map("; ".join)
    )
    if out.suffix == ".parquet":
        flat.to_parquet(out, index=False)
    elif out.suffix == ".json":
        scores.to_json(out, orient="records", date_format="iso", indent=1)
    else:
        flat.to_csv(out, index=False)


@app.command()
def score(
    out: Path = typer.Option(..., "--out", help="Where to write the scores (.csv, .parquet or .json)."),
    data_dir: Path | None = typer.Option(None, "--data", help="CRM data set folder: score its open leads."),
    table: Path | None = typer.Option(None, "--table", help="A flat lead table to score instead."),
    cutoff: str | None = typer.Option(None, "--cutoff", help="Score as of this time (default: end of the data)."),
    alias: str = typer.Option("champion", "--model", help="Alias or version number of the model."),
    percentile_of: str = typer.Option("batch", "--percentile-of", help="batch or reference."),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help="MLflow store (default models/mlflow.db)."),
    mapping_file: Path | None = MappingFileOption,
    map_pairs: list[str] | None = MapPairsOption,
    timezone: str = TimezoneOption,
    engine: str = EngineOption,
    spark_remote: str | None = SparkRemoteOption,
    spark_master: str | None = SparkMasterOption,
    changed_since: str | None = typer.Option(
        None,
        "--changed-since",
        help="Write back only the store's kept scores whose probability or grade changed after this time "
        "(ISO 8601; UTC unless it names a zone), for a CRM that imports files. Reads the store (--db).",
    ),
    db: str | None = typer.Option(
        None,
        "--db",
        "--url",
        help="Database URL for --changed-since (default: LEADSCORE_DATABASE_URL or the SQLite file).",
    ),
) -> None:
    """Score every open lead of a data set (or every row of a flat table) with the champion model; or, with
    --changed-since, write the kept scores that changed since then."""
    if changed_since is not None:
        if data_dir is not None or table is not None:
            raise typer.BadParameter("--changed-since reads the store's kept scores: give no --data or --table")
        return _write_changed_scores(_since(changed_since), out, db)
    if check_engine(engine) == "spark":
        from leadscore.cli.spark import score_on_spark

        return score_on_spark(
            data_dir=data_dir,
            table=table,
            out=out,
            cutoff=cutoff,
            alias=alias,
            percentile_of=percentile_of,
            tracking_uri=tracking_uri,
            master=spark_master,
            remote=spark_remote,
            mapped=bool(mapping_file or map_pairs),
        )
    from leadscore.serving.scorer import Scorer

    if (data_dir is None) == (table is None):
        raise typer.BadParameter("give either --data DIR or --table FILE")
    try:
        scorer = Scorer.from_registry(alias, tracking_uri)
    except LookupError as err:
        err_console.print(f"[red]No model to score with:[/red] {err}. Run `leadscore train` first.")
        raise typer.Exit(code=2) from err
    if table is not None:
        from leadscore.data.io import read_table

        scores = scorer.score_features(read_table(table), cutoff=cutoff, percentile_of=percentile_of)
    else:
        import pandas as pd

        data = load_or_exit(data_dir, mapping_from_options(mapping_file, map_pairs, timezone))
        when = pd.Timestamp(cutoff, tz="UTC") if cutoff else data.end
        scores = scorer.score(data.leads, data.events, when, percentile_of=percentile_of)
    _write_scores(scores, out)
    counts = scores["grade"].value_counts().reindex(["A", "B", "C", "D"], fill_value=0)
    note = " (provisional: cold-start model)" if scorer.provisional else ""
    console.print(
        f"scored {len(scores):,} leads with model version {scorer.model_version}{note}: "
        + ", ".join(f"{g} {n:,}" for g, n in counts.items())
        + f" -> {out}"
    )


@app.command()
def promote(
    version: str = typer.Argument(..., help="The model version to make champion."),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help="MLflow store (default models/mlflow.db)."),
) -> None:
    """Make a model version the champion by hand (bypassing the gate)."""
    from leadscore import registry

    try:
        previous = registry.promote(version, uri=tracking_uri)
    except Exception as err:
        err_console.print(f"[red]Cannot promote version {version}:[/red] {err}")
        raise typer.Exit(code=2) from err
    console.print(f"version {version} is now champion" + (f" (was version {previous})" if previous else ""))
    announce_promotion(registry.resolve_version("champion", tracking_uri), previous or None, source="cli")


@app.command()
def rollback(
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help="MLflow store (default models/mlflow.db)."),
) -> None:
    """Give the champion alias back to the previous champion."""
    from leadscore import registry

    try:
        demoted, restored = registry.rollback(uri=tracking_uri)
    except LookupError as err:
        err_console.print(f"[red]Cannot roll back:[/red] {err}")
        raise typer.Exit(code=2) from err
    console.print(f"champion is version {restored} again (version {demoted} stepped down)")
    announce_promotion(str(restored), str(demoted), source="rollback", reason="rolled back by hand")
