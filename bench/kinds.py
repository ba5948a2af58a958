"""What bench/jobs.py runs: a no-op job kind and, as its peer, a bare Celery task.

Loaded in the worker through `LEPTON_JOB_MODULES=bench.kinds` (the job kind) and
`celery worker --include bench.kinds` (the bare task must be registered at start-up).
"""

import os
import time

from lepton.celery import app
from lepton.jobs.registry import job_kind


@job_kind("bench.noop", time_limit=30, max_attempts=1, label="Benchmark no-op", user_startable=True)
def noop(ctx, params):
    """Does nothing: what is measured is the job system around it."""
    return {}


@app.task(name="bench.celery_noop", ignore_result=True)
def celery_noop(sent_at: float, out_dir: str, index: int) -> None:
    """The bare Celery peer: records when it was sent and when it started, in one small file."""
    started = time.time()
    path = os.path.join(out_dir, str(index))
    with open(path + ".tmp", "w") as out:
        out.write(f"{sent_at} {started} {time.time()}")
    os.replace(path + ".tmp", path)  # atomic: the bench never reads a half-written file
