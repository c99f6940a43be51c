"""Benchmark: point-in-time features for 1, 5 and 20 million events, pandas on one process against Spark local[2].

The workload is what batch scoring does before the model: read leads and events from Parquet, build the
features of every lead open at one cutoff (the data's last day), write them to Parquet. Both engines run the
same pandas builder (:func:`leadscore.features.builder.build_features`); Spark runs it per lead-hash bucket
(:func:`leadscore.spark.feature_frame`). With ``--training-cutoffs N`` the workload is the training set of the
last N labelled weekly cutoffs instead. With ``--empty-builder`` Spark also runs the same job with a builder that
does nothing (it returns the empty frame of the right columns): what moving the data costs without the work.

Spark's shuffle is read from its status store after the job: the bytes written by every stage's shuffle, also
per input event. The summary derives the README's figures: for each size, how much faster pandas is, pandas'
peak memory per event, Spark's events per second per core (and at the margin between the two largest sizes),
and the Python workers' peak memory per running task.

Each run is a child process, so that memory is measured cleanly: the parent samples the resident memory (RSS)
of the child's whole process tree every 0.1 s with psutil and reports the peak of the sum, and for Spark the
peaks of its parts (the Python driver, the JVM that holds the driver and the executor threads in local mode,
the Python workers that run the pandas code). A run that exceeds ``--timeout-s`` is stopped and reported as
such; a run that fails (out of memory, say) is reported with its error.

Data: a simulation (:func:`leadscore.simulation.simulator.simulate`, about a million events) tiled: copy k has its lead
and event ids prefixed with k, so 20 copies are 20 times the leads with the same behaviour. Files are cached
in ``--workdir`` between runs. Neither engine validates the tables (:func:`leadscore.data.io.load_dataset` would).

Run: ``.venv/bin/python benchmarks/spark_scale.py`` (``--quick`` for a smoke run on small sizes). The last
line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve()
BASE_LEADS = 60_000  # ~1.03 million simulated events over 12 months
SAMPLE_EVERY_S = 0.1


# -- data -------------------------------------------------------------------------------------------------------


def generate(out: Path, copies: int, base_leads: int, seed: int = 0) -> dict:
    """Write ``copies`` tiles of one simulation as ``leads.parquet`` and ``events.parquet`` in ``out``."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from leadscore.simulation.simulator import simulate

    meta_path = out / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("copies") == copies and meta.get("base_leads") == base_leads and meta.get("seed") == seed:
            return meta
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    sim = simulate(n_leads=base_leads, n_reps=max(4, base_leads // 1_700), months=12, seed=seed)

    def table(frame) -> pa.Table:
        t = pa.Table.from_pandas(frame, preserve_index=False)

        def plain(f: pa.Field) -> pa.Field:
            if pa.types.is_timestamp(f.type):
                return pa.field(f.name, pa.timestamp("us", tz="UTC"))
            return pa.field(f.name, pa.string()) if pa.types.is_large_string(f.type) else f

        fields = [plain(f) for f in t.schema]
        return t.cast(pa.schema(fields))

    leads, events = table(sim.data.leads), table(sim.data.events)
    end = max(sim.data.events["at"].max(), sim.data.leads["created_at"].max())
    writers = {
        "leads": pq.ParquetWriter(out / "leads.parquet", leads.schema),
        "events": pq.ParquetWriter(out / "events.parquet", events.schema),
    }
    for k in range(copies):
        prefix = f"c{k:03d}-"
        for name, base in (("leads", leads), ("events", events)):
            tile = base.set_column(
                base.schema.get_field_index("lead_id"),
                "lead_id",
                pc.binary_join_element_wise(prefix, base["lead_id"], ""),
            )
            if name == "events":
                tile = tile.set_column(
                    tile.schema.get_field_index("event_id"),
                    "event_id",
                    pc.binary_join_element_wise(prefix, tile["event_id"], ""),
                )
            writers[name].write_table(tile, row_group_size=1_000_000)
    for writer in writers.values():
        writer.close()
    meta = {
        "copies": copies,
        "base_leads": base_leads,
        "seed": seed,
        "leads": leads.num_rows * copies,
        "events": events.num_rows * copies,
        "end": str(end),
        "cutoff": str(end.floor("D")),
        "events_parquet_mb": round((out / "events.parquet").stat().st_size / 2**20, 1),
        "generate_s": round(time.perf_counter() - started, 1),
    }
    meta_path.write_text(json.dumps(meta))
    return meta


# -- the children -----------------------------------------------------------------------------------------------


def _training_cutoffs(end: str, n: int, horizon_days: int = 90) -> list[str]:
    import pandas as pd

    last = pd.Timestamp(end) - pd.Timedelta(days=horizon_days)
    mondays = pd.date_range(last - pd.Timedelta(weeks=n + 1), last, freq="W-MON")
    return [str(t) for t in mondays[-n:]]


def child_pandas(data: Path, out: Path, cutoff: str, training: list[str]) -> dict:
    import resource

    import pandas as pd

    from leadscore.data.contracts import CrmData
    from leadscore.features.builder import build_features
    from leadscore.features.training_set import build_training_set

    started = time.perf_counter()
    leads = pd.read_parquet(data / "leads.parquet")
    events = pd.read_parquet(data / "events.parquet")
    read_s = time.perf_counter() - started
    tick = time.perf_counter()
    if training:
        frame = build_training_set(CrmData(leads=leads, events=events), training)
    else:
        frame = build_features(leads, events, cutoff)
    build_s = time.perf_counter() - tick
    tick = time.perf_counter()
    frame.to_parquet(out, index=False)
    write_s = time.perf_counter() - tick
    return {
        "rows": len(frame),
        "read_s": round(read_s, 2),
        "build_s": round(build_s, 2),
        "write_s": round(write_s, 2),
        "work_s": round(time.perf_counter() - started, 2),
        "self_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _shuffle_write_bytes(spark) -> int:
    """Bytes written by the shuffles of every stage so far, from Spark's status store (classic sessions)."""
    jvm, gateway = spark.sparkContext._jvm, spark.sparkContext._gateway
    store = spark.sparkContext._jsc.sc().statusStore()
    stages = store.stageList(None, False, False, gateway.new_array(jvm.double, 0), jvm.java.util.ArrayList())
    return int(sum(stages.apply(i).shuffleWriteBytes() for i in range(stages.size())))


def child_spark(
    data: Path, out: Path, cutoff: str, training: list[str], master: str, driver_memory: str, empty: bool = False
) -> dict:
    import warnings

    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
    import pandas as pd

    started = time.perf_counter()
    from leadscore.features.builder import build_features
    from leadscore.spark import feature_frame, get_spark, n_buckets_for, read_crm, training_set
    from leadscore.spark.features import known_by, per_lead_bucket

    spark = get_spark(master, conf={"spark.driver.memory": driver_memory, "spark.sql.shuffle.partitions": "8"})
    spark.sparkContext.setLogLevel("ERROR")
    session_s = time.perf_counter() - started
    tick = time.perf_counter()
    crm = read_crm(spark, data)
    buckets = n_buckets_for(crm)
    if empty:  # the same job around a builder that does nothing: its output on empty input, the right columns

        def nothing(leads, events):
            return build_features(leads.iloc[:0], events.iloc[:0], cutoff)

        frame = per_lead_bucket(known_by(crm, pd.Timestamp(cutoff)), nothing, n_buckets=buckets)
    elif training:
        frame = training_set(crm, training, n_buckets=buckets)
    else:
        frame = feature_frame(crm, cutoff, n_buckets=buckets)
    frame.write.mode("overwrite").parquet(str(out))
    build_s = time.perf_counter() - tick
    shuffle_bytes = _shuffle_write_bytes(spark)
    rows = spark.read.parquet(str(out)).count()
    spark.stop()
    return {
        "rows": rows,
        "buckets": buckets,
        "session_s": round(session_s, 2),
        "read_build_write_s": round(build_s, 2),
        "work_s": round(build_s, 2),
        "shuffle_write_bytes": shuffle_bytes,
    }


def _cores(master: str) -> int:
    """The cores a ``local[n]`` master uses (``local[*]``: all of them)."""
    inside = master[master.find("[") + 1 : master.find("]")] if "[" in master else "1"
    return (os.cpu_count() or 1) if inside == "*" else int(inside)


# -- the parent: run a child, sample its memory -----------------------------------------------------------------


def _kind(process: psutil.Process, root_pid: int) -> str:
    try:
        if process.pid == root_pid:
            return "driver_python"
        name = process.name()
        return "jvm" if name.startswith("java") else "python_workers"
    except psutil.Error:
        return "gone"


def run_child(args: list[str], timeout_s: float) -> dict:
    """Run this script as a child with ``args``; its JSON result plus the peak RSS of its process tree."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, str(HERE), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    root = psutil.Process(proc.pid)
    peak_total, peaks, timed_out = 0, {}, False
    while proc.poll() is None:
        parts: dict[str, int] = {}
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            tree = []
        for p in tree:
            try:
                rss = p.memory_info().rss
            except psutil.Error:
                continue
            kind = _kind(p, proc.pid)
            parts[kind] = parts.get(kind, 0) + rss
        peak_total = max(peak_total, sum(parts.values()))
        for kind, rss in parts.items():
            peaks[kind] = max(peaks.get(kind, 0), rss)
        if time.perf_counter() - started > timeout_s:
            timed_out = True
            for p in reversed(tree):
                try:
                    p.kill()
                except psutil.Error:
                    pass
            break
        time.sleep(SAMPLE_EVERY_S)
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - started
    result: dict = {"wall_s": round(wall, 2), "peak_rss_mb": round(peak_total / 2**20, 1)}
    result["peak_rss_mb_by_part"] = {k: round(v / 2**20, 1) for k, v in sorted(peaks.items()) if k != "gone"}
    if timed_out:
        result["status"] = f"stopped after {timeout_s:.0f} s (did not finish)"
        return result
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = " | ".join(stderr.strip().splitlines()[-3:])[-400:]
        result["status"] = f"failed (exit code {proc.returncode}): {tail}"
        return result
    result["status"] = "ok"
    result.update(json.loads(lines[-1]))
    # One process (pandas): its own high-water mark is exact where 0.1 s sampling can miss a short peak.
    own_peak = result.get("self_peak_rss_mb", 0.0)
    if own_peak > result["peak_rss_mb"]:
        result["peak_rss_mb"] = own_peak
        result["peak_rss_mb_by_part"]["driver_python"] = own_peak
    return result


def _growth(results: list[dict], engine: str, sizes: list[int]) -> dict:
    """How time and memory grow from the smallest to the largest size that finished."""
    done = [r for r in results if r["engine"] == engine and r["status"] == "ok"]
    if len(done) < 2:
        return {}
    first, last = done[0], done[-1]
    factor = last["events"] / first["events"]
    return {
        "events_factor": round(factor, 1),
        "time_factor": round(last["wall_s"] / first["wall_s"], 1),
        "memory_factor": round(last["peak_rss_mb"] / first["peak_rss_mb"], 1),
        "from_to_events": [first["events"], last["events"]],
    }


def _derived(results: list[dict], cores: int) -> dict:
    """The README's figures from the runs: per size, and at the margin between the two largest sizes."""
    ok = {(r["engine"], r["events"]): r for r in results if r["status"] == "ok"}
    per_size = {}
    for events in sorted({e for _, e in ok}):
        pandas, spark, empty = (ok.get((engine, events)) for engine in ("pandas", "spark", "spark_empty_builder"))
        row: dict[str, object] = {}
        if pandas:
            row["pandas_peak_bytes_per_event"] = round(pandas["peak_rss_mb"] * 2**20 / events)
        if spark:
            row["spark_events_per_s_per_core"] = round(events / spark["work_s"] / cores)
            row["spark_shuffle_bytes_per_event"] = round(spark["shuffle_write_bytes"] / events, 1)
            workers = spark["peak_rss_mb_by_part"].get("python_workers")
            if workers is not None:
                row["spark_python_workers_gb_per_task"] = round(workers / 1024 / cores, 2)
        if pandas and spark:
            row["pandas_faster_by"] = round(spark["wall_s"] / pandas["wall_s"], 1)
        if spark and empty:
            row["empty_builder_over_real_work_s"] = round(empty["work_s"] / spark["work_s"], 2)
        per_size[str(events)] = row
    spark_runs = sorted(
        (r for r in results if r["engine"] == "spark" and r["status"] == "ok"), key=lambda r: r["events"]
    )
    out: dict[str, object] = {"cores": cores, "per_size": per_size}
    if len(spark_runs) >= 2:
        a, b = spark_runs[-2], spark_runs[-1]
        out["spark_margin_events_per_s_per_core"] = round(
            (b["events"] - a["events"]) / (b["work_s"] - a["work_s"]) / cores
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,5,20", help="millions of events (tiles of ~1M simulated events)")
    parser.add_argument("--engines", default="pandas,spark")
    parser.add_argument("--workdir", default="/tmp/leadscore-spark-bench")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="2g")
    parser.add_argument("--training-cutoffs", type=int, default=0, help="build a training set of N cutoffs")
    parser.add_argument("--timeout-s", type=float, default=1800)
    parser.add_argument("--base-leads", type=int, default=BASE_LEADS)
    parser.add_argument("--quick", action="store_true", help="smoke run: tiles of 3,000 leads, sizes 1 and 2")
    parser.add_argument(
        "--empty-builder", action="store_true", help="also run Spark with a builder that does nothing (features only)"
    )
    parser.add_argument("--child", choices=["pandas", "spark"], help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--cutoff", help=argparse.SUPPRESS)
    parser.add_argument("--training", default="", help=argparse.SUPPRESS)
    parser.add_argument("--empty", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        training = [t for t in args.training.split(",") if t]
        if args.child == "pandas":
            out = child_pandas(Path(args.data), Path(args.out), args.cutoff, training)
        else:
            out = child_spark(
                Path(args.data), Path(args.out), args.cutoff, training, args.master, args.driver_memory, args.empty
            )
        print(json.dumps(out))
        return

    if args.quick:
        args.sizes, args.base_leads = "1,2", 3_000
    sizes = [int(s) for s in args.sizes.split(",")]
    engines = [e.strip() for e in args.engines.split(",")]
    if args.empty_builder and "spark" in engines and not args.training_cutoffs:
        engines.append("spark_empty_builder")
    workdir = Path(args.workdir)
    results = []
    data_meta = {}
    for size in sizes:
        folder = workdir / f"base{args.base_leads}_x{size}"
        meta = generate(folder, size, args.base_leads)
        data_meta[size] = meta
        training = _training_cutoffs(meta["end"], args.training_cutoffs) if args.training_cutoffs else []
        for engine in engines:
            out = workdir / "out" / f"{engine}_x{size}.parquet"
            out.parent.mkdir(parents=True, exist_ok=True)
            child = "spark" if engine == "spark_empty_builder" else engine
            child_args = ["--child", child, "--data", str(folder), "--out", str(out), "--cutoff", meta["cutoff"]]
            child_args += ["--empty"] if engine == "spark_empty_builder" else []
            child_args += ["--training", ",".join(training), "--master", args.master]
            child_args += ["--driver-memory", args.driver_memory]
            run = run_child(child_args, args.timeout_s)
            row = {"engine": engine, "events": meta["events"], "leads": meta["leads"], **run}
            results.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)

    summary = {
        "benchmark": "spark_scale",
        "workload": (
            f"training set of {args.training_cutoffs} weekly cutoffs"
            if args.training_cutoffs
            else "features of the leads open at the last day: read Parquet, build, write Parquet"
        ),
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "load_average_1m": round(os.getloadavg()[0], 2),
        },
        "spark": {"master": args.master, "driver_memory": args.driver_memory},
        "data": {str(k): v for k, v in data_meta.items()},
        "runs": results,
        "growth": {engine: _growth(results, engine, sizes) for engine in engines},
        "derived": _derived(results, _cores(args.master)),
        "notes": [
            "wall_s includes interpreter and imports; for Spark also the session (JVM) start, see session_s",
            "peak_rss_mb: the peak of the sum over the child's process tree, sampled every 0.1 s (for pandas, "
            "one process, its own exact high-water mark when higher)",
            "in local mode the JVM is driver and executor at once; python_workers run the pandas builder",
        ],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
