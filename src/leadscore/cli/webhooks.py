"""`leadscore webhooks ...`: the delivery worker for operations, the subscriptions, redelivery, the goal check.

Subscriptions are created through the API (``POST /api/v1/webhooks``, which shows the secret once); here an
operator lists them, runs the delivery worker in its own process, re-queues dead letters and runs the goal check.
"""

from __future__ import annotations

import typer
from rich.console import Console

from leadscore.cli.app import app

console = Console()
err_console = Console(stderr=True)

webhooks_app = typer.Typer(
    help="Webhooks: deliver the outbox, list subscriptions, redeliver dead letters.", no_args_is_help=True
)
app.add_typer(webhooks_app, name="webhooks")

UrlOption = typer.Option(None, "--url", help="Database URL (default: LEADSCORE_DATABASE_URL or the SQLite file).")


def _repo(url: str | None):
    from leadscore.settings import get_settings
    from leadscore.store import Repository

    return Repository.from_url(url or get_settings().resolved_database_url())


@webhooks_app.command("deliver")
def deliver(
    url: str | None = UrlOption,
    once: bool = typer.Option(False, "--once", help="Deliver what is due now, then exit (default: run until stopped)."),
    lease_seconds: float | None = typer.Option(None, help="Override LEADSCORE_WEBHOOKS_LEASE_SECONDS."),
    idle_seconds: float = typer.Option(1.0, help="How often to look for work when idle."),
) -> None:
    """Run the delivery worker in this process (the service runs one too, unless LEADSCORE_WEBHOOKS=false).

    Several workers may run against one store; a worker killed mid-delivery leaves its deliveries to be sent
    again once their lease runs out (at least once)."""
    import dataclasses
    import signal

    from leadscore.settings import get_settings
    from leadscore.webhooks.service import worker_from_settings

    settings = get_settings()
    repo = _repo(url)
    worker = worker_from_settings(repo, settings, idle_s=idle_seconds)
    if lease_seconds is not None:
        worker.policy = dataclasses.replace(worker.policy, lease_s=lease_seconds)
    if once:
        done = worker.drain()
        worker.close()
        console.print(f"{done:,} deliveries attempted: {worker.stats}")
        return
    signal.signal(signal.SIGTERM, lambda *_: worker.request_stop())
    console.print(f"delivering webhooks ({worker.name}); Ctrl-C to stop")
    try:
        worker.run()
    except KeyboardInterrupt:
        pass
    finally:
        worker.close()
        repo.engine.dispose()


@webhooks_app.command("list")
def list_subscriptions(url: str | None = UrlOption) -> None:
    """The subscriptions, with their deliveries by state."""
    from leadscore.store import outbox
    from leadscore.store import webhook_subscriptions as stored

    repo = _repo(url)
    with repo.engine.connect() as conn:
        rows = [(row, outbox.counts(conn, row["id"])) for row in stored.list_all(conn)]
    if not rows:
        console.print("no webhook subscriptions (create one with POST /api/v1/webhooks)")
    for row, counts in rows:
        console.print(
            f"{row['id']}: {row['url']}  events {', '.join(row['kinds'])}  "
            f"pending {counts['pending']:,}, delivered {counts['delivered']:,}, dead {counts['dead']:,}",
            soft_wrap=True,
        )


@webhooks_app.command("redeliver")
def redeliver(
    subscription: int = typer.Argument(..., help="The subscription's id."),
    delivery: list[int] | None = typer.Option(
        None, "--delivery", help="Only these finished deliveries (default: every dead-lettered one)."
    ),
    url: str | None = UrlOption,
) -> None:
    """Queue a subscription's dead-lettered deliveries again (or the chosen finished ones)."""
    from leadscore.store import outbox
    from leadscore.store.engine import run_in_write_transaction

    repo = _repo(url)
    queued = run_in_write_transaction(
        repo.engine, lambda conn: outbox.redeliver(conn, subscription, delivery_ids=delivery or None)
    )
    console.print(f"{queued:,} deliveries of subscription {subscription} queued again")


@webhooks_app.command("check-goals")
def check_goals(url: str | None = UrlOption) -> None:
    """Check goal progress now and enqueue `goal.behind` for the goals falling behind (the worker does it hourly)."""
    from datetime import UTC, datetime

    from leadscore.webhooks.producers import check_goals as check

    found = check(_repo(url), datetime.now(UTC))
    console.print(f"{found:,} goal(s) newly behind")


def announce_promotion(version: str, previous: str | None, *, source: str, reason: str | None = None) -> None:
    """Tell webhook subscribers that ``version`` is the champion, if the store is there; a note if it fails
    (the service announces it too when it loads the version)."""
    from pathlib import Path

    from sqlalchemy.engine import make_url

    from leadscore.settings import get_settings
    from leadscore.store import create_engine
    from leadscore.webhooks.producers import model_promoted

    target = get_settings().resolved_database_url()
    parsed = make_url(target)
    if parsed.get_backend_name() == "sqlite" and not (parsed.database and Path(parsed.database).is_file()):
        return  # no store here: nobody to tell
    engine = create_engine(target)
    try:
        model_promoted(engine, version, previous_version=previous, source=source, reason=reason)
    except Exception as err:  # noqa: BLE001 - the promotion stands; the service announces it when it loads it
        err_console.print(f"[yellow]note:[/yellow] webhook subscribers not told here ({type(err).__name__}: {err})")
    finally:
        engine.dispose()
