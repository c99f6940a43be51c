"""`leadscore demo`: the main job of `make run` — train a champion on a data set, store it, serve scores.

Each step is skipped when its result is already there, so a second `make run` starts serving in seconds:
the champion is trained only when the registry has none, the store's ingestion is idempotent, and the local
API key is made once.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer
from rich.console import Console

from leadscore.cli.app import app
from leadscore.cli.data import load_or_exit
from leadscore.cli.output import result_table
from leadscore.scopes import SCOPES

# Wide enough for the candidates' table when the output is not a terminal (logs, CI).
console = Console(width=None if sys.stdout.isatty() else 160)

LOCAL_KEY_FILE = "local_api_key"


def ensure_champion(data, *, retrain: bool) -> str:
    """The champion's version, training one on ``data`` first when there is none (or ``retrain``)."""
    from leadscore.registry import CHAMPION, resolve_version
    from leadscore.registry.workflow import crm_training_data, train_and_register

    if not retrain:
        try:
            return resolve_version(CHAMPION)
        except Exception:  # noqa: BLE001 - no registry, no model or no alias yet: all mean "train one"
            pass
    console.print("[bold]Training[/bold] the conversion model (time-ordered validation, calibration, MLflow)")
    labelled, extra_types = crm_training_data(data)
    result, registered = train_and_register(
        labelled, extra_types=extra_types, progress=lambda m: console.print(f"  [dim]{m}[/dim]")
    )
    console.print(result_table(result))
    console.print(f"  version {registered.version}: {registered.reason}")
    return resolve_version(CHAMPION)


def ensure_local_key(data_dir: Path) -> str:
    """A local API key with every scope, made once: its digest in the keys file, the key itself beside it."""
    from leadscore.serving.keys import digest, new_key

    key_path = data_dir / LOCAL_KEY_FILE
    if key_path.is_file():
        return key_path.read_text(encoding="utf-8").strip()
    key = new_key()
    keys_path = data_dir / "api_keys.json"
    entries = json.loads(keys_path.read_text(encoding="utf-8")) if keys_path.is_file() else {}
    entries[f"sha256:{digest(key).hex()}"] = {"scopes": list(SCOPES), "name": "local (make run)"}
    data_dir.mkdir(parents=True, exist_ok=True)
    keys_path.write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
    key_path.write_text(key + "\n", encoding="utf-8")
    os.chmod(keys_path, 0o600)
    os.chmod(key_path, 0o600)
    return key


@app.command()
def demo(
    data_dir: Path = typer.Option(Path("data/demo"), "--data", help="CRM data set to train on, store and serve."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    retrain: bool = typer.Option(False, help="Train a new challenger even if a champion exists."),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="Start the service at the end."),
) -> None:
    """Train (if needed), load the data set into the store, make a local API key and serve scores."""
    from leadscore.settings import get_settings
    from leadscore.store import Repository, upgrade_database

    settings = get_settings()
    data = load_or_exit(data_dir)
    console.print(
        f"[bold]{data_dir}[/bold]: {len(data.leads):,} leads, {len(data.events):,} events, "
        f"{len(data.goals):,} goals, {len(data.expenses):,} expenses"
    )
    version = ensure_champion(data, retrain=retrain)
    console.print(f"[bold]Champion[/bold]: leadscore version {version}")

    url = settings.resolved_database_url()
    upgrade_database(url)
    repo = Repository.from_url(url)
    try:
        counts = repo.import_crm(data)
    finally:
        repo.engine.dispose()
    console.print("[bold]Store[/bold] " + url + ": newly stored " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))

    key = ensure_local_key(settings.data_dir)
    base = f"http://{host}:{port}"
    example_lead = data.leads["lead_id"].iloc[-1]
    console.print(
        f"\n[bold]Service[/bold] on {base}\n"
        f"  the manager's web app (sign in with the key):  {base}/app\n"
        f"  API docs (Authorize with the key):  {base}/docs\n"
        f"  local API key (in {settings.data_dir / LOCAL_KEY_FILE}):  {key}\n"
        f"  the manager's list:  curl -H 'X-API-Key: {key}' '{base}/api/v1/leads/prioritized?limit=5'\n"
        f"  one lead's score:    curl -H 'X-API-Key: {key}' {base}/api/v1/leads/{example_lead}/score\n"
        f"  the funnel:          curl -H 'X-API-Key: {key}' '{base}/api/v1/funnel'\n"
        f"  browse the runs:     .venv/bin/mlflow ui --backend-store-uri sqlite:///models/mlflow.db\n",
        soft_wrap=True,
    )
    if serve:
        import uvicorn

        uvicorn.run("leadscore.api.main:create_app", factory=True, host=host, port=port)
