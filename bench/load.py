"""Load benchmark: browsing people, prediction clients and a periodic uploader/trainer against the whole platform.

    .venv/bin/python bench/load.py                                   # 50 browsers, 20 predictors, 1 uploader, 600 s
    .venv/bin/python bench/load.py --duration 60 --browsers 10 --predictors 5

locust (pinned in requirements.txt) drives the load; everything runs on 127.0.0.1. Steps, each
with a time limit:

1. a fresh PostgreSQL database `--database` (bench_load; dropped first if an aborted run left
   it, and at the end) on `--postgres`, and a Redis of its own (`redis-server` on a free port,
   no persistence) for the broker, the cache, sessions and throttle counters, so nothing is
   written into a Redis that other people use;
2. migrate, then a setup child (Django) makes a department with `--browsers` browsing accounts
   (role member), a prediction account with one `predict` token per prediction client, an
   uploader with a `read write` token, `--datasets` datasets ingested through the data-lake
   services, and a random forest trained by `training_start` + `training_execute`, converted
   to ONNX as the platform's conversion job does, and promoted to `production`;
3. the platform as deployed (Dockerfile / docker-compose.yml): `gunicorn lepton.wsgi:application
   --workers 3 --threads 4 --keep-alive 75` with DEBUG off, one Celery worker on the `cpu` queue
   (`--concurrency 1`) and the dispatcher (`manage.py run_dispatcher`);
4. a locust child (locust's Python API, headless) runs for `--duration` seconds:
   - `Browser` ×`--browsers`: logs in through the login form (CSRF token from the form), then
     home, catalog, dataset pages, the model page (with the drift fragment it loads), the
     dashboards index, model dashboards (with one htmx refresh) and dataset dashboards, with a
     think time of `--browse-wait` seconds on average between pages;
   - `Predictor` ×`--predictors`: each with its own token, POST /api/v1/models/load/forest/predict
     with a 5-row `dataframe_split` body, `--predict-wait` seconds on average between requests;
   - `Uploader` ×1: every `--upload-every` seconds uploads a new CSV (multipart,
     /api/v1/datasets/<id>/upload/, ingested by the worker), starts a training run on the newest
     published version (/api/v1/runs/) and reads the previous run back;
   a request fails when its status is not the expected one, when a page lands on the login form,
   or when a prediction answers fewer predictions than rows;
5. the jobs the load made are counted by status (a failed ingest or training is an error), and
   the web log is searched for tracebacks and replaced workers.

Printed: per endpoint requests, failures, p50/p95/p99 (locust rounds times above 100 ms to two
significant digits) and req/s; the jobs; CPU seconds of the web, worker, dispatcher and locust
processes. Exit status 1 on any failed request, exception in a user, failed job or web
traceback. All processes, the database and the Redis are removed at the end, also on Ctrl-C or
SIGTERM.

Rate limits: `API_RATE_LIMIT` is raised (`--api-rate-limit`, default 100000/min) so the
per-token throttle (600/min by default) does not make this a test of 429s; login throttling
counts only failed logins and stays as configured.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FEATURES = [f"f{i:02d}" for i in range(20)]
PASSWORD = "load-bench-password"
SEED = 7
PREDICT_ROWS = 5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=600, help="seconds of load (after the platform is up)")
    parser.add_argument("--browsers", type=int, default=50, help="browsing people (log in, catalog, datasets, dashboards)")
    parser.add_argument("--predictors", type=int, default=20, help="prediction clients, one token each")
    parser.add_argument("--uploaders", type=int, default=1, help="uploader/trainer clients")
    parser.add_argument("--browse-wait", type=float, default=10.0, help="mean think time between a browser's pages (s)")
    parser.add_argument("--predict-wait", type=float, default=1.0, help="mean wait between a client's predictions (s)")
    parser.add_argument("--upload-every", type=float, default=60.0, help="seconds between an uploader's upload + training")
    parser.add_argument("--warmup", type=int, default=30, help="seconds of a small unmeasured load first (0: none)")
    parser.add_argument("--spawn-rate", type=float, default=1.0, help="users started per second")
    parser.add_argument("--datasets", type=int, default=6, help="datasets in the catalog besides the uploads")
    parser.add_argument("--rows", type=int, default=2000, help="rows of each generated dataset and upload")
    parser.add_argument("--trees", type=int, default=50, help="trees of the production forest")
    parser.add_argument("--web-workers", type=int, default=3, help="gunicorn --workers (Dockerfile: 3)")
    parser.add_argument("--web-threads", type=int, default=4, help="gunicorn --threads (Dockerfile: 4)")
    parser.add_argument("--keep-alive", type=int, default=75, help="gunicorn --keep-alive seconds (Dockerfile: 75)")
    parser.add_argument("--worker-concurrency", type=int, default=1, help="Celery worker --concurrency")
    parser.add_argument("--api-rate-limit", default="100000/min", help="API_RATE_LIMIT of the server")
    parser.add_argument("--database", default="bench_load")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432", help="server for the scratch database")
    parser.add_argument("--redis-server", default=shutil.which("redis-server") or "redis-server", help="redis-server binary")
    parser.add_argument("--json", help="also write the results as JSON to this file")
    parser.add_argument("--logs", help="copy the logs of web, worker, dispatcher and locust into this folder at the end")
    parser.add_argument("--child", choices=["setup", "locust", "jobs"], help=argparse.SUPPRESS)
    parser.add_argument("--plan", help=argparse.SUPPRESS)
    parser.add_argument("--host", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--onnx", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "locust":
        return _locust_child(args)
    if args.child in ("setup", "jobs"):
        return _django_child(args)
    if not 1 <= args.duration <= 3600 or not 0 <= args.browsers <= 500 or not 0 <= args.predictors <= 500:
        parser.error("--duration must be 1..3600, --browsers and --predictors 0..500")
    if not 0 <= args.uploaders <= 5 or args.browsers + args.predictors + args.uploaders == 0:
        parser.error("--uploaders must be 0..5, and there must be at least one user")
    if not 1 <= args.datasets <= 50 or not 100 <= args.rows <= 100_000 or not 1 <= args.trees <= 500:
        parser.error("--datasets must be 1..50, --rows 100..100000 and --trees 1..500")
    if not 0 <= args.warmup <= 600:
        parser.error("--warmup must be 0..600")
    if min(args.browse_wait, args.predict_wait) < 0 or args.upload_every < 1 or args.spawn_rate <= 0:
        parser.error("--browse-wait and --predict-wait must be ≥ 0, --upload-every ≥ 1 and --spawn-rate > 0")
    if shutil.which(args.redis_server) is None:
        print(
            f"bench/load.py needs redis-server ({args.redis_server!r} not found): apt-get install redis-server", file=sys.stderr
        )
        return 2
    return run(args)


# --- the parent: database, Redis, the platform, locust -------------------------------------------


class Stop(Exception):
    """SIGTERM: unwind through the cleanup like Ctrl-C."""


def run(args) -> int:
    import psycopg

    def on_term(signum, frame):
        raise Stop(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_term)
    # Ctrl-C raises KeyboardInterrupt even where the shell started us with SIGINT ignored (a background job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    admin_url = f"{args.postgres.rstrip('/')}/postgres"
    work = Path(tempfile.mkdtemp(prefix="lepton-bench-load-"))
    procs: dict[str, subprocess.Popen] = {}
    started = time.monotonic()
    try:
        with psycopg.connect(admin_url, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
            con.execute(f'CREATE DATABASE "{args.database}"')
        redis_port, web_port = _free_port(), _free_port()
        procs["redis"] = _spawn(
            [args.redis_server, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(work)], {**os.environ}, work / "redis.log",
        )  # fmt: skip
        _wait_port("redis", procs["redis"], redis_port, work / "redis.log", 30)
        env = _server_env(args, work, redis_port, web_port)
        _step("migrate", [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], env, 600)
        setup_started = time.monotonic()
        plan = _child_json(
            "setup", [sys.executable, __file__, "--child", "setup", "--out", str(work / "plan.json"),
                      "--browsers", str(args.browsers), "--predictors", str(args.predictors), "--datasets",
                      str(args.datasets), "--rows", str(args.rows), "--trees", str(args.trees)], env, 1200,
        )  # fmt: skip
        print(f"setup: {plan['summary']} in {time.monotonic() - setup_started:.0f} s", flush=True)

        procs["web"] = _spawn(
            [sys.executable, "-m", "gunicorn", "lepton.wsgi:application", "--bind", f"127.0.0.1:{web_port}",
             "--workers", str(args.web_workers), "--threads", str(args.web_threads), "--graceful-timeout", "10",
             "--no-control-socket", "--log-level", "info",
             "--keep-alive", str(args.keep_alive)], env, work / "web.log",
        )  # fmt: skip
        procs["worker"] = _spawn(
            [sys.executable, "-m", "celery", "-A", "lepton", "worker", "-Q", "cpu", "--concurrency",
             str(args.worker_concurrency), "-n", "load@%h", "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
            env, work / "worker.log",
        )  # fmt: skip
        procs["dispatcher"] = _spawn([sys.executable, "manage.py", "run_dispatcher"], env, work / "dispatcher.log")
        _wait_port("web", procs["web"], web_port, work / "web.log", 120)

        sys.path.insert(0, str(ROOT))
        from bench.jobs import _cpu_seconds

        warm = None
        if args.warmup:
            # Every gunicorn worker imports its views, templates and the model before anything is measured.
            counts = (min(args.browsers, 3), min(args.predictors, 3), 0)
            print(f"warm-up: {counts[0]} browsers and {counts[1]} predictors for {args.warmup} s (not measured)", flush=True)
            warm, _cpu = _locust(args, procs, work, web_port, "warmup", args.warmup, counts, (0.5, 0.2))
            print(f"warm-up: {warm['total']['requests']} requests, {warm['total']['failures']} failures", flush=True)
        cpu_before = {name: _cpu_seconds(p.pid) for name, p in procs.items()}
        load_start = os.getloadavg()
        print(f"locust: {args.browsers} browsers, {args.predictors} predictors, {args.uploaders} uploader(s) "
              f"for {args.duration} s against http://127.0.0.1:{web_port}", flush=True)  # fmt: skip
        counts = (args.browsers, args.predictors, args.uploaders)
        result, cpu_locust = _locust(
            args, procs, work, web_port, "load", args.duration, counts, (args.browse_wait, args.predict_wait)
        )
        cpu = {name: _cpu_seconds(p.pid) - cpu_before[name] for name, p in procs.items()}
        cpu["locust"] = cpu_locust
        load_end = os.getloadavg()
        # Jobs still running when the load stops get a moment to finish before they are counted.
        wait_until = time.monotonic() + 60
        while True:
            jobs = _child_json("jobs", [sys.executable, __file__, "--child", "jobs"], env, 120)
            if not jobs["open"] or time.monotonic() > wait_until:
                break
            time.sleep(3)
        web_log = (work / "web.log").read_text(errors="replace")
        worker_log = (work / "worker.log").read_text(errors="replace")
        problems = {
            "web tracebacks": web_log.count("Traceback"),
            "web workers replaced": max(0, web_log.count("Booting worker") - args.web_workers),
            "web worker timeouts": web_log.count("WORKER TIMEOUT"),
            "worker tracebacks": worker_log.count("Traceback"),
            "failed warm-up requests": warm["total"]["failures"] + len(warm["exceptions"]) if warm else 0,
        }
        code = report(result, jobs, problems, cpu, args, load_start, load_end, time.monotonic() - started)
        if code:
            for name in ("web", "worker"):
                log = (work / f"{name}.log").read_text(errors="replace")
                if "Traceback" in log:
                    print(f"\n--- the end of the {name} log ---\n{log[-4000:]}")
        if args.json:
            Path(args.json).write_text(json.dumps({"locust": result, "jobs": jobs, "problems": problems, "cpu": cpu}, indent=2))
        return code
    except KeyboardInterrupt:
        print("\ninterrupted: stopping everything", file=sys.stderr)
        return 130
    except Stop as exc:
        print(f"\n{exc}: stopping everything", file=sys.stderr)
        return 143
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _stop_all(procs)
        if args.logs:
            Path(args.logs).mkdir(parents=True, exist_ok=True)
            for log in work.glob("*.log"):
                shutil.copy(log, Path(args.logs) / log.name)
        try:
            with psycopg.connect(admin_url, autocommit=True) as con:
                con.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        except psycopg.Error as exc:
            print(f"could not drop the database {args.database}: {exc}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _locust(args, procs: dict, work: Path, web_port: int, name: str, duration: int, counts: tuple, waits: tuple):
    """One locust child for `duration` seconds; its results and the CPU seconds it used."""
    from bench.jobs import _cpu_seconds

    out = work / f"{name}.json"
    argv = [
        sys.executable, __file__, "--child", "locust", "--plan", str(work / "plan.json"),
        "--host", f"http://127.0.0.1:{web_port}", "--out", str(out), "--duration", str(duration),
        "--browsers", str(counts[0]), "--predictors", str(counts[1]), "--uploaders", str(counts[2]),
        "--browse-wait", str(waits[0]), "--predict-wait", str(waits[1]),
        "--upload-every", str(args.upload_every), "--spawn-rate", str(args.spawn_rate),
    ]  # fmt: skip
    log = work / f"{name}.log"
    locust = procs["locust"] = _spawn(argv, {**os.environ, "PYTHONPATH": str(ROOT)}, log)
    used = 0.0
    deadline = time.monotonic() + duration + 120
    while locust.poll() is None and time.monotonic() < deadline:
        used = max(used, _cpu_seconds(locust.pid))
        for part in ("web", "worker", "dispatcher", "redis"):
            if procs[part].poll() is not None:
                raise RuntimeError(f"the {part} process exited {procs[part].returncode} under load:\n"
                                   f"{(work / f'{part}.log').read_text(errors='replace')[-3000:]}")  # fmt: skip
        time.sleep(1)
    if locust.poll() is None:
        raise RuntimeError(f"locust did not finish within {duration + 120} s")
    if locust.returncode or not out.exists():
        raise RuntimeError(f"locust exited {locust.returncode}:\n{log.read_text(errors='replace')[-4000:]}")
    del procs["locust"]
    return json.loads(out.read_text()), used


def _server_env(args, work: Path, redis_port: int, web_port: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "LEPTON_BROKER_PREFIX")}
    env.update(
        DATABASE_URL=f"{args.postgres.rstrip('/')}/{args.database}",
        REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        LEPTON_VAR_DIR=str(work / "var"),
        LEPTON_STORAGE_URL=(work / "var" / "lake").as_uri(),
        DJANGO_SETTINGS_MODULE="lepton.settings",
        # As docker-compose.yml deploys it: DEBUG off, plain HTTP on a trusted network.
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        CSRF_TRUSTED_ORIGINS=f"http://127.0.0.1:{web_port}",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        SECURE_SSL_REDIRECT="false",
        SECURE_HSTS_SECONDS="0",
        API_RATE_LIMIT=args.api_rate_limit,
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    return env


def _die_with_parent() -> None:
    # Linux: the kernel sends SIGTERM to the child when this bench dies, even by SIGKILL.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _spawn(argv: list[str], env: dict, log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=_die_with_parent,
        )  # fmt: skip


def _stop_all(procs: dict[str, subprocess.Popen]) -> None:
    # Load first, then the platform, Redis last (the others talk to it while they stop).
    order = [name for name in ("locust", "web", "dispatcher", "worker", "redis") if name in procs]
    for name in order:
        proc = procs[name]
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(10)


def _step(what: str, argv: list[str], env: dict, timeout: float) -> None:
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        raise RuntimeError(f"{what} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")


def _child_json(what: str, argv: list[str], env: dict, timeout: float) -> dict:
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        raise RuntimeError(f"{what} child exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(lines[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(name: str, proc: subprocess.Popen, port: int, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{name} did not listen on port {port} within {timeout:g} s:\n{log.read_text(errors='replace')[-3000:]}")


# --- the report ----------------------------------------------------------------------------------

ORDER = ("Browser", "Predictor", "Uploader")


def report(result: dict, jobs: dict, problems: dict, cpu: dict, args, load_start, load_end, wall: float) -> int:
    rows = sorted(result["entries"], key=lambda e: (ORDER.index(e["user"]) if e["user"] in ORDER else 9, e["name"]))
    print()
    print(f"{args.browsers} browsers (think {args.browse_wait:g} s), "
          f"{args.predictors} predictors (wait {args.predict_wait:g} s), "
          f"{args.uploaders} uploader(s) (every {args.upload_every:g} s); {result['seconds']:.0f} s of load; "
          f"gunicorn {args.web_workers}×{args.web_threads}, worker concurrency {args.worker_concurrency}")  # fmt: skip
    header = (f"{'user':<9} {'endpoint':<44} {'requests':>8} {'failures':>8} "
              f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7} {'req/s':>7}")  # fmt: skip
    print(header)
    print("-" * len(header))
    for e in [*rows, result["total"]]:
        print(f"{e['user']:<9} {e['name'][:44]:<44} {e['requests']:>8} {e['failures']:>8} {e['p50']:>7.0f} {e['p95']:>7.0f} "
              f"{e['p99']:>7.0f} {e['max']:>7.0f} {e['rps']:>7.2f}")  # fmt: skip
    print(f"jobs: {', '.join(f'{kind} {status} {n}' for kind, status, n in jobs['counts']) or 'none'}")
    print(f"CPU seconds during the load: {', '.join(f'{name} {seconds:.0f}' for name, seconds in cpu.items())} "
          f"(load average {load_start[0]:.2f} → {load_end[0]:.2f}; {os.cpu_count()} cores; {wall:.0f} s in all)")  # fmt: skip
    errors = []
    if result["total"]["failures"]:
        errors.append(f"{result['total']['failures']} failed requests")
        for error in result["errors"][:20]:
            print(f"  {error['occurrences']}× {error['method']} {error['name']}: {error['error'][:300]}")
    if result["exceptions"]:
        errors.append(f"{len(result['exceptions'])} exceptions in the users")
        for text in result["exceptions"][:5]:
            print(f"  {text[-1500:]}")
    failed_jobs = sum(n for _kind, status, n in jobs["counts"] if status == "failed")
    if failed_jobs:
        errors.append(f"{failed_jobs} failed jobs")
        for line in jobs["failed"][:10]:
            print(f"  {line}")
    errors.extend(f"{n} {what}" for what, n in problems.items() if n)
    print(f"errors: {', '.join(errors) if errors else '0'}")
    return 1 if errors else 0


# --- the locust users ------------------------------------------------------------------------------


def csv_bytes(rows: int, seed: int) -> bytes:
    """A classification table: 20 numeric features and a label that depends non-linearly on them."""
    rng = random.Random(seed)
    lines = [",".join(FEATURES) + ",label"]
    for _ in range(rows):
        x = [rng.gauss(0, 1) for _ in FEATURES]
        score = x[0] * x[1] + 0.5 * x[3] ** 2 - x[4] + rng.gauss(0, 0.3)
        lines.append(",".join(f"{v:.4f}" for v in x) + ("," + ("fault" if score > 0.4 else "ok")))
    return ("\n".join(lines) + "\n").encode()


def user_classes(plan: dict, *, browse_wait: float, predict_wait: float, upload_every: float) -> dict[str, type]:
    """The three kinds of user, bound to the accounts, tokens and objects of `plan` (the setup child's output)."""
    from locust import HttpUser, between, constant_pacing, task

    csrf_input = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')

    class Browser(HttpUser):
        """A person in the browser: logs in through the form, then reads pages with a think time between them."""

        wait_time = between(browse_wait * 0.5, browse_wait * 1.5)
        context = lambda self: {"user": "Browser"}  # noqa: E731 - names the user class in the stats
        accounts = list(plan["browsers"])

        def on_start(self):
            username = Browser.accounts.pop(0) if Browser.accounts else plan["browsers"][0]
            page = self.client.get("/accounts/login/", name="login form")
            found = csrf_input.search(page.text)
            with self.client.post(
                "/accounts/login/",
                data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": found.group(1) if found else ""},
                headers={"Referer": f"{self.host}/accounts/login/"},
                name="login (POST, then home)",
                catch_response=True,
            ) as response:
                if response.status_code != 200 or "/accounts/login/" in response.url:
                    response.failure(f"login as {username} did not reach the home page: {response.status_code} {response.url}")

        def page(self, path: str, name: str, headers: dict | None = None):
            with self.client.get(path, name=name, headers=headers, catch_response=True) as response:
                if response.status_code != 200:
                    response.failure(f"status {response.status_code} {response.error or ''}")
                elif "/accounts/login/" in response.url:
                    response.failure("landed on the login form (session lost)")

        @task(1)
        def home(self):
            self.page("/", "/ (department home)")

        @task(3)
        def catalog(self):
            self.page("/data/", "/data/ (catalog)")

        @task(3)
        def dataset(self):
            self.page(f"/data/{random.choice(plan['datasets'])}/", "/data/<id>/ (dataset page)")

        @task(1)
        def model(self):
            self.page(f"/models/{plan['model']}/", "/models/<id>/ (model page)")
            self.page(f"/dashboards/models/{plan['model']}/drift/", "/dashboards/models/<id>/drift/ (fragment)")

        @task(1)
        def dashboards(self):
            self.page("/dashboards/", "/dashboards/ (index)")

        @task(2)
        def model_dashboard(self):
            path = f"/dashboards/models/{plan['model']}/"
            self.page(path, "/dashboards/models/<id>/ (model dashboard)")
            self.page(path, "/dashboards/models/<id>/ (htmx refresh)", headers={"HX-Request": "true"})

        @task(1)
        def dataset_dashboard(self):
            self.page(f"/dashboards/data/{random.choice(plan['datasets'])}/", "/dashboards/data/<id>/ (dataset dashboard)")

    class Predictor(HttpUser):
        """A service calling the production model with its own token."""

        wait_time = between(predict_wait * 0.5, predict_wait * 1.5)
        context = lambda self: {"user": "Predictor"}  # noqa: E731
        tokens = list(plan["predict_tokens"])

        def on_start(self):
            token = Predictor.tokens.pop(0) if Predictor.tokens else plan["predict_tokens"][0]
            self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            self.rng = random.Random(token)

        @task
        def predict(self):
            rows = [[round(self.rng.gauss(0, 1), 4) for _ in FEATURES] for _ in range(PREDICT_ROWS)]
            body = json.dumps({"dataframe_split": {"columns": FEATURES, "data": rows}})
            with self.client.post(plan["predict_path"], data=body, headers=self.headers, name="POST predict (5 rows)",
                                  catch_response=True) as response:  # fmt: skip
                if response.status_code != 200:
                    response.failure(f"status {response.status_code}: {response.error or response.text[:300]}")
                elif len(response.json().get("predictions", [])) != PREDICT_ROWS:
                    response.failure(f"not {PREDICT_ROWS} predictions: {response.text[:300]}")

    class Uploader(HttpUser):
        """A service that uploads a new CSV now and then and trains on the newest published version."""

        wait_time = constant_pacing(upload_every)
        context = lambda self: {"user": "Uploader"}  # noqa: E731

        def on_start(self):
            self.headers = {"Authorization": f"Bearer {plan['uploader_token']}"}
            self.count = 0
            self.last_run = None

        def expect(self, response, status: int):
            if response.status_code != status:
                response.failure(f"status {response.status_code} (not {status}): {response.error or response.text[:300]}")
                return None
            return response.json()

        @task
        def upload_and_train(self):
            self.count += 1
            dataset = plan["uploads_dataset"]
            body = csv_bytes(plan["rows"], seed=secrets.randbits(32))  # new bytes each time: identical ones are refused
            files = {"file": (f"batch-{self.count}.csv", body, "text/csv")}
            with self.client.post(f"/api/v1/datasets/{dataset}/upload/", headers=self.headers, files=files,
                                  name="POST dataset upload (CSV)", catch_response=True) as r:  # fmt: skip
                self.expect(r, 202)
            with self.client.get(f"/api/v1/datasets/{dataset}/versions/", headers=self.headers, name="GET dataset versions",
                                 catch_response=True) as r:  # fmt: skip
                data = self.expect(r, 200)
            versions = data.get("results", data) if isinstance(data, dict) else (data or [])
            published = [v for v in versions if v.get("status") == "published"]
            if not published:
                return
            spec = {"task": "classification", "target": "label", "seed": SEED,
                    "algorithms": [{"name": "random_forest", "params": {"n_estimators": 20}}]}  # fmt: skip
            with self.client.post("/api/v1/runs/", json={"dataset_version": published[0]["id"], "spec": spec},
                                  headers=self.headers, name="POST training run", catch_response=True) as r:  # fmt: skip
                started = self.expect(r, 202)
            if self.last_run:
                with self.client.get(f"/api/v1/runs/{self.last_run}/", headers=self.headers, name="GET training run",
                                     catch_response=True) as r:  # fmt: skip
                    self.expect(r, 200)
            self.last_run = started and started.get("id")

    return {"Browser": Browser, "Predictor": Predictor, "Uploader": Uploader}


def run_locust(plan: dict, host: str, *, duration: float, counts: dict[str, int], browse_wait: float, predict_wait: float,
               upload_every: float, spawn_rate: float) -> dict:  # fmt: skip
    """Run the users headless for `duration` seconds; the stats per endpoint (times in ms)."""
    import gevent
    from locust.env import Environment

    classes = user_classes(plan, browse_wait=browse_wait, predict_wait=predict_wait, upload_every=upload_every)
    chosen = []
    for name, cls in classes.items():
        if counts.get(name):
            cls.fixed_count = counts[name]
            chosen.append(cls)
    env = Environment(user_classes=chosen, host=host, stop_timeout=30)
    runner = env.create_local_runner()
    exceptions: list[str] = []
    owner: dict[str, str] = {}  # which user class made each endpoint (User.context() below)
    env.events.request.add_listener(lambda name, context, **_kw: owner.setdefault(name, context.get("user", "?")))
    env.events.user_error.add_listener(
        lambda user_instance, exception, tb: exceptions.append(f"{type(user_instance).__name__}: {exception!r}")
    )
    started = time.monotonic()
    runner.start(sum(counts.values()), spawn_rate=spawn_rate)
    gevent.spawn_later(duration, runner.quit)
    runner.greenlet.join()
    seconds = time.monotonic() - started

    def entry(e, user):
        return {
            "user": user, "name": e.name, "method": e.method, "requests": e.num_requests, "failures": e.num_failures,
            "p50": e.get_response_time_percentile(0.5) or 0, "p95": e.get_response_time_percentile(0.95) or 0,
            "p99": e.get_response_time_percentile(0.99) or 0, "max": e.max_response_time or 0,
            "rps": e.num_requests / seconds if seconds else 0.0,
        }  # fmt: skip

    return {
        "seconds": seconds,
        "entries": [entry(e, owner.get(e.name, "?")) for e in env.stats.entries.values()],
        "total": entry(env.stats.total, "all"),
        "errors": [
            {"method": e.method, "name": e.name, "error": str(e.error), "occurrences": e.occurrences}
            for e in env.stats.errors.values()
        ],  # fmt: skip
        "exceptions": exceptions,
    }


def _locust_child(args) -> int:
    plan = json.loads(Path(args.plan).read_text())
    counts = {"Browser": args.browsers, "Predictor": args.predictors, "Uploader": args.uploaders}
    result = run_locust(plan, args.host, duration=args.duration, counts=counts, browse_wait=args.browse_wait,
                        predict_wait=args.predict_wait, upload_every=args.upload_every, spawn_rate=args.spawn_rate)  # fmt: skip
    Path(args.out).write_text(json.dumps(result))
    return 0


# --- the Django children: setup and the job count ------------------------------------------------


def _django_child(args) -> int:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lepton.settings")
    import django

    django.setup()
    if args.child == "jobs":
        print(json.dumps(job_counts()))
        return 0
    plan = setup_data(browsers=args.browsers, predictors=args.predictors, datasets=args.datasets, rows=args.rows,
                      trees=args.trees, onnx=bool(args.onnx))  # fmt: skip
    Path(args.out).write_text(json.dumps(plan))
    print(json.dumps({"summary": plan["summary"]}))
    return 0


def setup_data(*, browsers: int, predictors: int, datasets: int, rows: int, trees: int, onnx: bool = True) -> dict:
    """The department, accounts, tokens, datasets and production model the users need (the plan they read)."""
    import io

    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from datalake import services as lake
    from lepton import services as core
    from models_repo import services
    from models_repo.models import ModelVersion
    from models_repo.services import registry

    users = get_user_model().objects
    admin = users.create_superuser("load-admin", "load-admin@localhost", None)
    department = core.department_create(actor=admin, slug="load", name="Load test", max_concurrent_jobs=100)
    password = make_password(PASSWORD)  # hashed once: the same password for every browsing account
    browser_names = []
    for i in range(max(1, browsers)):
        person = users.create(username=f"load-browser-{i:03d}", email=f"browser{i}@localhost", password=password)
        core.membership_add(actor=admin, department=department, user=person, role="member")
        browser_names.append(person.username)
    client = users.create_user("load-client", "client@localhost", None)
    core.membership_add(actor=admin, department=department, user=client, role="member")
    uploader = users.create_user("load-uploader", "uploader@localhost", None)
    core.membership_add(actor=admin, department=department, user=uploader, role="member")

    names = ["Press line A", "Press line B", "Oven temperatures", "Inspection results", "Supplier lots", "Energy meters"]
    dataset_ids, first = [], None
    for i in range(datasets):
        dataset = lake.dataset_create(actor=admin, department=department, name=names[i] if i < len(names) else f"Readings {i}")
        upload = lake.dataset_upload(actor=admin, dataset=dataset, stream=io.BytesIO(csv_bytes(rows, seed=100 + i)),
                                     filename=f"readings-{i}.csv")  # fmt: skip
        version = lake.version_ingest(upload.pk)
        assert version.status == "published", version.error_message
        dataset_ids.append(str(dataset.pk))
        first = first or version
    uploads = lake.dataset_create(actor=admin, department=department, name="Uploads")
    upload = lake.dataset_upload(
        actor=admin, dataset=uploads, stream=io.BytesIO(csv_bytes(rows, seed=99)), filename="batch-0.csv"
    )
    assert lake.version_ingest(upload.pk).status == "published"

    model = services.model_create(actor=admin, department=department, name="Forest")
    spec = {"task": "classification", "target": "label", "seed": SEED,
            "algorithms": [{"name": "random_forest", "params": {"n_estimators": trees}}]}  # fmt: skip
    run = services.training_execute(
        services.training_start(actor=admin, dataset_version=first, spec=spec, registered_model=model).pk
    )
    assert run.status == "succeeded", run.error_message
    version = ModelVersion.objects.get(run=run)
    runtime = "native"
    if onnx:  # what the conversion job queued at registration does (no worker runs during the setup)
        version = registry.version_onnx_convert(version.pk)
        runtime = "onnx" if version.onnx_report.get("status") == "used" else f"native ({version.onnx_report.get('reason', '')})"
    services.promotion_settings_update(actor=admin, department=department, require_second_approver=False)
    services.promotion_approve(actor=admin, request=services.promotion_request(actor=admin, version=version))
    predict_tokens = [
        core.token_create(actor=client, name=f"load-predict-{i}", scopes=["predict"])[1] for i in range(max(1, predictors))
    ]
    uploader_token = core.token_create(actor=uploader, name="load-uploader", scopes=["read", "write"])[1]
    return {
        "browsers": browser_names,
        "predict_tokens": predict_tokens,
        "uploader_token": uploader_token,
        "datasets": dataset_ids,
        "uploads_dataset": str(uploads.pk),
        "model": str(model.pk),
        "predict_path": f"/api/v1/models/{department.slug}/{model.slug}/predict",
        "rows": rows,
        "summary": f"{len(browser_names)} browsing accounts, {len(predict_tokens)} predict tokens, {datasets} datasets of "
        f"{rows} rows + Uploads, forest of {trees} trees in production (runtime {runtime})",
    }


def job_counts() -> dict:
    """Jobs by kind and status; the errors of failed ones; whether any is still queued or running."""
    from django.db.models import Count

    from lepton.jobs.models import Job

    counts = [
        [row["kind"], row["status"], row["n"]]
        for row in Job.objects.values("kind", "status").annotate(n=Count("id")).order_by("kind", "status")
    ]
    failed = [f"{job.kind} {job.pk}: {job.error_message[:300]}" for job in Job.objects.filter(status="failed")[:10]]
    return {"counts": counts, "failed": failed, "open": Job.objects.filter(status__in=["queued", "running"]).count()}


if __name__ == "__main__":
    sys.exit(main())
