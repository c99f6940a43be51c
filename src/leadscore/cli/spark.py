"""`leadscore score --engine spark` and `leadscore train --engine spark`: the Spark side of those commands.

The commands themselves live in :mod:`leadscore.cli.model`; with ``--engine spark`` they hand over to
:func:`score_on_spark` and :func:`train_on_spark` here. This module imports nothing from pyspark until it runs,
so the CLI works without the ``spark`` extra, and says what to install when Spark is asked for without it.

Where Spark runs: ``--spark-remote sc://host:15002`` (or ``SPARK_REMOTE``) for a Spark Connect server; under
``spark-submit`` the session it made; otherwise a local session (``--spark-master``, default ``local[*]``).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import typer
from rich.console import Console

from leadscore.cli.output import print_json, registered_line

ENGINES = ("pandas", "spark")

EngineOption = typer.Option(
    "pandas", "--engine", help="pandas (one machine) or spark (features and scores on a Spark cluster)."
)
SparkRemoteOption = typer.Option(
    None, "--spark-remote", help="Spark Connect URL, e.g. sc://spark-host:15002 (default: $SPARK_REMOTE)."
)
SparkMasterOption = typer.Option(
    None, "--spark-master", help="Spark master for a new session, e.g. local[4] (default: local[*])."
)
SampleOption = typer.Option(
    1.0, "--sample", help="With --engine spark: share of the leads whose snapshots are trained on (by lead)."
)

console = Console()
err_console = Console(stderr=True)


def check_engine(engine: str) -> str:
    """The engine name, or a usage error naming the choices."""
    if engine not in ENGINES:
        raise typer.BadParameter(f"engine {engine!r} is not one of {list(ENGINES)}", param_hint="--engine")
    return engine


def location(path: Path | str) -> str:
    """A path or URL as Spark should see it: ``s3a://bucket/x`` survives being a ``Path`` (``s3a:/bucket/x``).

    Examples
    --------
    >>> location(Path("s3a://bucket/crm")), location(Path("data/demo"))
    ('s3a://bucket/crm', 'data/demo')
    """
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]+):/(?!/)", r"\1://", str(path))


def _session(master: str | None, remote: str | None):
    # pyspark 4 warns on every import that it "does not yet fully support pandas >= 3"; the Spark tests check
    # the results against pandas, so the command line spares users the warning.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    try:
        from leadscore.spark import get_spark
    except ImportError as err:
        err_console.print(f"[red]--engine spark needs pyspark:[/red] {err}")
        raise typer.Exit(code=2) from err
    return get_spark(master, remote=remote)


def _refuse_mappings(mapped: bool) -> None:
    if mapped:
        raise typer.BadParameter(
            "column mappings are not applied on Spark: map the export to the contract columns first "
            "(e.g. with `leadscore check` on a sample and a Spark select)",
            param_hint="--mapping/--map",
        )


def score_on_spark(
    *,
    data_dir: Path | None,
    out: Path,
    cutoff: str | None,
    alias: str,
    percentile_of: str,
    tracking_uri: str | None,
    master: str | None = None,
    remote: str | None = None,
    mapped: bool = False,
    table: Path | None = None,
) -> None:
    """Score every open lead of a data set on Spark and write Parquet to ``out``."""
    if data_dir is None or table is not None:
        raise typer.BadParameter("--engine spark scores a CRM data set: give --data DIR", param_hint="--data")
    _refuse_mappings(mapped)
    target = location(out)
    if Path(target).suffix not in ("", ".parquet") and not target.startswith("table:"):
        raise typer.BadParameter(
            f"--engine spark writes Parquet (a folder of part files) or a table (table:<name>), not {target!r}",
            param_hint="--out",
        )
    spark = _session(master, remote)
    from pyspark.sql import functions as F

    from leadscore.spark import read_crm
    from leadscore.spark.scoring import score_spark, write_scores

    try:
        crm = read_crm(spark, location(data_dir))
        scores = score_spark(crm, cutoff, alias=alias, tracking_uri=tracking_uri, percentile_of=percentile_of)
    except LookupError as err:
        err_console.print(f"[red]No model to score with:[/red] {err}. Run `leadscore train` first.")
        raise typer.Exit(code=2) from err
    except (FileNotFoundError, ValueError) as err:
        err_console.print(f"[red]Cannot score {data_dir} on Spark:[/red] {err}")
        raise typer.Exit(code=2) from err
    write_scores(scores, target)
    written = spark.table(target[len("table:") :]) if target.startswith("table:") else spark.read.parquet(target)
    counts = {row["grade"]: row["count"] for row in written.groupBy("grade").count().collect()}
    version = written.select(F.first("model_version")).first()[0] if counts else "-"
    console.print(
        f"scored {sum(counts.values()):,} leads on Spark with model version {version}: "
        + ", ".join(f"{g} {counts.get(g, 0):,}" for g in ("A", "B", "C", "D"))
        + f" -> {out}"
    )


def train_on_spark(
    *,
    data_dir: Path | None,
    horizon_days: int,
    candidates: str,
    calibration: str,
    validation_fraction: float,
    allow_leaky: bool,
    register_model: bool,
    tracking_uri: str | None,
    as_json: bool,
    sample: float = 1.0,
    master: str | None = None,
    remote: str | None = None,
    mapped: bool = False,
    table: Path | None = None,
    drop: Sequence[str] = (),
) -> None:
    """Build the training set on Spark, train on the driver, track and register as ``leadscore train`` does."""
    if data_dir is None or table is not None:
        raise typer.BadParameter("--engine spark trains on a CRM data set: give --data DIR", param_hint="--data")
    _refuse_mappings(mapped)
    from leadscore.model.leakage import LeakageError

    spark = _session(master, remote)
    from leadscore.spark import read_crm
    from leadscore.spark.training import train_spark

    say = (lambda message: None) if as_json else (lambda message: err_console.print(f"[dim]{message}[/dim]"))
    try:
        outcome = train_spark(
            read_crm(spark, location(data_dir)),
            horizon_days=horizon_days,
            sample_fraction=sample,
            drop=drop,
            register=register_model,
            tracking_uri=tracking_uri,
            progress=say,
            candidates=[c.strip() for c in candidates.split(",") if c.strip()],
            calibration=calibration,
            validation_fraction=validation_fraction,
            allow_leaky=allow_leaky,
        )
    except LeakageError as err:
        err_console.print(f"[red]Training refused.[/red] {err}")
        raise typer.Exit(code=3) from err
    except (FileNotFoundError, ValueError) as err:
        err_console.print(f"[red]Cannot train on {data_dir} with Spark:[/red] {err}")
        raise typer.Exit(code=2) from err
    result, registered = outcome.result, outcome.registered
    summary = {**result.metrics(), "engine": "spark", "sample_fraction": outcome.sample_fraction, "rows": outcome.rows}
    if registered is not None:
        summary |= {"version": registered.version, "run_id": registered.run_id, "promoted": registered.promoted,
                    "gate": registered.reason}  # fmt: skip
    if as_json:
        print_json(summary)  # the same JSON as `leadscore train --json`
        return
    chosen = "cold start (provisional)" if result.cold_start else result.chosen.label
    console.print(
        f"trained on {outcome.rows:,} snapshots built on Spark (share of leads {outcome.sample_fraction:g}): "
        f"chosen {chosen}"
    )
    if registered is not None:
        console.print(registered_line(registered))
