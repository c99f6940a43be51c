"""How long the ``leadscore`` command takes to start: its help, against the interpreter alone and eager imports.

Run: ``.venv/bin/python benchmarks/cli_startup.py [--repeat 10]``

Each command line runs ``--repeat`` times in a fresh interpreter (as hyperfine would, after one warm-up run);
the wall time (median and best) and the CPU time (user + system, median) of each are reported:

- ``python``: the interpreter starting and doing nothing, the floor;
- ``leadscore --help``, ``leadscore db --help``, ``leadscore train --help``: the command as users call it
  (``python -m leadscore``), which imports only typer and rich before it answers;
- ``eager imports``: the command's modules plus what they used to import at start (the report's views with
  pandas, scipy and matplotlib, the data loader, the settings), i.e. what every command paid before it started.

The last line printed is one JSON object (``benchmarks/import_csv.py`` includes it under ``cli_startup``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
EAGER = "import leadscore.cli, leadscore.cli.report_views, leadscore.data.io, leadscore.settings"
COMMANDS = {
    "python": ["-c", "pass"],
    "leadscore --help": ["-m", "leadscore", "--help"],
    "leadscore db --help": ["-m", "leadscore", "db", "--help"],
    "leadscore train --help": ["-m", "leadscore", "train", "--help"],
    "eager imports": ["-c", EAGER],
}


def _run(args: list[str]) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, stdout=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(repeat: int = 10) -> dict[str, dict[str, float]]:
    """Median and best wall time and median CPU time of each command line, in seconds."""
    figures = {}
    for name, args in COMMANDS.items():
        _run(args)  # warm-up: the files in the page cache, the bytecode written
        runs = [_run(args) for _ in range(repeat)]
        walls, cpus = [w for w, _ in runs], [c for _, c in runs]
        figures[name] = {
            "wall_median_s": round(statistics.median(walls), 3),
            "wall_best_s": round(min(walls), 3),
            "cpu_median_s": round(statistics.median(cpus), 3),
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    figures = measure(args.repeat)
    for name, f in figures.items():
        print(
            f"{name:24s} wall median {f['wall_median_s']:.3f} s (best {f['wall_best_s']:.3f}), "
            f"CPU {f['cpu_median_s']:.3f} s",
            file=sys.stderr,
        )
    print(json.dumps({"repeat": args.repeat, "load_average_1min": round(os.getloadavg()[0], 1), **figures}))


if __name__ == "__main__":
    main()
