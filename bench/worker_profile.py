"""Where a worker's time goes for one no-op job: the SQL it runs and a cProfile of N runs.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<scratch db> .venv/bin/python bench/worker_profile.py

Runs `lepton.jobs.runner.run` in this process (no Celery, no dispatcher) on `bench.noop`
jobs in a database you give it (it migrates it and adds a `bench-profile` department;
use a scratch database), or in a temporary SQLite file when DATABASE_URL is unset.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--top", type=int, default=20, help="profile lines to print")
    args = parser.parse_args()
    if not 2 <= args.jobs <= 10000:
        parser.error("--jobs must be 2..10000")
    os.environ.setdefault("LEPTON_VAR_DIR", tempfile.mkdtemp(prefix="lepton-profile-"))
    os.environ["LEPTON_JOB_MODULES"] = "bench.kinds"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lepton.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from lepton import services
    from lepton.jobs import runner
    from lepton.jobs.services import job_submit

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_superuser(f"bench-profile-{time.time_ns()}", "bench@localhost", None)
    department = services.department_create(
        actor=user, slug=f"bench-profile-{time.time_ns()}", name="Benchmark profile", max_concurrent_jobs=1000
    )
    ids = [job_submit(actor=user, department=department, kind="bench.noop").pk for _ in range(args.jobs)]

    with CaptureQueriesContext(connection) as queries:
        runner.run(ids[0], hostname="profile")
    print(f"{connection.vendor}: {len(queries.captured_queries)} SQL statements for one job:")
    for query in queries.captured_queries:
        print(f"  {query['sql'][:100]}")

    profile = cProfile.Profile()
    start = time.perf_counter()
    profile.enable()
    for job_id in ids[1:]:
        runner.run(job_id, hostname="profile")
    profile.disable()
    elapsed = time.perf_counter() - start
    print(f"{(elapsed / (len(ids) - 1)) * 1000:.2f} ms per job, in-process, over {len(ids) - 1} jobs")
    pstats.Stats(profile).sort_stats("cumulative").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
