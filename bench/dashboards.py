"""Model-dashboard benchmark: 1 000 000 logged predictions over 30 days, read through the rollups vs the raw table.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/dashboards.py
    .venv/bin/python bench/dashboards.py --logs 200000 --repeat 3

A scratch database is created on DATABASE_URL's PostgreSQL server (and dropped at the end) and
migrated. One department, one member, one classifier with two versions (v2 served the last ten
days). `--logs` prediction requests are inserted by one INSERT … SELECT generate_series over the
30 days before now: 2 % refused (400 or 503), latencies exponential around 40 ms, one to four
rows each with labels "ok", "scratch" and "dent". Then `VACUUM ANALYZE`, and
monitoring.rollups.roll_up runs until it is caught up (timed).

Timed, in the same process and run, `--repeat` times each (median and best printed):

- **rollups:** monitoring.selectors.model_dashboard(member, model, now − 30 days, now) — what
  the page and the API call: closed rollups (days, hours and minutes at the edges) plus the
  raw tail after the last closed minute;
- **raw:** the same call with the RollupState rows removed inside a transaction that is rolled
  back, so the very same code reads every figure from the raw PredictionLog table (aggregates
  grouped by day and version, and the outputs for the distribution).

Both answers are compared (they must be equal) and the ratio printed. Target (issue 7): the
rollup read ≤ 1 s of server time and ≥ 10× faster than the raw read.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logs", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(args)

    import psycopg

    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    if not url.startswith("postgres"):
        print("bench/dashboards.py needs DATABASE_URL to name a PostgreSQL server", file=sys.stderr)
        return 2
    admin = url.rsplit("/", 1)[0] + "/postgres"
    name = f"lepton_bench_dashboards_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")
    var_dir = tempfile.mkdtemp(prefix="lepton-bench-dashboards-")
    env = {**os.environ, "DATABASE_URL": url.rsplit("/", 1)[0] + f"/{name}", "LEPTON_VAR_DIR": var_dir,
           "DJANGO_SETTINGS_MODULE": "lepton.settings"}  # fmt: skip
    try:
        python = sys.executable
        subprocess.run([python, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
        child = [python, __file__, "--child", "--logs", str(args.logs), "--days", str(args.days), "--repeat", str(args.repeat)]
        return subprocess.run(child, cwd=ROOT, env=env).returncode
    finally:
        with psycopg.connect(admin, autocommit=True) as con:
            con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _child(args) -> int:
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.db.models import Count
    from django.utils import timezone

    from lepton.models import Department, Membership
    from models_repo.models import ModelAlias, ModelVersion, PredictionLog, RegisteredModel
    from monitoring import rollups, selectors
    from monitoring.models import PredictionRollup, RollupState

    User = get_user_model()
    department = Department.objects.create(slug="production", name="Production")
    member = User.objects.create_user("bench-member", password="x")
    Membership.objects.create(user=member, department=department, role="member")
    model = RegisteredModel.objects.create(department=department, slug="defects", name="Defects", task="classification")
    v1 = ModelVersion.objects.create(model=model, number=1, flavor="sklearn", task="classification", artifact_sha256="a" * 64)
    v2 = ModelVersion.objects.create(model=model, number=2, flavor="sklearn", task="classification", artifact_sha256="b" * 64)
    ModelAlias.objects.create(model=model, name="production", version=v2)
    now = timezone.now()
    table = PredictionLog._meta.db_table
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (prediction_id, model_id, version_id, created_at, rows, latency_ms, status_code, error,
                                 inputs, outputs, source)
            SELECT gen_random_uuid(), %(model)s,
                   CASE WHEN t > %(now)s - interval '10 days' THEN %(v2)s ELSE %(v1)s END,
                   t, CASE WHEN s < 0.98 THEN r ELSE 0 END, -ln(1 - random()) * 40,
                   CASE WHEN s < 0.98 THEN 200 WHEN s < 0.99 THEN 400 ELSE 503 END,
                   CASE WHEN s < 0.98 THEN '' ELSE 'refused' END, '[]'::jsonb,
                   CASE WHEN s >= 0.98 THEN '[]'::jsonb
                        ELSE (SELECT jsonb_agg((ARRAY['ok', 'ok', 'ok', 'scratch', 'dent'])[1 + floor(random() * 5)::int + 0 * k])
                              FROM generate_series(1, r) AS k) END,
                   'api'
            FROM (SELECT %(now)s - random() * interval '{int(args.days)} days' AS t, random() AS s,
                         1 + floor(random() * 4)::int AS r
                  FROM generate_series(1, %(n)s)) AS g
            """,
            {"model": model.pk, "v1": v1.pk, "v2": v2.pk, "now": now, "n": args.logs},
        )
        cursor.execute(f"VACUUM ANALYZE {table}")
    print(f"inserted {PredictionLog.objects.count():,} prediction logs over {args.days} days in "
          f"{time.perf_counter() - started:.1f} s")  # fmt: skip
    started, runs = time.perf_counter(), 0
    while True:
        runs += 1
        if rollups.roll_up(now=now)["caught_up"]:
            break
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {PredictionRollup._meta.db_table}")
    rows = dict(PredictionRollup.objects.values("grain").annotate(n=Count("pk")).values_list("grain", "n"))
    print(f"roll_up: {runs} runs in {time.perf_counter() - started:.1f} s; rollup rows {rows}")

    start = now - timedelta(days=args.days)

    def timed(label):
        times = []
        for _ in range(args.repeat):
            began = time.perf_counter()
            found = selectors.model_dashboard(member, model.pk, start, now)
            times.append(time.perf_counter() - began)
        return found, times

    selectors.model_dashboard(member, model.pk, start, now)  # warm: roles cached, connection open
    through_rollups, rollup_times = timed("rollups")
    with transaction.atomic():
        RollupState.objects.all().delete()
        direct, raw_times = timed("raw")
        transaction.set_rollback(True)
    assert RollupState.objects.count() == 3
    keys = ("x", "requests", "errors", "error_rate", "p50", "p95", "p99", "versions", "outputs", "totals")
    differ = [k for k in keys if not _close(through_rollups[k], direct[k])]
    for key in differ:
        print(f"differs: {key}\n  rollups {through_rollups[key]}\n  raw     {direct[key]}", file=sys.stderr)
    same = not differ
    fast, slow = statistics.median(rollup_times), statistics.median(raw_times)
    print(f"\nmodel_dashboard over {args.days} days, {through_rollups['totals']['requests']:,} requests, "
          f"{len(through_rollups['x'])} daily buckets, {args.repeat} runs each")  # fmt: skip
    print(f"{'read':<10} {'median':>10} {'best':>10}")
    print(f"{'rollups':<10} {fast * 1000:>8.1f}ms {min(rollup_times) * 1000:>8.1f}ms")
    print(f"{'raw':<10} {slow * 1000:>8.1f}ms {min(raw_times) * 1000:>8.1f}ms")
    print(f"\nratio raw/rollups (medians): {slow / fast:.1f}x; same answer: {same}")
    print(f"target: rollups ≤ 1000 ms ({'met' if fast <= 1 else 'NOT met'}), ≥ 10x ({'met' if slow / fast >= 10 else 'NOT met'})")
    return 0 if same else 1


def _close(a, b) -> bool:
    """Equal, floats within 1e-9 relative (sums added in another order differ in the last digits)."""
    import math

    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return a == b


if __name__ == "__main__":
    sys.exit(main())
