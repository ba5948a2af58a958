"""Catalog-list benchmark: the dataset list API with 10 000 datasets, 32 concurrent clients on loopback.

    .venv/bin/python bench/catalog.py                    # 10 000 datasets, 32 clients, 20 s per phase
    .venv/bin/python bench/catalog.py --datasets 2000 --seconds 10

A scratch PostgreSQL database (created here and dropped at the end) gets five departments,
`--datasets` datasets spread over them with tags, descriptions and column names, and one to
three published versions each (rows only: the list reads no files). One user is a member of
every department, so every dataset is visible and the policy's filter is as wide as it gets.
gunicorn serves `lepton.wsgi` on 127.0.0.1 with `--web-workers` processes; `wrk` (Debian's
package) drives it with `--clients` keep-alive connections and a bearer token:

- catalog: `GET /api/v1/datasets/?page=N` over random pages, a third of them with a filter
  (`q=`, `tag=`, `format=`, `quality=`, `department=`), the default page size of 50;
- peer: `GET /api/v1/me` on the same server, same token, same clients: the same
  authentication, throttling and JSON rendering with one small query — the floor the
  catalog's own work adds to.

Printed: requests/s and latency p50/p90/p99 of each, the catalog/peer p99 ratio, and the
number of SQL queries one catalog page makes at page sizes 10, 50 and 200 (measured in a
child process with Django's CaptureQueriesContext), which must not depend on the page size.
Target (issue 4): catalog p99 ≤ 100 ms at 32 clients. Only 127.0.0.1 is contacted; each
wrk phase runs a fixed number of seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
WRK_SCRIPT = r"""
math.randomseed(42)
local token = os.getenv("BENCH_TOKEN")
local pages = tonumber(os.getenv("BENCH_PAGES"))
local filters = {"q=sensor", "tag=line-3", "format=csv", "quality=passing", "department=quality", "q=%E6%B8%A9%E5%BA%A6"}
wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["Accept"] = "application/json"
request = function()
  local path = os.getenv("BENCH_PATH")
  if path == "catalog" then
    local page = math.random(1, pages)
    if math.random(1, 3) == 1 then
      local f = filters[math.random(1, #filters)]
      return wrk.format("GET", "/api/v1/datasets/?page=1&" .. f)
    end
    return wrk.format("GET", "/api/v1/datasets/?page=" .. page)
  end
  return wrk.format("GET", path)
end
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--web-workers", type=int, default=4)
    parser.add_argument("--child", choices=["setup"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "setup":
        return _setup(args.datasets)
    if shutil.which("wrk") is None:
        print("bench/catalog.py needs wrk: apt-get install wrk", file=sys.stderr)
        return 2

    import psycopg

    name = f"lepton_bench_catalog_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")
    var_dir = tempfile.mkdtemp(prefix="lepton-bench-catalog-")
    env = {
        **os.environ,
        "DATABASE_URL": PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}",
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "LEPTON_VAR_DIR": var_dir,
        "LEPTON_BROKER_PREFIX": f"{name}:",
        "API_RATE_LIMIT": "100000000/min",
        "DJANGO_SETTINGS_MODULE": "lepton.settings",
    }
    server = None
    try:
        python = sys.executable
        subprocess.run([python, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
        started = time.monotonic()
        setup = subprocess.run(
            [python, __file__, "--child", "setup", "--datasets", str(args.datasets)],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        facts = json.loads(setup.stdout.strip().splitlines()[-1])
        print(f"setup: {args.datasets} datasets, {facts['versions']} versions in {time.monotonic() - started:.1f} s")
        print(f"queries per catalog page: {facts['queries']}  (page size: count)")
        port = _free_port()
        server = subprocess.Popen(
            [python, "-m", "gunicorn", "lepton.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(args.web_workers)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(var_dir, "gunicorn.log"), "w"),  # noqa: SIM115 (closed with the process)
            start_new_session=True,
        )
        try:
            _wait_up(port, facts["token"])
        except RuntimeError:
            print(Path(var_dir, "gunicorn.log").read_text()[-3000:], file=sys.stderr)
            raise
        pages = max(1, args.datasets // 50)
        results = {}
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(WRK_SCRIPT)
        for label, path in (("peer /api/v1/me", "/api/v1/me"), ("catalog list", "catalog")):
            # A short warm-up fills each gunicorn worker's connection and caches.
            _wrk(port, script.name, path, facts["token"], pages, args.clients, 3)
            results[label] = _wrk(port, script.name, path, facts["token"], pages, args.clients, args.seconds)
        os.unlink(script.name)
        print(f"\n{args.clients} clients, {args.web_workers} gunicorn workers, {args.seconds} s each")
        print(f"{'endpoint':<20} {'req/s':>8} {'p50':>9} {'p90':>9} {'p99':>9} {'errors':>7}")
        for label, r in results.items():
            print(f"{label:<20} {r['rps']:>8.1f} {r['p50']:>7.1f}ms {r['p90']:>7.1f}ms {r['p99']:>7.1f}ms {r['errors']:>7}")
        catalog, peer = results["catalog list"], results["peer /api/v1/me"]
        print(
            f"\ncatalog/peer p99 ratio: {catalog['p99'] / peer['p99']:.2f}"
            f"  (catalog p99 {catalog['p99']:.1f} ms; target ≤ 100 ms)"
        )
        return 0
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as con:
            con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        shutil.rmtree(var_dir, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(port: int, token: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("gunicorn did not answer /api/v1/me with 200 within 60 s")


def _wrk(port, script, path, token, pages, clients, seconds) -> dict:
    env = {**os.environ, "BENCH_TOKEN": token, "BENCH_PAGES": str(pages), "BENCH_PATH": path}
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{clients}",
            f"-d{seconds}s",
            "--latency",
            "--timeout",
            "10s",
            "-s",
            script,
            f"http://127.0.0.1:{port}",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    latency = {m[0]: _ms(m[1], m[2]) for m in re.findall(r"^\s+(50|90|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    return {"rps": rps, "p50": latency["50"], "p90": latency["90"], "p99": latency["99"], "errors": errors}


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


# --- the setup child (Django loaded) ------------------------------------------------------


def _setup(count: int) -> int:
    import random

    import django

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lepton.settings")
    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment
    from django.utils import timezone

    from datalake.models import Dataset, DatasetVersion
    from lepton.models import Department, Membership
    from lepton.services import token_create

    rng = random.Random(7)
    departments = [
        Department.objects.create(slug=slug, name=slug.replace("-", " ").title())
        for slug in ("production", "quality", "maintenance", "supply-chain", "customer-service")
    ]
    user = get_user_model().objects.create_user("bench", password="bench-password")
    Membership.objects.bulk_create(Membership(user=user, department=d, role="member") for d in departments)
    words = ["sensor", "press", "line", "vibration", "温度", "demand", "ticket", "inspection", "batch", "oven"]
    formats = ["csv", "parquet", "json", "xlsx", "images"]
    qualities = ["passing", "warning", "unchecked", "failing"]
    now = timezone.now()
    datasets = [
        Dataset(
            department=departments[i % len(departments)],
            slug=f"dataset-{i:05d}",
            name=f"{rng.choice(words).title()} {rng.choice(words)} {i}",
            description=f"Generated for the catalog benchmark: {' '.join(rng.sample(words, 4))}.",
            tags=sorted(rng.sample(["line-3", "sensors", "daily", "gbk", "images", "forecast"], 2)),
            columns_text="\n".join(rng.sample(["machine_id", "temperature", "温度", "vibration", "rpm", "status"], 4)),
            format=rng.choice(formats),
            quality_status=rng.choice(qualities),
            updated_at=now,
        )
        for i in range(count)
    ]
    Dataset.objects.bulk_create(datasets, batch_size=2000)
    versions = []
    for dataset in Dataset.objects.all().only("pk"):
        for number in range(1, rng.randint(1, 3) + 1):
            versions.append(
                DatasetVersion(
                    dataset_id=dataset.pk,
                    number=number,
                    status="published",
                    parquet_sha256=f"{number:064x}",
                    row_count=rng.randint(100, 10_000_000),
                    published_at=now,
                )
            )
    DatasetVersion.objects.bulk_create(versions, batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # what autovacuum does soon after a bulk load: visibility map for index-only scans
    _token, secret = token_create(actor=user, name="bench", scopes=["read"])
    setup_test_environment()
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    queries = {}
    for size in (10, 50, 200):
        client.get(f"/api/v1/datasets/?page_size={size}")  # warm: content types, permissions
        with CaptureQueriesContext(connection) as captured:
            response = client.get(f"/api/v1/datasets/?page_size={size}&page=3")
        assert response.status_code == 200, response.content[:300]
        queries[size] = len(captured)
    print(json.dumps({"token": secret, "versions": len(versions), "queries": queries}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
