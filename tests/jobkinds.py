"""Job kinds used only by tests (loaded through LEPTON_JOB_MODULES, in workers too)."""

import os
import time
from pathlib import Path

from rest_framework import serializers

from lepton.jobs.registry import TransientJobError, job_kind


class SleepParams(serializers.Serializer):
    steps = serializers.IntegerField(min_value=1, max_value=1000, default=3)
    step_seconds = serializers.FloatField(min_value=0, max_value=30, default=0.1)
    # A file the handler appends one line to per completed run: counts completions across processes.
    marker = serializers.CharField(required=False, allow_blank=True, default="")


@job_kind("tests.sleep", params=SleepParams, time_limit=120, user_startable=True)
def sleep(ctx, params):
    for step in range(params["steps"]):
        ctx.check_cancelled()
        time.sleep(params["step_seconds"])
        ctx.progress(100 * (step + 1) / params["steps"], f"step {step + 1}")
    if params.get("marker"):
        with open(params["marker"], "a") as out:
            out.write(f"{ctx.job.pk} {os.getpid()}\n")
    return {"steps": params["steps"]}


@job_kind("tests.noop", time_limit=30, user_startable=True)
def noop(ctx, params):
    return {}


class FlakyParams(serializers.Serializer):
    marker = serializers.CharField()
    failures = serializers.IntegerField(min_value=0, max_value=10)


@job_kind("tests.flaky", params=FlakyParams, time_limit=30, max_attempts=3)
def flaky(ctx, params):
    """Fails transiently `failures` times (counted in a file), then succeeds."""
    marker = Path(params["marker"])
    seen = int(marker.read_text()) if marker.exists() else 0
    marker.write_text(str(seen + 1))
    if seen < params["failures"]:
        raise TransientJobError(f"transient failure {seen + 1}")
    return {"tries": seen + 1}


@job_kind("tests.broken", time_limit=30)
def broken(ctx, params):
    raise ValueError("the handler is broken")


@job_kind("tests.gpu", resource="gpu", time_limit=30, user_startable=True)
def gpu_only(ctx, params):
    return {"ran": "gpu"}


@job_kind("tests.gpu_sleep", resource="gpu", params=SleepParams, time_limit=120, user_startable=True)
def gpu_sleep(ctx, params):
    """tests.sleep on the `gpu` queue (tests/faults/test_two_workers.py)."""
    return sleep(ctx, params)


@job_kind("tests.gpu_or_cpu", resource="gpu", cpu_fallback=True, time_limit=30, user_startable=True)
def gpu_or_cpu(ctx, params):
    return {"ran": "anywhere"}


@job_kind("tests.slow_limit", time_limit=1)
def slow_limit(ctx, params):
    for _ in range(50):
        time.sleep(0.1)
        ctx.check_cancelled()
    return {}
