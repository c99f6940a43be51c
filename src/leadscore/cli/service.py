"""The store and the service from the shell: ``leadscore db ...``, ``leadscore keys create``, ``leadscore serve``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer
from rich.console import Console

from leadscore.cli.app import app
from leadscore.scopes import SCOPES

console = Console()

db_app = typer.Typer(help="The store: create or upgrade its schema, load a data set into it.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys for the service.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")

UrlOption = typer.Option(None, "--url", help="Database URL (default: LEADSCORE_DATABASE_URL or the SQLite file).")


def _url(url: str | None) -> str:
    from leadscore.settings import get_settings

    return url or get_settings().resolved_database_url()


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@db_app.command("upgrade")
def db_upgrade(
    url: str | None = UrlOption,
    revision: str = typer.Option("head", help="Target revision (default: the newest)."),
) -> None:
    """Create the database, or upgrade an existing one in place, to the newest schema."""
    from leadscore.store import upgrade_database

    target = _url(url)
    reached = upgrade_database(target, revision)
    console.print(f"{_shown(target)}: schema at revision {reached}")


@db_app.command("current")
def db_current(url: str | None = UrlOption) -> None:
    """Print the schema revision of the database (and the newest one available)."""
    from leadscore.store import current_revision, head_revision

    target = _url(url)
    console.print(f"{_shown(target)}: at {current_revision(target) or 'no schema'}; newest is {head_revision()}")


@db_app.command("load")
def db_load(
    data_dir: Path = typer.Argument(..., help="Folder with leads, events (and goals, expenses) files."),
    url: str | None = UrlOption,
    chunk_rows: int = typer.Option(50_000, help="Events per transaction."),
) -> None:
    """Load a CRM data set into the store (upgrading its schema first).

    Leads are upserted and events inserted idempotently, so loading the same folder twice stores nothing twice.
    Expenses have no key to recognise them by: they are loaded only into a store that has none yet.
    """
    from leadscore.cli.data import load_or_exit
    from leadscore.store import Repository, upgrade_database

    target = _url(url)
    upgrade_database(target)
    data = load_or_exit(data_dir)
    repo = Repository.from_url(target)
    try:
        counts = repo.import_crm(data, chunk_rows=chunk_rows)
    finally:
        repo.engine.dispose()
    console.print(f"{_shown(target)}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))


@keys_app.command("create")
def keys_create(
    scope: list[str] = typer.Option(list(SCOPES), "--scope", help=f"Scope(s) of the key: {', '.join(SCOPES)}."),
    name: str = typer.Option("local", help="A name for people (shown in logs instead of the key)."),
    keys_file: Path | None = typer.Option(
        None, "--file", help="Keys file to add it to (default: LEADSCORE_API_KEYS_FILE or <data_dir>/api_keys.json)."
    ),
) -> None:
    """Create an API key, store its SHA-256 digest in the keys file and print the key (shown only once)."""
    from leadscore.serving.keys import digest, new_key
    from leadscore.settings import get_settings

    unknown = sorted(set(scope) - set(SCOPES))
    if unknown:
        raise typer.BadParameter(f"unknown scope(s) {unknown}; scopes: {list(SCOPES)}", param_hint="--scope")
    settings = get_settings()
    path = keys_file or settings.api_keys_file or settings.data_dir / "api_keys.json"
    entries = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    key = new_key()
    entries[f"sha256:{digest(key).hex()}"] = {"scopes": sorted(set(scope)), "name": name}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
    os.chmod(path, 0o600)
    console.print(f"API key [bold]{key}[/bold] (scopes: {', '.join(sorted(set(scope)))}) added to {path}")
    console.print("Keep it: only its digest is stored. Use it as the X-API-Key header, e.g.")
    console.print(f"  curl -H 'X-API-Key: {key}' http://127.0.0.1:8000/api/v1/...", soft_wrap=True)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(1, help="Worker processes (one per core at most)."),
    reload: bool = typer.Option(False, help="Restart on code changes (development)."),
) -> None:
    """Run the HTTP service (settings from LEADSCORE_* variables)."""
    import uvicorn

    from leadscore.settings import get_settings

    settings = get_settings()
    console.print(f"leadscore on http://{host}:{port}  (docs: http://{host}:{port}/docs)")
    if not settings.all_api_keys():
        console.print("[yellow]No API keys yet: create one with `leadscore keys create`.[/yellow]")
    uvicorn.run("leadscore.api.main:create_app", factory=True, host=host, port=port, workers=workers, reload=reload)
