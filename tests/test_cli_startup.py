"""`leadscore --help` (and each command's and group's help) imports none of the heavy libraries.

Every command imports what it uses when it runs, so asking for help, or a mistyped option, answers at once
instead of after seconds of importing pandas, scikit-learn, MLflow, ... (the start-up time itself is measured by
``benchmarks/cli_startup.py``; a test checks the imports, which do not depend on the machine's load).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from leadscore.cli import app

HEAVY = (
    "pandas",
    "numpy",
    "pyarrow",
    "scipy",
    "sklearn",
    "matplotlib",
    "mlflow",
    "skops",
    "sqlalchemy",
    "alembic",
    "fastapi",
    "uvicorn",
    "pydantic_settings",  # the service's settings (typer itself uses pydantic for a command's options)
    "pyspark",
)

# Run the command as its console script does, then list the heavy top-level packages that were imported.
RUN_AND_LIST = """
import json, sys
from leadscore.cli import app

heavy = {heavy!r}
loaded = {{}}
for args in json.loads(sys.argv[1]):
    try:
        app(args, prog_name="leadscore")
    except SystemExit:
        pass
    loaded[" ".join(args)] = sorted({{name.split(".")[0] for name in sys.modules}} & set(heavy))
print(json.dumps(loaded), file=sys.stderr)
"""


def heavy_modules_after(*invocations: list[str]) -> dict[str, list[str]]:
    """For each invocation, run in one fresh interpreter in turn: the heavy packages imported by then."""
    src = Path(__file__).resolve().parents[1] / "src"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", RUN_AND_LIST.format(heavy=HEAVY), json.dumps(list(invocations))],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stderr.strip().splitlines()[-1])


def every_help() -> list[list[str]]:
    """``--help`` of every command and group, and of every group's commands."""
    invocations = []
    for name, command in typer.main.get_command(app).commands.items():
        invocations.append([name, "--help"])
        for sub in getattr(command, "commands", {}):
            invocations.append([name, sub, "--help"])
    return invocations


def test_help_imports_no_heavy_library():
    assert heavy_modules_after(["--help"]) == {"--help": []}


def test_no_arguments_shows_the_help_without_heavy_libraries():
    assert heavy_modules_after([]) == {"": []}


def test_every_command_and_group_help_imports_no_heavy_library():
    invocations = every_help()
    assert ["db", "--help"] in invocations and ["keys", "create", "--help"] in invocations
    loaded = heavy_modules_after(*invocations)
    assert {args: mods for args, mods in loaded.items() if mods} == {}


def test_a_bad_option_is_refused_without_heavy_libraries():
    assert heavy_modules_after(["check", "--no-such-option"]) == {"check --no-such-option": []}


@pytest.mark.parametrize("args", [["check", "--help"], ["--help"]])
def test_the_help_still_names_the_commands_and_options(args):
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0
    assert ("--mapping" in result.output) if args[0] == "check" else ("train" in result.output)
