"""Run mutmut from scratch and summarise it into build/mutation/report.txt and report.json (``make mutate``).

``python tools/mutation_report.py --run 2`` removes mutants/, runs ``mutmut run --max-children 2`` (its output in
build/mutation/mutmut.log) and times it, wall and CPU; without ``--run`` it only summarises the last run (after
re-running some mutants by name, say). The summary: counts per status and per file, then every mutant that was not
killed, as ``file:line`` with the changed line before and after, so that it can be listed in the README and
killed by a test or explained. Run from the project root.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from mutmut.configuration import config
from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code
from mutmut.utils.file_utils import walk_mutatable_files

OUT = Path("build/mutation")
_HUNK = re.compile(r"^@@ -(\d+)")


def _function_lines(path: Path) -> dict[str, int]:
    """First line (the ``def``, decorators excluded) of each function and method, by mutmut's mangled name."""
    lines: dict[str, int] = {}
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            lines[f"x_{node.name}"] = node.lineno
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    lines[f"xǁ{node.name}ǁ{item.name}"] = item.lineno
    return lines


def _changed_line(diff: str, start: int) -> tuple[int | None, str, str]:
    """The first changed line of a function-relative diff: its line in the file, before and after."""
    offset, before, after, line = 0, [], [], None
    for row in diff.splitlines()[2:]:
        if m := _HUNK.match(row):
            offset = int(m.group(1))
            continue
        if row.startswith("-"):
            line = line if line is not None else start + offset - 1
            before.append(row[1:].strip())
        elif row.startswith("+"):
            after.append(row[1:].strip())
        elif before or after:
            break
        else:
            offset += 1
    return line, " / ".join(before), " / ".join(after)


def run_mutmut(jobs: int, max_examples: int) -> dict[str, float]:
    """``mutmut run`` from scratch with ``jobs`` workers; its wall and CPU time (the workers included).

    ``max_examples`` caps each Hypothesis property's examples (tools/mutmut_order.py); 0 leaves them as they are.
    """
    shutil.rmtree("mutants", ignore_errors=True)
    OUT.mkdir(parents=True, exist_ok=True)
    mutmut = Path(sys.executable).with_name("mutmut")
    start, cpu = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(OUT / "mutmut.log", "w") as log:
        code = subprocess.call(
            [str(mutmut), "run", "--max-children", str(jobs)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MUTMUT_MAX_EXAMPLES": str(max_examples)},
        )
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    timing = {
        "jobs": jobs,
        "max_examples": max_examples,
        "wall_s": round(time.monotonic() - start),
        "cpu_s": round(used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime),
    }
    (OUT / "time.json").write_text(json.dumps(timing) + "\n")
    if code != 0:
        print((OUT / "mutmut.log").read_text()[-3000:], file=sys.stderr)
        raise SystemExit(f"mutmut run failed with exit code {code} (log: {OUT / 'mutmut.log'})")
    return timing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=int, metavar="JOBS", help="run mutmut from scratch with JOBS workers first")
    parser.add_argument("--max-examples", type=int, default=20, help="cap on each Hypothesis property's examples")
    args = parser.parse_args()
    if args.run is not None:
        run_mutmut(args.run, args.max_examples)
    config()  # reads [tool.mutmut] from ./pyproject.toml
    statuses: Counter[str] = Counter()
    per_file: dict[str, Counter[str]] = {}
    not_killed = []
    for path in walk_mutatable_files():
        meta = Path("mutants") / (str(path) + ".meta")
        if not meta.exists():
            continue
        exit_codes = json.loads(meta.read_text())["exit_code_by_key"]
        starts = _function_lines(path)
        counts = per_file.setdefault(str(path), Counter())
        for name, code in sorted(exit_codes.items()):
            status = status_by_exit_code[code]
            statuses[status] += 1
            counts[status] += 1
            if status == "killed":
                continue
            function = name.rsplit("__mutmut_", 1)[0].split(".")[-1]
            diff = get_diff_for_mutant(name, path=path)
            line, before, after = _changed_line(diff, starts.get(function, 1))
            not_killed.append(
                {"mutant": name, "status": status, "where": f"{path}:{line}", "before": before, "after": after}
            )
    if not statuses:
        print("no mutation results under mutants/: run `mutmut run` first", file=sys.stderr)
        return 1

    OUT.mkdir(parents=True, exist_ok=True)
    summary = {"total": sum(statuses.values()), **dict(statuses.most_common())}
    timing = json.loads((OUT / "time.json").read_text()) if (OUT / "time.json").exists() else None
    (OUT / "report.json").write_text(
        json.dumps({"summary": summary, "time": timing, "per_file": per_file, "not_killed": not_killed}, indent=2)
        + "\n"
    )
    text = [f"mutants: {summary['total']}  " + "  ".join(f"{k}: {v}" for k, v in statuses.most_common())]
    if timing:
        text[0] += (
            f"  ({timing['wall_s']} s wall, {timing['cpu_s']} s CPU, {timing['jobs']} workers,"
            f" at most {timing['max_examples']} examples per property)"
        )
    text += [f"  {p}: " + "  ".join(f"{k} {v}" for k, v in c.most_common()) for p, c in per_file.items()]
    text.append("")
    text.append(f"not killed ({len(not_killed)}):")
    for m in not_killed:
        text.append(f"  [{m['status']}] {m['where']}  {m['mutant']}")
        text.append(f"      - {m['before']}")
        text.append(f"      + {m['after']}")
    (OUT / "report.txt").write_text("\n".join(text) + "\n")
    print("\n".join(text[: len(per_file) + 1]))
    print(f"{len(not_killed)} not killed, listed in {OUT / 'report.txt'} (and report.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
