"""Data-lake benchmark: CSV → zstd Parquet ingest, and the profile of the result, beside peers.

    .venv/bin/python bench/ingest.py                   # 1 GB sensor CSV (≈ 13.75 M rows)
    .venv/bin/python bench/ingest.py --size-mb 200     # smaller
    .venv/bin/python bench/ingest.py --size-mb 200 --cprofile   # + where our ingest spends its time
    .venv/bin/python bench/ingest.py --repeat 3 --cprofile --whatif   # what docs/benchmarks.md reports

1. A sensor CSV is generated with numpy/pyarrow (fixed seed) in a temporary directory that
   is deleted afterwards: timestamp (ms), machine id, 6 floats, a status string.
2. Ingest, each tool in its own subprocess (so that peak RSS — `ru_maxrss` from `wait4` — is
   that tool's alone; it includes the interpreter and the imported libraries), in the same run:
   - `ours`: `datalake.engine.ingest.ingest(csv, parquet, IngestOptions())` (type
     inference, safe column names, row groups, sha256 of the result included);
   - `duckdb`: `COPY (SELECT * FROM read_csv(...)) TO '...parquet' (FORMAT parquet,
     COMPRESSION zstd)` at duckdb's defaults (all cores);
   - `pyarrow`: `pyarrow.csv.open_csv` (streaming, its default threads) → `ParquetWriter`
     (zstd level 3, our level).
   Seconds are measured inside the child around the conversion only (imports excluded);
   MB/s is CSV megabytes (2**20 bytes) per second. All three must write the same row count.
3. Profile: `profile_parquet()` on our Parquet beside one duckdb aggregate query computing
   the same scan-1 statistics (count, nulls, approx distinct, min, max, avg, stddev, approx
   quantiles per column) with the same connection settings (1 GB memory limit, 2 threads);
   best of --repeat, after a warm-up that puts the file in the page cache. The profile's own
   statements are timed one by one through a wrapped connection (the engine is unchanged).
4. --cprofile: our ingest once more under cProfile, with the time grouped into phases.
5. --whatif: prototypes of changes to our ingest (see `child_whatif`), timed on the same CSV.

Every subprocess has a time limit (--timeout); a tool that runs past it is reported, not waited for.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024
TOOLS = ("ours", "duckdb", "pyarrow")
COLUMNS = ["ts", "machine_id", "vibration", "temperature", "current", "rpm", "pressure", "humidity", "status"]
TARGET_RATIO = 1.0
TARGET_RSS_MB = 1024
TARGET_PROFILE_RATIO = 1.5


# --- the data ----------------------------------------------------------------------------


def generate_csv(path: str, size_mb: float, seed: int = 42) -> int:
    """Write a sensor CSV of about `size_mb` MB; return its data rows."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pcsv

    rng = np.random.default_rng(seed)
    machines = pa.array([f"M-{i:04d}" for i in range(200)])
    statuses = pa.array(["ok", "warn", "fault", "maintenance"])
    status_p = [0.95, 0.04, 0.009, 0.001]
    start = np.datetime64("2024-01-01T00:00:00.000", "ms")
    target = int(size_mb * MB)
    chunk = 500_000
    rows = 0
    options = pcsv.WriteOptions(include_header=False, quoting_style="none")
    with open(path, "wb") as f:
        f.write((",".join(COLUMNS) + "\n").encode())
        while f.tell() < target:
            n = chunk if rows else min(chunk, 1000)  # a small first chunk to measure bytes per row
            if rows:
                per_row = (f.tell() / rows) or 80
                n = max(1, min(chunk, int((target - f.tell()) / per_row) + 1))
            index = np.arange(rows, rows + n)
            # 200 machines, each reporting every 2 s, spread over the 2 s.
            ts = start + (index // 200) * 2000 + (index % 200) * 10
            humidity = np.round(rng.normal(45, 5, n), 4)
            humidity_mask = rng.random(n) < 0.001  # a few missing readings
            table = pa.table(
                {
                    "ts": pa.array(ts.astype("datetime64[ms]")),
                    "machine_id": machines.take(pa.array(index % 200)),
                    "vibration": np.round(rng.gamma(4.0, 0.6, n), 4),
                    "temperature": np.round(rng.normal(62, 6, n), 4),
                    "current": np.round(rng.normal(12, 2, n), 4),
                    "rpm": np.round(rng.normal(1500, 25, n), 4),
                    "pressure": np.round(rng.normal(6, 0.3, n), 4),
                    "humidity": pa.array(humidity, mask=humidity_mask),
                    "status": statuses.take(pa.array(rng.choice(4, n, p=status_p))),
                }
            )
            pcsv.write_csv(table, f, options)
            rows += n
    return rows


# --- children: one tool, one process -------------------------------------------------------


def child_ingest(tool: str, src: str, dst: str) -> dict:
    if tool == "ours":
        sys.path.insert(0, str(ROOT))
        from datalake.engine.ingest import IngestOptions, ingest

        t0 = time.perf_counter()
        result = ingest(src, dst, IngestOptions())
        seconds = time.perf_counter() - t0
        return {"seconds": seconds, "types": {c.identifier: c.type for c in result.columns}, "warnings": result.warnings}
    if tool == "duckdb":
        import duckdb

        con = duckdb.connect(":memory:")
        t0 = time.perf_counter()
        con.execute(f"COPY (SELECT * FROM read_csv({_literal(src)})) TO {_literal(dst)} (FORMAT parquet, COMPRESSION zstd)")
        seconds = time.perf_counter() - t0
        threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
        con.close()
        return {"seconds": seconds, "threads": threads}
    if tool in ("pyarrow", "pyarrow-1t"):
        import pyarrow.csv as pcsv
        import pyarrow.parquet as pq

        t0 = time.perf_counter()
        reader = pcsv.open_csv(src, read_options=pcsv.ReadOptions(use_threads=tool == "pyarrow"))
        with pq.ParquetWriter(dst, reader.schema, compression="zstd", compression_level=3) as writer:
            for batch in reader:
                writer.write_batch(batch)
        seconds = time.perf_counter() - t0
        return {"seconds": seconds, "types": {f.name: str(f.type) for f in reader.schema}}
    raise ValueError(tool)


def child_cprofile(src: str, dst: str, top: int) -> dict:
    """Our ingest under cProfile: the hot functions, and the time grouped into phases."""
    import cProfile
    import pstats

    sys.path.insert(0, str(ROOT))
    from datalake.engine.ingest import IngestOptions, ingest

    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    profiler.enable()
    ingest(src, dst, IngestOptions())
    profiler.disable()
    seconds = time.perf_counter() - t0
    stats = pstats.Stats(profiler).stats  # {(file, line, func): (cc, calls, own, cumulative, callers)}

    def where(key) -> tuple[str, str]:
        return Path(key[0]).name, key[2]

    def cumulative(file: str, func: str) -> float:
        return sum(v[3] for k, v in stats.items() if where(k) == (file, func))

    def own(file: str, func: str) -> float:
        return sum(v[2] for k, v in stats.items() if where(k) == (file, func))

    def called_from(caller: tuple[str, str], file: str) -> float:
        """Cumulative time of the functions in `file` called directly by `caller`."""
        total = 0.0
        for key, (_cc, _calls, _own, _cum, callers) in stats.items():
            if Path(key[0]).name == file:
                total += sum(c[3] for ck, c in callers.items() if where(ck) == caller)
        return total

    # cProfile does not see into Cython methods: the CSV reader's read_next_batch counts as
    # the own time of the engine's `batches` generator, the Parquet writer's as core.py's.
    phases = {
        "sniff (encoding, delimiter, header on a sample)": cumulative("ingest.py", "__init__"),
        "CSV read + parse to text columns (pyarrow, 1 thread)": own("ingest.py", "batches"),
        "cell-size check (binary_length + max, per column per batch)": called_from(("ingest.py", "batches"), "compute.py"),
        "type inference on the first batch (regexes)": cumulative("ingest.py", "_infer_types"),
        "type conversion of each batch (cast text → timestamp/double)": called_from(("ingest.py", "_write_pass"), "infer.py"),
        "Parquet encode + zstd + write (write_table, close)": (
            cumulative("core.py", "write_table") + cumulative("core.py", "close")
        ),
        "sha256 + fsync of the result": cumulative("ingest.py", "_sha256"),
    }
    phases["other (batches and tables rebuilt, progress, imports)"] = max(0.0, seconds - sum(phases.values()))
    hot = sorted(
        ((v[2], v[1], f"{Path(k[0]).name}:{k[1]}({k[2]})" if k[0] != "~" else k[2]) for k, v in stats.items()),
        reverse=True,
    )
    return {
        "seconds": seconds,
        "phases": phases,
        "hot": [{"tottime": t, "calls": c, "where": w} for t, c, w in hot[:top]],
    }


def child_whatif(src: str, dst: str) -> dict:
    """Prototypes of changes to our ingest, built from the engine's own `infer`/`convert`.

    Same reader settings as the engine (text columns, 2 MB blocks, 1 thread for the
    reader unless said), types inferred on the first batch, 128 Ki-row row groups, zstd 3:
    - `dict strings`: Parquet dictionary encoding only for string columns (the engine lets
      Arrow try it on every column, and the float columns fall back after the first page);
    - `pipelined`: the reading and converting in one thread, the Parquet writing in another
      (both release the GIL), so that the two cores overlap;
    - both together.
    """
    import queue
    import threading

    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    sys.path.insert(0, str(ROOT))
    from datalake.engine.infer import convert, infer

    with open(src, encoding="utf-8") as f:
        names = f.readline().rstrip("\n").split(",")
    group = 128 * 1024

    def batches():
        reader = pcsv.open_csv(
            src,
            read_options=pcsv.ReadOptions(column_names=names, skip_rows=1, block_size=2 * MB, use_threads=False),
            convert_options=pcsv.ConvertOptions(column_types={n: pa.string() for n in names}, strings_can_be_null=True),
        )
        types = None
        for batch in reader:
            if types is None:
                types = [infer(col.slice(0, 50_000), n).type for col, n in zip(batch.columns, names, strict=True)]
            arrays = [convert(c, t).array for c, t in zip(batch.columns, types, strict=True)]
            yield pa.RecordBatch.from_arrays(arrays, names=names)

    def write(source, dictionary_strings: bool) -> None:
        buffered, rows, writer = [], 0, None
        for batch in source:
            if writer is None:
                strings = [f.name for f in batch.schema if pa.types.is_string(f.type)]
                dictionary = strings if dictionary_strings else True
                writer = pq.ParquetWriter(dst, batch.schema, compression="zstd", compression_level=3, use_dictionary=dictionary)
            buffered.append(batch)
            rows += batch.num_rows
            if rows >= group:
                writer.write_table(pa.Table.from_batches(buffered), row_group_size=group)
                buffered, rows = [], 0
        if buffered:
            writer.write_table(pa.Table.from_batches(buffered), row_group_size=group)
        writer.close()

    def pipelined():
        handoff: queue.Queue = queue.Queue(maxsize=4)
        failure = []

        def produce():
            try:
                for batch in batches():
                    handoff.put(batch)
            except BaseException as e:  # noqa: BLE001 - handed to the writer thread
                failure.append(e)
            handoff.put(None)

        thread = threading.Thread(target=produce, daemon=True)
        thread.start()
        while (batch := handoff.get()) is not None:
            yield batch
        thread.join()
        if failure:
            raise failure[0]

    out = {}
    for label, source, dictionary_strings in [
        ("sequential, dictionary on every column (as the engine)", batches, False),
        ("sequential, dictionary on string columns only", batches, True),
        ("pipelined, dictionary on every column", pipelined, False),
        ("pipelined, dictionary on string columns only", pipelined, True),
    ]:
        t0, c0 = time.perf_counter(), time.process_time()
        write(source(), dictionary_strings)
        out[label] = {
            "seconds": time.perf_counter() - t0,
            "cpu_seconds": time.process_time() - c0,
            "parquet_bytes": os.path.getsize(dst),
            "rows": pq.ParquetFile(dst).metadata.num_rows,
        }
        os.unlink(dst)
    return out


class _TimedConnection:
    """A duckdb connection that records how long each statement takes (for profile_parquet)."""

    def __init__(self, con):
        self.con = con
        self.timings: list[tuple[str, float]] = []

    def execute(self, sql, *args, **kwargs):
        t0 = time.perf_counter()
        result = self.con.execute(sql, *args, **kwargs)
        rows = result.fetchall()
        self.timings.append((sql, time.perf_counter() - t0))
        return _Fetched(rows)


class _Fetched:
    def __init__(self, rows):
        self.rows = rows

    def fetchone(self):
        return self.rows[0] if self.rows else None

    def fetchall(self):
        return self.rows


def peer_profile_sql(path: str, con) -> str:
    sys.path.insert(0, str(ROOT))
    from datalake.engine.profile import QUANTILES, _kind, quote

    exprs = ["count(*)"]
    for name, duck_type, *_rest in con.execute(f"DESCRIBE SELECT * FROM read_parquet({_literal(path)})").fetchall():
        q = quote(name)
        kind = _kind(duck_type)
        exprs += [f"count({q})", f"count(*) - count({q})", f"approx_count_distinct({q})", f"min({q})", f"max({q})"]
        if kind == "numeric":
            exprs += [f"avg({q}::DOUBLE)", f"stddev_samp({q}::DOUBLE)"]
            exprs += [f"approx_quantile({q}::DOUBLE, {p})" for p in QUANTILES]
    return f"SELECT {', '.join(exprs)} FROM read_parquet({_literal(path)})"


def child_profile(path: str, repeat: int) -> dict:
    sys.path.insert(0, str(ROOT))
    from datalake.engine.profile import connect, profile_parquet

    con = connect()  # 1 GB, 2 threads: what the engine uses
    sql = peer_profile_sql(path, con)
    con.execute(sql).fetchall()  # warm-up: the file in the page cache, duckdb loaded
    peer, ours, statements = [], [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        con.execute(sql).fetchall()
        peer.append(time.perf_counter() - t0)
        timed = _TimedConnection(con)
        t0 = time.perf_counter()
        profile = profile_parquet(path, con=timed)
        ours.append(time.perf_counter() - t0)
        statements.append([seconds for _sql, seconds in timed.timings])
    best = min(range(repeat), key=lambda i: ours[i])
    labels = ["describe", "count(*)", "scan 1 (aggregates)", "scan 2 (histograms, top values)"]
    return {
        "rows": profile.rows,
        "columns": len(profile.columns),
        "ours": ours,
        "peer": peer,
        "statements": dict(zip(labels, statements[best], strict=False)),
    }


def child_main(args) -> int:
    if args.child == "profile":
        out = child_profile(args.src, args.repeat)
    elif args.child == "whatif":
        out = child_whatif(args.src, args.dst)
    elif args.child == "cprofile":
        out = child_cprofile(args.src, args.dst, args.top)
    else:
        out = child_ingest(args.child, args.src, args.dst)
    print("RESULT " + json.dumps(out, default=str))
    return 0


# --- the parent --------------------------------------------------------------------------


def run_child(kind: str, args, src: str, dst: str = "", timeout: float = 600.0) -> dict:
    """Run one child; its result, wall time and peak RSS (wait4's ru_maxrss, KB on Linux)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--src", src, "--dst", dst]
    cmd += ["--repeat", str(args.repeat), "--top", str(args.top)]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT)
        deadline = t0 + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                return {"error": f"timed out after {timeout:g} s"}
            time.sleep(0.05)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode}: {stderr.strip()[-600:]}"}
    line = next(ln for ln in stdout.splitlines() if ln.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    result.update(
        wall=wall,
        peak_rss_mb=usage.ru_maxrss / 1024,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
    )
    return result


def parquet_rows(path: str) -> int:
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    return meta.num_rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, default=1024, help="CSV size in MB (2**20 bytes); default 1024")
    parser.add_argument("--tools", default=",".join(TOOLS), help="comma-separated: ours, duckdb, pyarrow, pyarrow-1t")
    parser.add_argument("--rounds", type=int, default=3, help="ingest runs per tool (interleaved); best is reported")
    parser.add_argument("--repeat", type=int, default=5, help="profile timings: best of this many")
    parser.add_argument("--no-profile", action="store_true", help="skip the profile benchmark")
    parser.add_argument("--cprofile", action="store_true", help="also run our ingest under cProfile")
    parser.add_argument("--whatif", action="store_true", help="also time prototypes of changes to our ingest")
    parser.add_argument("--top", type=int, default=15, help="hot functions listed with --cprofile")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed to each subprocess")
    parser.add_argument("--dir", default=None, help="where the temporary files go (default: the system's)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--src", help=argparse.SUPPRESS)
    parser.add_argument("--dst", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child_main(args)
    if not 1 <= args.size_mb <= 20 * 1024:
        parser.error("--size-mb must be 1..20480")
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    for tool in tools:
        if tool not in (*TOOLS, "pyarrow-1t"):
            parser.error(f"unknown tool {tool!r}")

    work = tempfile.mkdtemp(prefix="bench-ingest-", dir=args.dir)
    report: dict = {"size_mb": args.size_mb, "load": os.getloadavg()}
    try:
        csv_path = os.path.join(work, "sensors.csv")
        t0 = time.perf_counter()
        rows = generate_csv(csv_path, args.size_mb)
        csv_bytes = os.path.getsize(csv_path)
        report.update(rows=rows, csv_bytes=csv_bytes, generate_seconds=time.perf_counter() - t0)
        print(
            f"generated {csv_bytes / MB:,.1f} MB, {rows:,} rows ({csv_bytes / rows:.1f} bytes/row) "
            f"in {report['generate_seconds']:.1f} s",
            flush=True,
        )
        runs: dict[str, list[dict]] = {tool: [] for tool in tools}
        for round_ in range(1, args.rounds + 1):  # interleaved, so that a busy moment hits all tools alike
            for tool in tools:
                dst = os.path.join(work, f"{tool}.parquet")
                if os.path.exists(dst):
                    os.unlink(dst)
                result = run_child(tool, args, csv_path, dst, args.timeout)
                if "error" not in result:
                    result["rows"] = parquet_rows(dst)
                    result["parquet_bytes"] = os.path.getsize(dst)
                    if tool != "ours":
                        os.unlink(dst)  # keep the disk use down; ours is profiled below
                runs[tool].append(result)
                print(f"  round {round_} {tool}: {_short(result)}", flush=True)
        report["ingest"] = {tool: _best(rs) for tool, rs in runs.items()}
        ours_parquet = os.path.join(work, "ours.parquet")
        if "ours" in tools and "error" not in report["ingest"]["ours"]:
            if not args.no_profile:
                report["profile"] = run_child("profile", args, ours_parquet, "", args.timeout)
            if args.cprofile:
                dst = os.path.join(work, "cprofile.parquet")
                report["cprofile"] = run_child("cprofile", args, csv_path, dst, args.timeout)
            if args.whatif:
                dst = os.path.join(work, "whatif.parquet")
                report["whatif"] = run_child("whatif", args, csv_path, dst, args.timeout)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ok = print_report(report, args)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    return 0 if ok else 1


def _best(runs: list[dict]) -> dict:
    """The fastest run, with the peak RSS the highest of all runs and every run's seconds."""
    good = [r for r in runs if "error" not in r]
    if not good:
        return runs[0]
    best = dict(min(good, key=lambda r: r["seconds"]))
    best["peak_rss_mb"] = max(r["peak_rss_mb"] for r in good)
    best["all_seconds"] = [r["seconds"] for r in good]
    best["rows_all"] = sorted({r["rows"] for r in good})
    return best


def _short(result: dict) -> str:
    if "error" in result:
        return "ERROR " + result["error"]
    return f"{result['seconds']:.1f} s, {result['peak_rss_mb']:.0f} MB peak RSS, {result['rows']:,} rows"


def print_report(report: dict, args) -> bool:
    ok = True
    mb = report["csv_bytes"] / MB
    print()
    print(
        f"Ingest: {mb:,.1f} MB sensor CSV, {report['rows']:,} rows → zstd Parquet (one subprocess per tool and run; "
        f"best of {args.rounds}, peak RSS the highest of all runs; load average at start {report['load'][0]:.2f}, "
        f"at end {os.getloadavg()[0]:.2f})"
    )
    header = f"{'tool':<11} {'seconds':>8} {'MB/s':>7} {'rows/s':>11} {'peak RSS':>9} {'CPU s':>7} {'parquet MB':>10}"
    header += f" {'rows':>12}"
    print(header)
    print("-" * len(header))
    results = report["ingest"]
    for tool, r in results.items():
        if "error" in r:
            print(f"{tool:<11} ERROR {r['error']}")
            ok = False
            continue
        print(
            f"{tool:<11} {r['seconds']:>8.2f} {mb / r['seconds']:>7.1f} {report['rows'] / r['seconds']:>11,.0f} "
            f"{r['peak_rss_mb']:>6.0f} MB {r['cpu_seconds']:>7.1f} {r['parquet_bytes'] / MB:>10.1f} {r['rows']:>12,}"
        )
    good = {t: r for t, r in results.items() if "error" not in r}
    every = "; ".join(f"{t} " + ", ".join(f"{x:.2f}" for x in r["all_seconds"]) for t, r in good.items())
    print(f"seconds of every run: {every}")
    counts = {n for r in good.values() for n in r["rows_all"]}
    if counts == {report["rows"]}:
        print(f"row counts: all {len(good)} equal to the generated {report['rows']:,}")
    else:
        ok = False
        print(f"ROW COUNTS DIFFER: generated {report['rows']:,}; " + ", ".join(f"{t} {r['rows']:,}" for t, r in good.items()))
    if "ours" in good:
        ours = good["ours"]
        for peer in [t for t in good if t != "ours"]:
            ratio = good[peer]["seconds"] / ours["seconds"]
            print(f"ours / {peer} throughput: {ratio:.2f}×")
        if "duckdb" in good:
            ratio = good["duckdb"]["seconds"] / ours["seconds"]
            met_speed = ratio >= TARGET_RATIO
            met_rss = ours["peak_rss_mb"] <= TARGET_RSS_MB
            print(
                f"target ≥ {TARGET_RATIO:.1f}× duckdb COPY throughput: {'met' if met_speed else 'NOT met'} ({ratio:.2f}×); "
                f"peak RSS ≤ {TARGET_RSS_MB} MB: {'met' if met_rss else 'NOT met'} ({ours['peak_rss_mb']:.0f} MB)"
            )
        if "duckdb" in good:
            print(f"duckdb threads: {good['duckdb'].get('threads')}")
        print("our column types: " + ", ".join(f"{k} {v}" for k, v in ours["types"].items()))
        if ours.get("warnings"):
            print("our warnings: " + "; ".join(ours["warnings"]))
    profile = report.get("profile")
    if profile:
        print()
        if "error" in profile:
            print(f"Profile: ERROR {profile['error']}")
            ok = False
        else:
            best_ours, best_peer = min(profile["ours"]), min(profile["peer"])
            ratio = best_ours / best_peer
            print(
                f"Profile of our Parquet ({profile['rows']:,} rows, {profile['columns']} columns), "
                f"best of {len(profile['ours'])}, duckdb 1 GB / 2 threads"
            )
            print(f"  profile_parquet():            {best_ours:.3f} s (runs: {_runs(profile['ours'])})")
            print(f"  one duckdb aggregate query:   {best_peer:.3f} s (runs: {_runs(profile['peer'])})")
            met = "met" if ratio <= TARGET_PROFILE_RATIO else "NOT met"
            print(f"  ratio {ratio:.2f}× — target ≤ {TARGET_PROFILE_RATIO}×: {met}")
            print("  profile_parquet() statements: " + ", ".join(f"{k} {v:.3f} s" for k, v in profile["statements"].items()))
    cp = report.get("cprofile")
    if cp:
        print()
        if "error" in cp:
            print(f"cProfile: ERROR {cp['error']}")
        else:
            print(f"Our ingest under cProfile: {cp['seconds']:.2f} s, peak RSS {cp['peak_rss_mb']:.0f} MB")
            for phase, seconds in cp["phases"].items():
                print(f"  {seconds:>7.2f} s {seconds / cp['seconds'] * 100:>5.1f}%  {phase}")
            print(f"  top {len(cp['hot'])} by own time:")
            for h in cp["hot"]:
                print(f"  {h['tottime']:>7.2f} s {h['calls']:>8,}  {h['where']}")
    whatif = report.get("whatif")
    if whatif:
        print()
        if "error" in whatif:
            print(f"What-if: ERROR {whatif['error']}")
        else:
            print(f"What-if prototypes of our ingest (one process, peak RSS {whatif['peak_rss_mb']:.0f} MB over all four):")
            duck = report["ingest"].get("duckdb", {}).get("seconds")
            for label, r in whatif.items():
                if not isinstance(r, dict) or "seconds" not in r:
                    continue
                vs = f", {duck / r['seconds']:.2f}× duckdb COPY's best" if duck else ""
                print(
                    f"  {r['seconds']:>7.2f} s ({mb / r['seconds']:.1f} MB/s{vs}), CPU {r['cpu_seconds']:.1f} s, "
                    f"{r['parquet_bytes'] / MB:.1f} MB, {r['rows']:,} rows  {label}"
                )
    return ok


def _runs(values: list[float]) -> str:
    return ", ".join(f"{v:.3f}" for v in values) + (f"; median {statistics.median(values):.3f}" if len(values) > 1 else "")


def _literal(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


if __name__ == "__main__":
    sys.exit(main())
