"""Serving benchmark: our predict endpoint against `mlflow models serve`, the same random forest, on loopback.

    .venv/bin/python bench/serve.py                  # concurrency 1, 8, 32 × bodies of 1 and 100 rows, 10 s each
    .venv/bin/python bench/serve.py --seconds 5 --concurrency 8 --profile 0

MLflow is never a dependency of Lepton: it lives in its own virtual environment, made once with

    python3.11 -m venv /tmp/mlflow-venv && /tmp/mlflow-venv/bin/pip install -r bench/requirements.txt

and named with `--mlflow-python` (default /tmp/mlflow-venv/bin/python). Steps, each with a time limit:

1. a fresh PostgreSQL database `--database` (bench_serve; dropped first if an aborted run left it,
   and at the end) is migrated; Redis is the cache (throttle counters) and the broker, under the
   key prefix `bench_serve:`, whose keys are deleted at the end;
2. a setup child (Django) makes a department, an admin and a member, ingests a generated
   classification CSV (`--rows` rows, 20 numeric features, a label that depends non-linearly on
   them) through the data-lake services, trains a random forest (`--trees` trees, seed 7) with
   `training_start` + `training_execute` in-process, promotes the version to production and makes
   a `predict` token for the member;
3. a child in the MLflow environment fits the SAME forest: the rows the run trained on (the
   lake's Parquet minus the run's holdout, in the run's order), the forest's own `get_params()`
   (seed included) behind the same median imputation and scaling; it saves it with
   `mlflow.sklearn.save_model` (with a signature, so MLflow checks the input schema as our endpoint
   does);
4. `gunicorn lepton.wsgi --workers 2` (DEBUG off, as in production) and
   `mlflow models serve -m DIR -w 2 --env-manager local -h 127.0.0.1` (uvicorn, 2 workers) start
   on free ports. For the largest body, MLflow must give the bare forest's predictions on every
   row and ours on at least 99 % of them (an ONNX runtime computes in float32), else the bench
   stops. Where the platform converts versions to ONNX (a job queued at registration), the
   setup child runs that conversion in-process too;
5. `wrk` (bench/serve.lua) POSTs the same MLflow `dataframe_split` body to both — our
   `/api/v1/models/bench/forest/predict` with the bearer token, MLflow's `/invocations` — at
   each `--concurrency` with each body size: a `--warmup` first, then `--seconds`; the servers
   take turns. Server CPU per request (the process tree, from /proc) is measured beside it;
6. `--profile N` (after the servers stopped): for where our time goes, one gunicorn worker under
   wrk with one connection, its handler timed plainly and then N requests under cProfile
   (gunicorn's pre/post_request hooks); then N requests of each body through Django's test
   client in one process, the SQL of one request, the model alone, and GET /api/v1/me with the
   same token as the floor of any API request.

Printed: req/s, p50, p99 of both, our/MLflow ratios, server CPU ms per request (and our
PostgreSQL backends' beside it), and the target of
issue 5 at concurrency 8: ≥ 10× MLflow's req/s and ≤ 1/10 of its p99. Our response carries the
class probabilities besides the predictions; MLflow's (its default `predict`) only the
predictions. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LUA = Path(__file__).resolve().parent / "serve.lua"
DEFAULT_MLFLOW_PYTHON = "/tmp/mlflow-venv/bin/python"
PREFIX = "bench_serve:"
FEATURES = [f"f{i:02d}" for i in range(20)]
SEED = 7


# gunicorn config of the profiled worker (--profile): after BENCH_PROFILE_WARM requests, the next
# BENCH_PROFILE_N run under cProfile (between gunicorn's pre_request and post_request hooks: the
# Django application and writing the response); the requests before that are timed plainly
# (wall and CPU of the worker). Stats and timings go to BENCH_PROFILE_OUT.
PROFILED_WORKER = """
import cProfile, json, os, time

WARM, N, OUT = int(os.environ["BENCH_PROFILE_WARM"]), int(os.environ["BENCH_PROFILE_N"]), os.environ["BENCH_PROFILE_OUT"]
state = {"n": 0, "wall": 0.0, "cpu": 0.0, "plain": 0, "profile": cProfile.Profile(), "pwall": 0.0}


def pre_request(worker, req):
    state["n"] += 1
    state["t"], state["c"] = time.perf_counter(), time.process_time()
    if WARM // 2 < state["n"] <= WARM:
        state["plain"] += 1
    if WARM < state["n"] <= WARM + N:
        state["profile"].enable()


def post_request(worker, req, environ, resp):
    n = state["n"]
    if WARM < n <= WARM + N:
        state["profile"].disable()
        state["pwall"] += time.perf_counter() - state["t"]
    elif WARM // 2 < n <= WARM:  # the second half of the warm-up: timed, not profiled
        state["wall"] += time.perf_counter() - state["t"]
        state["cpu"] += time.process_time() - state["c"]
    if n == WARM + N:
        state["profile"].dump_stats(OUT + ".prof")
        with open(OUT + ".json", "w") as f:
            json.dump({"plain": state["plain"], "wall": state["wall"], "cpu": state["cpu"], "n": N, "pwall": state["pwall"]}, f)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000, help="rows of the generated training data")
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--concurrency", default="1,8,32", help="wrk connections, comma-separated")
    parser.add_argument("--bodies", default="1,100", help="rows per request body, comma-separated")
    parser.add_argument("--seconds", type=int, default=10, help="measured seconds per phase")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up seconds before each phase")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn --workers and mlflow -w")
    parser.add_argument("--threads", type=int, default=1, help="gunicorn --threads (1: sync workers; more: gthread, keep-alive)")
    parser.add_argument("--profile", type=int, default=200, help="requests per body for the in-process profile (0: none)")
    parser.add_argument("--mlflow-python", default=DEFAULT_MLFLOW_PYTHON, help="python of the MLflow environment")
    parser.add_argument("--database", default="bench_serve")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432", help="server for the scratch database")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    parser.add_argument("--child", choices=["setup", "fit", "profile"], help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "fit":
        return _fit_mlflow(Path(args.work))
    if args.child in ("setup", "profile"):
        return _django_child(args)
    concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    bodies = [int(b) for b in args.bodies.split(",") if b.strip()]
    if not concurrency or not bodies or min(concurrency) < 1 or max(concurrency) > 256 or min(bodies) < 1 or max(bodies) > 1000:
        parser.error("--concurrency must be 1..256 and --bodies 1..1000")
    if not 1 <= args.seconds <= 120 or not 0 <= args.warmup <= 30 or not 0 <= args.profile <= 5000:
        parser.error("--seconds must be 1..120, --warmup 0..30 and --profile 0..5000")
    if shutil.which("wrk") is None:
        print("bench/serve.py needs wrk: apt-get install wrk", file=sys.stderr)
        return 2
    if not Path(args.mlflow_python).exists():
        print(f"no {args.mlflow_python}; make the MLflow environment first:\n  python3.11 -m venv /tmp/mlflow-venv && "
              "/tmp/mlflow-venv/bin/pip install -r bench/requirements.txt", file=sys.stderr)  # fmt: skip
        return 2
    return run(args, concurrency, bodies)


# --- the parent: database, children, servers, wrk ------------------------------------------------


def run(args, concurrency: list[int], bodies: list[int]) -> int:
    import psycopg

    admin_url = f"{args.postgres.rstrip('/')}/postgres"
    with psycopg.connect(admin_url, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        con.execute(f'CREATE DATABASE "{args.database}"')
    work = Path(tempfile.mkdtemp(prefix="lepton-bench-serve-"))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "LEPTON_BROKER_PREFIX")}
    env.update(
        DATABASE_URL=f"{args.postgres.rstrip('/')}/{args.database}",
        REDIS_URL=args.redis,
        LEPTON_BROKER_PREFIX=PREFIX,
        LEPTON_VAR_DIR=str(work / "var"),
        LEPTON_STORAGE_URL=(work / "var" / "lake").as_uri(),
        DJANGO_SETTINGS_MODULE="lepton.settings",
        # As deployed: DEBUG off (it needs its own key), and no throttle in the way of the load.
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        API_RATE_LIMIT="100000000/min",
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    servers: dict[str, subprocess.Popen] = {}
    load_start = os.getloadavg()[0]
    started = time.monotonic()
    try:
        _step("migrate", [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], env, 300)
        setup = _child_json(
            "setup", [sys.executable, __file__, "--child", "setup", "--work", str(work), "--rows", str(args.rows),
                      "--trees", str(args.trees), "--bodies", args.bodies], env, 1200,
        )  # fmt: skip
        print(f"setup: {setup['rows']} rows, {setup['train_rows']} trained on, forest of {setup['trees']} trees "
              f"trained by the platform in {setup['train_s']:.1f} s (version {setup['version']}, production)")  # fmt: skip
        mlflow_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        mlflow_bin = str(Path(args.mlflow_python).parent)
        mlflow_env["PATH"] = mlflow_bin + os.pathsep + mlflow_env.get("PATH", "")  # mlflow starts `uvicorn` from PATH
        mlflow_env["MLFLOW_TRACKING_URI"] = (work / "mlruns").as_uri()
        fit_argv = [args.mlflow_python, __file__, "--child", "fit", "--work", str(work)]
        fit = _child_json("mlflow fit", fit_argv, mlflow_env, 600, work)
        print(f"mlflow: {fit['mlflow']} (scikit-learn {fit['sklearn']}), the same forest fitted in {fit['fit_s']:.1f} s; "
              f"bare predict {fit['predict_ms']}")  # fmt: skip
        if fit["sklearn"] != setup["sklearn"]:
            raise RuntimeError(f"scikit-learn {fit['sklearn']} in the MLflow environment, {setup['sklearn']} here")

        ours_port, mlflow_port = _free_port(), _free_port()
        servers["ours"] = _serve(
            [sys.executable, "-m", "gunicorn", "lepton.wsgi", "--bind", f"127.0.0.1:{ours_port}",
             "--workers", str(args.workers), "--threads", str(args.threads)], env, work / "gunicorn.log",
        )  # fmt: skip
        servers["mlflow"] = _serve(
            [str(Path(mlflow_bin) / "mlflow"), "models", "serve", "-m", str(work / "mlflow-model"), "-w", str(args.workers),
             "-p", str(mlflow_port), "--env-manager", "local", "-h", "127.0.0.1"], mlflow_env, work / "mlflow.log", work,
        )  # fmt: skip
        targets = {
            "ours": (ours_port, setup["path"], setup["token"]),
            "mlflow": (mlflow_port, "/invocations", ""),
        }
        for name, proc in servers.items():
            _wait_up(name, proc, targets[name][0], work / ("gunicorn.log" if name == "ours" else "mlflow.log"))
        sample = work / f"body-{max(bodies)}.json"
        answers = {name: _post(port, path, token, sample.read_bytes()) for name, (port, path, token) in targets.items()}
        ours, peer, bare = answers["ours"]["predictions"], answers["mlflow"]["predictions"], fit["predictions"]
        agree = sum(a == b == c for a, b, c in zip(ours, peer, bare, strict=True))
        runtime = answers["ours"].get("runtime", "native (the response names none)")
        print(f"ONNX conversion: {setup['onnx']}; our endpoint answered with runtime {runtime}")
        print(f"same predictions from both servers and the bare forest on {agree} of {len(bare)} sample rows")
        if agree < 0.99 * len(bare) or peer != bare:  # MLflow runs the very sklearn forest: it must agree on every row
            print(json.dumps({"ours": ours[:10], "mlflow": peer[:10], "bare": bare[:10]}))
            return 1

        sys.path.insert(0, str(ROOT))
        from bench.jobs import _cpu_seconds

        # Every worker of both servers imports its libraries and loads the model before anything is measured.
        for port, path, token in targets.values():
            _wrk(port, path, token, work / f"body-{max(bodies)}.json", 4 * args.workers, max(3, args.warmup))
        results = []
        for c in concurrency:
            for rows in bodies:
                body = work / f"body-{rows}.json"
                for name in ("ours", "mlflow"):
                    port, path, token = targets[name]
                    if args.warmup:
                        _wrk(port, path, token, body, c, args.warmup)
                    cpu, db = _cpu_seconds(servers[name].pid), _db_cpu_seconds(args.database)
                    r = _wrk(port, path, token, body, c, args.seconds)
                    r["cpu_ms_per_request"] = (_cpu_seconds(servers[name].pid) - cpu) * 1000 / max(1, r["requests"])
                    r["db_ms_per_request"] = _db_cpu_since(db, args.database) * 1000 / max(1, r["requests"])
                    results.append({"server": name, "concurrency": c, "rows": rows, **r})
                    print(f"  {name:<6} c={c:<3} rows={rows:<4} {r['rps']:8.1f} req/s  p50 {r['p50_ms']:7.2f} ms  "
                          f"p99 {r['p99_ms']:7.2f} ms  errors {sum(r['errors'].values())}", flush=True)  # fmt: skip
        log = (work / "gunicorn.log").read_text(errors="replace")
        boots = log.count("Booting worker")
        if boots != args.workers:  # a worker that died and was replaced paid Django's start-up inside a phase
            print(f"gunicorn booted {boots} workers for {args.workers}:\n" + "\n".join(log.splitlines()[-30:]))
        profile = None
        if args.profile:
            for proc in servers.values():  # the profile wants the cores to itself
                os.killpg(proc.pid, signal.SIGTERM)
            for proc in servers.values():
                proc.wait(30)
            profile_worker = _profile_worker(args, env, work, setup, bodies)
            profile = _child_json(
                "profile", [sys.executable, __file__, "--child", "profile", "--work", str(work), "--bodies", args.bodies,
                            "--profile", str(args.profile)], env, 900,
            )  # fmt: skip
            profile["worker"] = profile_worker
        facts = {**setup, "mlflow": fit["mlflow"], "mlflow_predict_ms": fit["predict_ms"], "token": None, "code": _code(),
                 "runtime": runtime, "agree": f"{agree}/{len(bare)}"}  # fmt: skip
        report(results, facts, profile, args, load_start, os.getloadavg()[0], time.monotonic() - started)
        if args.json:
            print(json.dumps({"results": results, "profile": profile, "facts": facts}, indent=2))
        return 0
    finally:
        for proc in servers.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in servers.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        with psycopg.connect(admin_url, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        _drop_redis_keys(args.redis, PREFIX)
        shutil.rmtree(work, ignore_errors=True)


def _profile_worker(args, env: dict, work: Path, setup: dict, bodies: list[int]) -> dict:
    """One gunicorn worker under wrk (1 connection) per body: handler time plain, then under cProfile."""
    import pstats

    (work / "profiled_worker.py").write_text(PROFILED_WORKER)
    out = {}
    for rows in bodies:
        stem = work / f"worker-{rows}"
        port = _free_port()
        warm = max(100, args.profile)
        worker_env = {
            **env,
            "BENCH_PROFILE_WARM": str(warm),
            "BENCH_PROFILE_N": str(args.profile),
            "BENCH_PROFILE_OUT": str(stem),
        }
        log = work / f"gunicorn-profiled-{rows}.log"
        server = _serve(
            [sys.executable, "-m", "gunicorn", "lepton.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1",
             "--config", str(work / "profiled_worker.py")], worker_env, log,
        )  # fmt: skip
        try:
            _wait_up("profiled", server, port, log)
            deadline = time.monotonic() + 300
            while not Path(f"{stem}.json").exists() and time.monotonic() < deadline:
                _wrk(port, setup["path"], setup["token"], work / f"body-{rows}.json", 1, 5)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
        if not Path(f"{stem}.json").exists():
            raise RuntimeError(f"the profiled worker did not finish {warm + args.profile} requests in 300 s")
        timing = json.loads(Path(f"{stem}.json").read_text())
        stats = pstats.Stats(f"{stem}.prof")
        profiled_ms = timing["pwall"] * 1000 / timing["n"]
        out[str(rows)] = {
            "plain_ms": timing["wall"] * 1000 / timing["plain"], "plain_cpu_ms": timing["cpu"] * 1000 / timing["plain"],
            "profiled_ms": profiled_ms, "phases": _phases(stats, timing["n"], profiled_ms, WORKER_ROOT),
            "top": _top(stats, timing["n"]),
        }  # fmt: skip
    return out


def _step(what: str, argv: list[str], env: dict, timeout: float) -> None:
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        raise RuntimeError(f"{what} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")


def _child_json(what: str, argv: list[str], env: dict, timeout: float, cwd: Path = ROOT) -> dict:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        raise RuntimeError(f"{what} child exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(lines[-1])


def _serve(argv: list[str], env: dict, log: Path, cwd: Path = ROOT) -> subprocess.Popen:
    with open(log, "wb") as out:  # the child keeps its own descriptor
        return subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(name: str, proc: subprocess.Popen, port: int, log: Path, timeout: float = 120.0) -> None:
    """Until the server answers on its port (any HTTP status), the process alive, within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the {name} server exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=5):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"the {name} server did not answer within {timeout:g} s:\n{log.read_text()[-3000:]}")


def _post(port: int, path: str, token: str, body: bytes) -> dict:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"POST {path} on port {port}: {exc.code} {exc.read()[:1000]!r}") from None


def _wrk(port: int, path: str, token: str, body: Path, clients: int, seconds: int) -> dict:
    env = {**os.environ, "BENCH_BODY": str(body), "BENCH_PATH": path, "BENCH_TOKEN": token}
    argv = ["wrk", f"-t{min(2, clients)}", f"-c{clients}", f"-d{seconds}s", "--timeout", "10s", "-s", str(LUA),
            f"http://127.0.0.1:{port}"]  # fmt: skip
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=seconds + 60)
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH_RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"wrk exited {done.returncode}: {done.stdout[-1500:]} {done.stderr[-1500:]}")
    return json.loads(lines[-1].split(" ", 1)[1])


def _db_cpu_seconds(database: str) -> dict[int, float]:
    """CPU seconds used so far by each PostgreSQL backend connected to `database` (their process titles name it)."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if not title.startswith("postgres:") or f" {database} " not in title:
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    return used


def _db_cpu_since(before: dict[int, float], database: str) -> float:
    """CPU seconds of the backends since `before` (a backend that closed meanwhile is not counted)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in _db_cpu_seconds(database).items())


def _code() -> str:
    """The commit measured, and whether the serving code had uncommitted changes."""

    def git(*argv: str) -> str:
        return subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout

    serving = ["models_repo/serving.py", "models_repo/api/predict.py", "models_repo/engine"]
    last = git("log", "-1", "--format=%h %s", "--", *serving).strip()
    dirty = git("status", "--porcelain", "--", *serving)
    return f"HEAD {git('rev-parse', '--short', 'HEAD').strip()}; serving code last changed in {last[:90]}" + (
        f"; uncommitted changes in {', '.join(line[3:] for line in dirty.splitlines())}" if dirty else ""
    )


def _drop_redis_keys(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for i in range(0, len(keys), 500):
        client.delete(*keys[i : i + 500])


# --- the report ----------------------------------------------------------------------------------


def report(results: list[dict], facts: dict, profile: dict | None, args, load_start: float, load_end: float, wall: float):
    by = {(r["server"], r["concurrency"], r["rows"]): r for r in results}
    print()
    print(f"Random forest of {facts['trees']} trees, 20 numeric features ({facts['train_rows']} training rows); "
          f"{args.workers} workers each; wrk {args.seconds} s per phase after {args.warmup} s warm-up")  # fmt: skip
    print(f"ours: gunicorn lepton.wsgi + PostgreSQL + Redis; MLflow {facts['mlflow']}: mlflow models serve (uvicorn)")
    print(f"code: {facts['code']}")
    print(f"our runtime: {facts['runtime']} (ONNX conversion: {facts['onnx']}); predictions agree on {facts['agree']} rows")
    header = (f"{'c':>3} {'rows':>4} | {'ours req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'cpu ms/req':>10} {'+ db':>6} | "
              f"{'mlflow req/s':>12} {'p50 ms':>8} {'p99 ms':>8} {'cpu ms/req':>10} | "
              f"{'req/s ×':>7} {'p99 ×':>6} {'cpu ×':>6}")  # fmt: skip
    print(header)
    print("-" * len(header))
    for (server, c, rows), ours in by.items():
        if server != "ours":
            continue
        peer = by[("mlflow", c, rows)]
        errors = sum(ours["errors"].values()) + sum(peer["errors"].values())
        print(
            f"{c:>3} {rows:>4} | {ours['rps']:>10.1f} {ours['p50_ms']:>8.2f} {ours['p99_ms']:>8.2f} "
            f"{ours['cpu_ms_per_request']:>10.2f} {ours['db_ms_per_request']:>6.2f} | "
            f"{peer['rps']:>12.1f} {peer['p50_ms']:>8.2f} {peer['p99_ms']:>8.2f} "
            f"{peer['cpu_ms_per_request']:>10.2f} | {ours['rps'] / peer['rps']:>7.2f} {ours['p99_ms'] / peer['p99_ms']:>6.2f} "
            f"{ours['cpu_ms_per_request'] / peer['cpu_ms_per_request']:>6.2f}" + (f"  ({errors} errors)" if errors else "")
        )
    print("(req/s ×: ours / MLflow, higher is better; p99 × and cpu × (server CPU per request): ours / MLflow, lower is better;")
    print(" + db: CPU ms per request of our PostgreSQL backends, not in cpu ms/req nor in cpu ×;")
    print(f" load average "
          f"{load_start:.2f} at the start, {load_end:.2f} at the end; {wall:.0f} s in all)")  # fmt: skip
    print(f"bare forest predict in the MLflow environment (pyfunc, in-process): {facts['mlflow_predict_ms']}")
    verdicts = []
    for rows in sorted({r["rows"] for r in results}):
        ours, peer = by.get(("ours", 8, rows)), by.get(("mlflow", 8, rows))
        if ours is None or peer is None:
            continue
        met = ours["rps"] >= 10 * peer["rps"] and ours["p99_ms"] <= peer["p99_ms"] / 10
        verdicts.append(met)
        print(f"target at concurrency 8, {rows}-row body: req/s {ours['rps'] / peer['rps']:.2f}× (≥ 10×), "
              f"p99 {ours['p99_ms'] / peer['p99_ms']:.2f}× (≤ 0.10×): {'met' if met else 'NOT met'}")  # fmt: skip
    if verdicts:
        print(f"target of issue 5: {'met' if all(verdicts) else 'NOT met'}")
    if profile:
        print(f"\nWhere our time goes (the endpoint serves with {profile['loaded']}):")
        for rows, p in profile.get("worker", {}).items():
            print(f"  one gunicorn worker, wrk with 1 connection, {rows}-row body: the handler took {p['plain_ms']:.2f} ms "
                  f"({p['plain_cpu_ms']:.2f} ms CPU) per request plain, {p['profiled_ms']:.2f} ms under cProfile")  # fmt: skip
            for name, share in p["phases"]:
                print(f"      {name:<58} {share['ms']:7.2f} ms  {share['pct']:5.1f} %")
            print("    top functions by own time (ms per request):")
            for line in p["top"]:
                print(f"      {line}")
        print(f"\nIn-process, Django's test client ({profile['n']} requests per body):")
        print(f"  GET /api/v1/me with the same token (the API's floor): {profile['me_ms']:.2f} ms per request")
        print(f"  SQL of one request ({len(profile['queries'])}):")
        for sql in profile["queries"]:
            print(f"    {sql}")
        for rows, p in profile["bodies"].items():
            print(f"  {rows}-row body: {p['plain_ms']:.2f} ms per request plain, {p['profiled_ms']:.2f} ms under cProfile; "
                  f"the model alone (what the endpoint calls) {p['bare_predict_ms']:.2f} ms")  # fmt: skip
            for name, share in p["phases"]:
                print(f"      {name:<58} {share['ms']:7.2f} ms  {share['pct']:5.1f} %")
            print("    top functions by own time (ms per request):")
            for line in p["top"]:
                print(f"      {line}")


# --- the Django children: setup and profile ------------------------------------------------------


def _csv(rows: int, seed: int = 11) -> bytes:
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 20))
    score = x[:, 0] * x[:, 1] + np.sin(3 * x[:, 2]) + 0.5 * x[:, 3] ** 2 - x[:, 4] + rng.normal(0, 0.3, rows)
    label = np.where(score > np.median(score), "fault", "ok")
    header = ",".join(FEATURES) + ",label\n"
    body = "\n".join(",".join(f"{v:.4f}" for v in row) + f",{lab}" for row, lab in zip(x, label, strict=True))
    return (header + body + "\n").encode()


def _django_child(args) -> int:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lepton.settings")
    import django

    django.setup()
    return _setup(args) if args.child == "setup" else _profile(args)


def _setup(args) -> int:
    import io

    import pandas as pd
    import sklearn
    from django.contrib.auth import get_user_model

    from datalake import services as lake
    from lepton import services as core
    from lepton.storage import get_storage
    from models_repo import services
    from models_repo.engine import tabular
    from models_repo.models import ModelVersion
    from models_repo.services import registry
    from models_repo.services.training import _named_parquet

    work = Path(args.work)
    users = get_user_model().objects
    admin = users.create_superuser("bench-admin", "bench@localhost", None)
    client = users.create_user("bench-client", "client@localhost", None)
    department = core.department_create(actor=admin, slug="bench", name="Benchmark", max_concurrent_jobs=100)
    core.membership_add(actor=admin, department=department, user=client, role="member")
    dataset = lake.dataset_create(actor=admin, department=department, name="Faults")
    upload = lake.dataset_upload(actor=admin, dataset=dataset, stream=io.BytesIO(_csv(args.rows)), filename="faults.csv")
    data = lake.version_ingest(upload.pk)
    assert data.status == "published", data.error_message
    spec = {
        "task": "classification",
        "target": "label",
        "algorithms": [{"name": "random_forest", "params": {"n_estimators": args.trees}}],
        "seed": SEED,
    }
    model = services.model_create(actor=admin, department=department, name="Forest")
    started = time.perf_counter()
    run = services.training_execute(
        services.training_start(actor=admin, dataset_version=data, spec=spec, registered_model=model).pk
    )
    train_s = time.perf_counter() - started
    assert run.status == "succeeded", run.error_message
    version = ModelVersion.objects.get(run=run)
    # The platform queues an ONNX conversion job after registration where it has one (no worker
    # runs here): run it in-process, as the training job above.
    convert = getattr(services, "version_onnx_convert", None) or getattr(registry, "version_onnx_convert", None)
    onnx = {"status": "none (no version_onnx_convert in this code)"}
    if convert is not None:
        started = time.perf_counter()
        version = convert(version.pk)
        onnx = {"status": version.onnx_report.get("status"), "reason": version.onnx_report.get("reason", ""),
                "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
    services.promotion_settings_update(actor=admin, department=department, require_second_approver=False)
    request = services.promotion_request(actor=admin, version=version)
    services.promotion_approve(actor=admin, request=request)
    _token, secret = core.token_create(actor=client, name="bench-serve", scopes=["predict"])

    # What the MLflow side needs to fit the same forest: the training rows in the run's order
    # (tabular._split keeps them sorted) and the fitted forest's parameters.
    pipeline = tabular.load_model(get_storage().verified_local_path(version.artifact_sha256))
    forest = pipeline.steps[-1][1]
    frame = pd.read_parquet(_named_parquet(get_storage(), data, str(work)))
    holdout = sorted(version.holdout["indices"])
    frame.drop(index=holdout).reset_index(drop=True)[[*FEATURES, "label"]].to_parquet(work / "train.parquet")
    (work / "forest.json").write_text(json.dumps(forest.get_params()))
    for rows in [int(b) for b in args.bodies.split(",")]:
        sample = frame.loc[holdout[:rows], FEATURES]  # rows the forest has not seen
        body = {"dataframe_split": {"columns": FEATURES, "data": sample.to_numpy().tolist()}}
        (work / f"body-{rows}.json").write_text(json.dumps(body))
    print(json.dumps({
        "rows": args.rows, "train_rows": len(frame) - len(holdout), "trees": forest.n_estimators, "train_s": train_s,
        "version": version.number, "token": secret, "path": f"/api/v1/models/{department.slug}/{model.slug}/predict",
        "sklearn": sklearn.__version__, "pipeline": [name for name, _step in pipeline.steps], "onnx": onnx,
    }))  # fmt: skip
    return 0


def _profile(args) -> int:
    """Where a request's time goes in our endpoint: N requests per body in this process, plain and under cProfile."""
    import cProfile
    import io
    import pstats

    import pandas as pd
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from lepton.models import ApiToken
    from lepton.services import token_create
    from models_repo import serving
    from models_repo.engine import tabular
    from models_repo.models import ModelAlias

    work = Path(args.work)
    n = args.profile
    alias = ModelAlias.objects.select_related("version__model__department").get(name="production")
    model = alias.version.model
    user = ApiToken.objects.get(name="bench-serve").user
    _t, secret = token_create(actor=user, name="bench-profile", scopes=["predict", "read"])
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}", HTTP_HOST="127.0.0.1")
    path = f"/api/v1/models/{model.department.slug}/{model.slug}/predict"
    out = {"n": n, "bodies": {}}
    # The floor of any API request here: GET /api/v1/me with the same token (authentication,
    # throttle, DRF, one small query), timed as the predict requests are.
    for _ in range(20):
        assert client.get("/api/v1/me").status_code == 200
    started = time.perf_counter()
    for _ in range(n):
        client.get("/api/v1/me")
    out["me_ms"] = (time.perf_counter() - started) * 1000 / n
    for rows in [int(b) for b in args.bodies.split(",")]:
        body = (work / f"body-{rows}.json").read_bytes()

        def once(body=body):
            response = client.post(path, body, content_type="application/json")
            assert response.status_code == 200, response.content[:500]

        for _ in range(20):
            once()
        with CaptureQueriesContext(connection) as captured:
            once()
        out.setdefault("queries", [" ".join(q["sql"].split())[:110] for q in captured.captured_queries])
        started = time.perf_counter()
        for _ in range(n):
            once()
        plain_ms = (time.perf_counter() - started) * 1000 / n
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for _ in range(n):
            once()
        profiler.disable()
        profiled_ms = (time.perf_counter() - started) * 1000 / n
        if hasattr(serving, "predictor"):
            runtime, loaded = serving.predictor(alias.version)
        else:
            runtime, loaded = "native", serving.load(alias.version)
        out["loaded"] = f"{runtime}: {type(loaded).__module__}.{type(loaded).__qualname__}"
        predict = loaded.answer if hasattr(loaded, "answer") else lambda frame, loaded=loaded: tabular.predict(loaded, frame)
        split = json.loads(body)["dataframe_split"]
        frame = pd.DataFrame(split["data"], columns=split["columns"])
        started = time.perf_counter()
        for _ in range(min(n, 50)):
            predict(frame)
        bare_ms = (time.perf_counter() - started) * 1000 / min(n, 50)
        stats = pstats.Stats(profiler)
        out["bodies"][str(rows)] = {
            "plain_ms": plain_ms, "profiled_ms": profiled_ms, "bare_predict_ms": bare_ms,
            "phases": _phases(stats, n, profiled_ms), "top": _top(stats, n),
        }  # fmt: skip
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(40)
        (work / f"profile-{rows}.txt").write_text(text.getvalue())
    print(json.dumps(out))
    return 0


# (file suffix, function) of the steps of one request, by cumulative time; nested steps are
# named with their parent. A step the code no longer has shows 0.
PHASES = [
    ("request through the test client (everything)", ("django/test/client.py", "request")),
    ("middleware before/after the view", None),
    ("predict fast path (a repeat caller; no Django)", ("models_repo/api/fastpath.py", "_answer")),
    ("  rate limit and access generation (Redis)", ("lepton/counters.py", "rate_hit")),
    ("DRF view dispatch", ("rest_framework/views.py", "dispatch")),
    ("  authentication (token lookup)", ("rest_framework/request.py", "_authenticate")),
    ("  throttle (Redis)", ("rest_framework/views.py", "check_throttles")),
    ("  JSON body parse", ("rest_framework/request.py", "_parse")),
    ("  _resolve: model, policy, alias (SQL)", ("models_repo/api/predict.py", "_resolve")),
    ("  body checks and DataFrame (table_from_body)", ("models_repo/api/predict.py", "table_from_body")),
    ("  predict_inputs (model + log)", ("models_repo/api/predict.py", "predict_inputs")),
    ("    serving.predict_frame", ("models_repo/serving.py", "predict_frame")),
    ("    serving.load (cache hit)", ("models_repo/serving.py", "load")),
    ("    serving.predictor (cache hit)", ("models_repo/serving.py", "predictor")),
    ("    ONNX answer (onnxruntime)", ("models_repo/engine/onnx/predictor.py", "answer")),
    ("    tabular.predict", ("models_repo/engine/tabular/__init__.py", "predict")),
    ("      sklearn Pipeline.predict", ("sklearn/pipeline.py", "predict")),
    ("      sklearn Pipeline.predict_proba", ("sklearn/pipeline.py", "predict_proba")),
    ("    prediction log sample", ("models_repo/api/predict.py", "add")),
    ("  response rendering (JSON)", ("rest_framework/response.py", "rendered_content")),
]


WORKER_ROOT = ("the Django application and the response (gunicorn worker)", ("django/core/handlers/wsgi.py", "__call__"))


def _phases(stats, n: int, profiled_ms: float, root=None) -> list:
    phases = [root, *PHASES[1:]] if root else PHASES
    cumulative: dict[tuple[str, str], float] = {}
    for (filename, _line, function), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():
        for _label, key in phases:
            if key and filename.endswith(key[0]) and function == key[1]:
                cumulative[key] = max(cumulative.get(key, 0.0), ct)
    total = cumulative.get(phases[0][1], 0.0)
    rows = []
    for label, key in phases:
        if key is None:  # what the client and middleware add around the DRF view
            seconds = total - cumulative.get(("rest_framework/views.py", "dispatch"), 0.0)
        else:
            seconds = cumulative.get(key, 0.0)
        ms = seconds * 1000 / n
        rows.append([label, {"ms": ms, "pct": 100 * ms / profiled_ms if profiled_ms else 0.0}])
    return rows


def _top(stats, n: int, count: int = 12) -> list[str]:
    entries = sorted(stats.stats.items(), key=lambda item: -item[1][2])[:count]
    root = str(ROOT) + os.sep
    lines = []
    for (filename, line, function), (_cc, calls, tottime, cumtime, _callers) in entries:
        where = filename.replace(root, "").split("site-packages/")[-1]
        lines.append(f"{tottime * 1000 / n:7.3f} own {cumtime * 1000 / n:7.3f} cum  {calls // n:>5}×  {where}:{line}({function})")
    return lines


# --- the MLflow child (runs in the MLflow environment: no Django, no Lepton) --------------------------


def _fit_mlflow(work: Path) -> int:
    import warnings

    import mlflow
    import mlflow.sklearn
    import pandas as pd
    import sklearn
    from mlflow.models import infer_signature
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    warnings.filterwarnings("ignore")
    train = pd.read_parquet(work / "train.parquet")
    params = json.loads((work / "forest.json").read_text())
    X, y = train[FEATURES], train["label"].to_numpy()
    # The product's numeric preprocessing (models_repo.engine.tabular.build_pipeline: a float cast,
    # median imputation, standard scaling) and the very forest parameters, seed included.
    pipeline = Pipeline(
        [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler()), ("forest", RandomForestClassifier(**params))]
    )
    started = time.perf_counter()
    pipeline.fit(X, y)
    fit_s = time.perf_counter() - started
    target = work / "mlflow-model"
    # MLflow's default (skops) format; these two types are ours to trust (the file is made right here).
    mlflow.sklearn.save_model(
        pipeline,
        str(target),
        signature=infer_signature(X, pipeline.predict(X.head(5))),
        skops_trusted_types=["numpy.dtype", "sklearn.tree._tree.Tree"],
    )
    model = mlflow.pyfunc.load_model(str(target))
    timing = {}
    predictions = []
    for body in sorted(work.glob("body-*.json"), key=lambda p: int(p.stem.split("-")[1])):
        split = json.loads(body.read_text())["dataframe_split"]
        frame = pd.DataFrame(split["data"], columns=split["columns"])
        predictions = [str(v) for v in model.predict(frame)]
        started = time.perf_counter()
        for _ in range(30):
            model.predict(frame)
        timing[f"{len(frame)} rows"] = f"{(time.perf_counter() - started) * 1000 / 30:.2f} ms"
    print(json.dumps({
        "mlflow": mlflow.__version__, "sklearn": sklearn.__version__, "fit_s": fit_s, "predictions": predictions,
        "predict_ms": ", ".join(f"{k} {v}" for k, v in timing.items()),
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
