"""Job-system benchmark: dispatch throughput and pickup latency, beside a bare Celery peer.

    .venv/bin/python bench/jobs.py                       # both backends, defaults below
    .venv/bin/python bench/jobs.py --backends embedded --jobs 300 --paced 60

For each backend — `embedded` (SQLite + the filesystem broker, in a temporary
LEPTON_VAR_DIR) and `redis` (Redis broker + PostgreSQL, in a scratch database created
and dropped here, under its own Redis key prefix) — a child process sets up a fresh
database and starts the real parts as subprocesses: `celery -A lepton worker -Q cpu`
and `manage.py run_dispatcher`. Then, with the same worker:

- jobs, burst: N `bench.noop` jobs are submitted through `job_submit` inside one
  transaction, so all become visible at one instant t0; measured: N / (last finish − t0),
  and pickup = started_at − t0 (this includes the wait behind earlier jobs);
- jobs, paced: M jobs submitted one at a time through `job_submit` at --rate per second
  (below capacity); pickup = the job's own wait_seconds (queued_at → started_at);
- celery, burst and paced: the same counts of a bare task (`bench.celery_noop`) sent with
  `send_task` to the same queue; pickup = task start − send time.

Tuning goes only through settings (environment): --backlog sets
LEPTON_DISPATCH_BACKLOG_PER_SLOT, --concurrency the worker's slots, --interval
LEPTON_DISPATCH_INTERVAL. The bench department's max_concurrent_jobs is raised to 1000
so that the department quota (default 4) does not cap the measurement. Everything talks
to 127.0.0.1 only; every phase has a time limit.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PHASE_TIMEOUT = 180.0


# --- the parent: one child process per backend -------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="embedded,redis", help="comma-separated: embedded, redis")
    parser.add_argument("--jobs", type=int, default=500, help="jobs (and bare tasks) in the burst")
    parser.add_argument("--paced", type=int, default=100, help="jobs (and bare tasks) in the paced phase")
    parser.add_argument("--rate", type=float, default=20.0, help="submissions per second in the paced phase")
    parser.add_argument("--concurrency", type=int, default=2, help="worker slots (celery --concurrency)")
    parser.add_argument("--backlog", type=int, default=None, help="LEPTON_DISPATCH_BACKLOG_PER_SLOT (default: the setting's)")
    parser.add_argument("--interval", type=float, default=None, help="LEPTON_DISPATCH_INTERVAL (default: the setting's)")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432", help="server for the scratch database")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.jobs < 1 or args.jobs > 20000 or args.paced < 0 or args.paced > 5000:
        parser.error("--jobs must be 1..20000 and --paced 0..5000")
    if args.child:
        return child(args)

    results = []
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        if backend not in ("embedded", "redis"):
            parser.error(f"unknown backend {backend!r}")
        results.append(run_backend(backend, args))
    print_report(results, args)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0 if all("error" not in r for r in results) else 1


def _env_for(backend: str, args, var_dir: str, database_url: str | None, prefix: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "LEPTON_BROKER_PREFIX")}
    env.update(
        LEPTON_VAR_DIR=var_dir,
        LEPTON_STORAGE_URL=Path(var_dir, "lake").as_uri(),
        LEPTON_JOB_MODULES="bench.kinds",
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    if args.backlog is not None:
        env["LEPTON_DISPATCH_BACKLOG_PER_SLOT"] = str(args.backlog)
    if args.interval is not None:
        env["LEPTON_DISPATCH_INTERVAL"] = str(args.interval)
    if backend == "redis":
        env.update(DATABASE_URL=database_url, REDIS_URL=args.redis, LEPTON_BROKER_PREFIX=prefix)
    return env


def run_backend(backend: str, args) -> dict:
    run_id = uuid.uuid4().hex[:8]
    var_dir = tempfile.mkdtemp(prefix=f"lepton-bench-{backend}-")
    database = f"lepton_bench_{run_id}"
    prefix = f"lepton-bench-{run_id}:"
    database_url = f"{args.postgres.rstrip('/')}/{database}" if backend == "redis" else None
    if backend == "redis":
        _admin_sql(args.postgres, f'CREATE DATABASE "{database}"')
    try:
        env = _env_for(backend, args, var_dir, database_url, prefix)
        argv = [sys.executable, str(Path(__file__).resolve()), "--child", backend]
        for name in ("jobs", "paced", "rate", "concurrency"):
            argv += [f"--{name}", str(getattr(args, name))]
        print(f"[{backend}] running (var dir {var_dir}{', database ' + database if database_url else ''})…", flush=True)
        done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=4 * PHASE_TIMEOUT + 120)
        sys.stderr.write(done.stderr[-4000:] if done.returncode else "")
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode or not lines:
            return {"backend": backend, "error": f"child exited {done.returncode}: {done.stdout[-2000:]}"}
        return json.loads(lines[-1])
    finally:
        if backend == "redis":
            _admin_sql(args.postgres, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            _drop_redis_keys(args.redis, prefix)
        subprocess.run(["rm", "-rf", var_dir], check=False)


def _admin_sql(server_url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{server_url.rstrip('/')}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def _drop_redis_keys(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


# --- the child: one backend, real worker and dispatcher subprocesses ---------------------


def child(args) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lepton.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    hostname = f"bench-{uuid.uuid4().hex[:6]}@127.0.0.1"
    logs = Path(settings.VAR_DIR)
    procs = {}
    try:
        procs["worker"] = _start(
            "worker",
            [
                sys.executable, "-m", "celery", "-A", "lepton", "worker",
                "-Q", "cpu", "--concurrency", str(args.concurrency), "-n", hostname,
                "--include", "bench.kinds", "--without-gossip", "--without-mingle", "--loglevel", "WARNING",
            ],
            logs,
        )  # fmt: skip
        _wait(lambda: _worker_live(hostname), 90, "the worker's heartbeat", procs)
        procs["dispatcher"] = _start("dispatcher", [sys.executable, str(ROOT / "manage.py"), "run_dispatcher"], logs)
        department, actor = _bench_department()
        # Warm-up: the first job and task pay for imports and connections in the worker processes.
        _jobs_burst(department, actor, max(2, args.concurrency), procs)
        _celery_burst(max(2, args.concurrency), procs)

        result = {
            "backend": "embedded" if not settings.REDIS_URL else "redis",
            "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
            "broker": "filesystem" if not settings.REDIS_URL else "redis",
            "concurrency": args.concurrency,
            "backlog_per_slot": settings.LEPTON_DISPATCH_BACKLOG_PER_SLOT,
            "dispatch_interval": settings.LEPTON_DISPATCH_INTERVAL,
            "jobs_burst": _jobs_burst(department, actor, args.jobs, procs),
            "celery_burst": _celery_burst(args.jobs, procs),
        }
        if args.paced:
            result["jobs_paced"] = _jobs_paced(department, actor, args.paced, args.rate, procs)
            result["celery_paced"] = _celery_paced(args.paced, args.rate, procs)
        print(json.dumps(result))
        return 0
    except Exception:
        for name in procs:
            log = logs / f"{name}.log"
            if log.exists():
                sys.stderr.write(f"----- {name} log (tail) -----\n{log.read_text(errors='replace')[-3000:]}\n")
        raise
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _start(name: str, argv: list[str], logs: Path) -> subprocess.Popen:
    return subprocess.Popen(argv, cwd=ROOT, stdout=open(logs / f"{name}.log", "ab"), stderr=subprocess.STDOUT)


def _wait(predicate, timeout: float, what: str, procs: dict) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"the {name} exited with {proc.returncode} while waiting for {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)  # polling the database less often leaves the CPU to what is measured


def _worker_live(hostname: str) -> bool:
    from lepton.jobs.models import WorkerHeartbeat

    return WorkerHeartbeat.objects.filter(hostname=hostname).exists()


def _bench_department():
    from django.contrib.auth import get_user_model

    from lepton import services

    user = get_user_model().objects.create_superuser("bench", "bench@localhost", None)
    department = services.department_create(
        actor=user, slug="bench", name="Benchmark", max_concurrent_jobs=1000, gpu_minutes_per_month=0
    )
    return department, user


def _cpu_seconds(root_pid: int) -> float:
    """CPU time (user + system) used so far by a process and its live descendants (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    total, todo = 0.0, [root_pid]
    while todo:
        pid = todo.pop()
        total += stats.get(pid, (0, 0.0))[1]
        todo.extend(child for child, (ppid, _cpu) in stats.items() if ppid == pid)
    return total


class _CpuMeter:
    """CPU seconds each part used during one phase: where the time goes on a shared machine."""

    def __init__(self, procs: dict):
        self.procs = procs
        self.start = {name: _cpu_seconds(p.pid) for name, p in procs.items()}
        self.own = time.process_time()

    def read(self) -> dict:
        used = {name: round(_cpu_seconds(p.pid) - self.start[name], 2) for name, p in self.procs.items()}
        used["bench"] = round(time.process_time() - self.own, 2)
        return used


def _stats(values: list[float]) -> dict:
    values = sorted(values)
    if not values:
        return {}

    def pct(p: float) -> float:
        return values[min(len(values) - 1, max(0, round(p / 100 * len(values)) - 1))]

    return {
        "p50": round(statistics.median(values), 4),
        "p95": round(pct(95), 4),
        "max": round(values[-1], 4),
    }


def _jobs_finished(ids, n):
    from lepton.jobs.models import Job

    return Job.objects.filter(pk__in=ids, status__in=["succeeded", "failed", "cancelled"]).count() >= n


def _job_rows(ids):
    from lepton.jobs.models import Job

    rows = list(Job.objects.filter(pk__in=ids).values("status", "queued_at", "started_at", "finished_at", "wait_seconds"))
    bad = [r["status"] for r in rows if r["status"] != "succeeded"]
    if bad:
        raise RuntimeError(f"{len(bad)} bench jobs did not succeed: {sorted(set(bad))}")
    return rows


def _jobs_burst(department, actor, n: int, procs) -> dict:
    from django.db import transaction
    from django.utils import timezone

    from lepton.jobs.services import job_submit

    with transaction.atomic():
        ids = [job_submit(actor=actor, department=department, kind="bench.noop").pk for _ in range(n)]
    t0 = timezone.now()
    meter = _CpuMeter(procs)
    _wait(lambda: _jobs_finished(ids, n), PHASE_TIMEOUT, f"{n} jobs", procs)
    cpu = meter.read()
    rows = _job_rows(ids)
    elapsed = (max(r["finished_at"] for r in rows) - t0).total_seconds()
    return {
        "n": n,
        "seconds": round(elapsed, 3),
        "per_second": round(n / elapsed, 1),
        "pickup": _stats([max(0.0, (r["started_at"] - t0).total_seconds()) for r in rows]),
        "run": _stats([(r["finished_at"] - r["started_at"]).total_seconds() for r in rows]),
        "cpu_seconds": cpu,
    }


def _jobs_paced(department, actor, n: int, rate: float, procs) -> dict:
    from lepton.jobs.services import job_submit

    ids = []
    start = time.monotonic()
    for i in range(n):
        time.sleep(max(0.0, start + i / rate - time.monotonic()))
        ids.append(job_submit(actor=actor, department=department, kind="bench.noop").pk)
    _wait(lambda: _jobs_finished(ids, n), PHASE_TIMEOUT, f"{n} paced jobs", procs)
    rows = _job_rows(ids)
    return {"n": n, "rate": rate, "pickup": _stats([r["wait_seconds"] for r in rows])}


def _celery_send(out_dir: str, index: int) -> None:
    from lepton.celery import app

    app.send_task("bench.celery_noop", args=[time.time(), out_dir, index], queue="cpu")


def _celery_results(out_dir: Path, n: int, procs) -> list[tuple[float, float, float]]:
    def done() -> bool:
        return sum(1 for p in out_dir.iterdir() if not p.name.endswith(".tmp")) >= n

    _wait(done, PHASE_TIMEOUT, f"{n} bare Celery tasks", procs)
    return [tuple(map(float, p.read_text().split())) for p in out_dir.iterdir() if not p.name.endswith(".tmp")]


def _celery_burst(n: int, procs) -> dict:
    out_dir = Path(tempfile.mkdtemp(prefix="celery-burst-", dir=os.environ["LEPTON_VAR_DIR"]))
    meter = _CpuMeter(procs)
    t0 = time.time()
    for i in range(n):
        _celery_send(str(out_dir), i)
    rows = _celery_results(out_dir, n, procs)
    cpu = meter.read()
    elapsed = max(finished for _sent, _started, finished in rows) - t0
    return {
        "n": n,
        "seconds": round(elapsed, 3),
        "per_second": round(n / elapsed, 1),
        "pickup": _stats([started - sent for sent, started, _finished in rows]),
        "run": _stats([finished - started for _sent, started, finished in rows]),
        "cpu_seconds": cpu,
    }


def _celery_paced(n: int, rate: float, procs) -> dict:
    out_dir = Path(tempfile.mkdtemp(prefix="celery-paced-", dir=os.environ["LEPTON_VAR_DIR"]))
    start = time.monotonic()
    for i in range(n):
        time.sleep(max(0.0, start + i / rate - time.monotonic()))
        _celery_send(str(out_dir), i)
    rows = _celery_results(out_dir, n, procs)
    return {"n": n, "rate": rate, "pickup": _stats([started - sent for sent, started, _finished in rows])}


# --- the report --------------------------------------------------------------------------


def print_report(results: list[dict], args) -> None:
    print()
    print(f"Job system vs bare Celery — burst of {args.jobs}, paced {args.paced} at {args.rate:g}/s, worker --concurrency")
    print(f"{args.concurrency}; targets: ≥ 100 jobs/s, p50 pickup ≤ 0.5 s")
    header = f"{'backend':<10} {'path':<7} {'burst/s':>8} {'burst p50':>10} {'burst p95':>10} {'paced p50':>10} {'paced p95':>10}"
    print(header)
    print("-" * len(header))
    for r in results:
        if "error" in r:
            print(f"{r['backend']:<10} ERROR {r['error'][:300]}")
            continue
        for path in ("jobs", "celery"):
            burst, paced = r[f"{path}_burst"], r.get(f"{path}_paced", {"pickup": {}})
            print(
                f"{r['backend']:<10} {path:<7} {burst['per_second']:>8.1f} {burst['pickup']['p50']:>9.3f}s "
                f"{burst['pickup']['p95']:>9.3f}s {paced['pickup'].get('p50', float('nan')):>9.3f}s "
                f"{paced['pickup'].get('p95', float('nan')):>9.3f}s"
            )
        ratio = r["jobs_burst"]["per_second"] / r["celery_burst"]["per_second"]
        line = f"{'':<10} jobs/celery throughput ratio {ratio:.2f}"
        if "jobs_paced" in r:
            jobs_p50, celery_p50 = r["jobs_paced"]["pickup"]["p50"], r["celery_paced"]["pickup"]["p50"]
            line += f"; paced p50 pickup jobs {jobs_p50:.3f}s vs celery {celery_p50:.3f}s"
        print(line)
        print(
            f"{'':<10} ({r['database']} + {r['broker']} broker, backlog per slot {r['backlog_per_slot']}, "
            f"dispatch interval {r['dispatch_interval']} s)"
        )
        for path in ("jobs", "celery"):
            burst = r[f"{path}_burst"]
            cpu = ", ".join(f"{name} {seconds:.1f}" for name, seconds in burst["cpu_seconds"].items())
            print(f"{'':<10} {path} burst: {burst['seconds']:.1f} s wall, CPU s: {cpu}; handler p50 {burst['run']['p50']:.4f}s")


if __name__ == "__main__":
    sys.exit(main())
