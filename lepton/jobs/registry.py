"""Job kinds: each registers a handler, a params serializer, its resource and time limit.

    @job_kind("lepton.selfcheck", params=SelfCheckParams, time_limit=120)
    def selfcheck(ctx: JobContext, params: dict) -> dict: ...

A handler must be idempotent (a job may run again after a lost worker), report progress
through `ctx.progress()`, and call `ctx.check_cancelled()` between steps.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from rest_framework import serializers


class TransientJobError(Exception):
    """A failure worth retrying (a service briefly away): the job is requeued with backoff."""


class JobError(Exception):
    """A failure the handler explains itself (bad input): the job fails with this message, no retry."""


class JobCancelled(Exception):
    """Raised by `ctx.check_cancelled()` when a cancel was asked for; the job ends cancelled."""


class JobTimedOut(Exception):
    """Raised by `ctx.check_cancelled()` when the kind's time limit has passed."""


class EmptyParams(serializers.Serializer):
    pass


@dataclass(frozen=True)
class JobKind:
    name: str
    handler: Callable
    params: type[serializers.Serializer]
    resource: str = "cpu"
    # A GPU kind that may fall back to CPU when no GPU worker is up (slower, but it runs).
    cpu_fallback: bool = False
    time_limit: int = 3600
    max_attempts: int = 3
    label: str = ""
    # Kinds users may start themselves from the Jobs page / API (others are started by services).
    user_startable: bool = False


_KINDS: dict[str, JobKind] = {}


def job_kind(
    name: str,
    *,
    params=EmptyParams,
    resource: str = "cpu",
    cpu_fallback: bool = False,
    time_limit: int = 3600,
    max_attempts: int = 3,
    label: str = "",
    user_startable: bool = False,
):
    def decorator(func):
        _KINDS[name] = JobKind(
            name=name,
            handler=func,
            params=params,
            resource=resource,
            cpu_fallback=cpu_fallback,
            time_limit=time_limit,
            max_attempts=max_attempts,
            label=label or name,
            user_startable=user_startable,
        )
        return func

    return decorator


_loaded = False


def load_kinds() -> None:
    """Import the modules that register kinds: every app's `jobs` module and LEPTON_JOB_MODULES."""
    global _loaded
    if _loaded:
        return
    from django.apps import apps

    for config in apps.get_app_configs():
        try:
            importlib.import_module(f"{config.name}.jobkinds")
        except ModuleNotFoundError as exc:
            if exc.name != f"{config.name}.jobkinds":
                raise
    for module in settings.LEPTON_JOB_MODULES:
        importlib.import_module(module)
    _loaded = True


def get_kind(name: str) -> JobKind | None:
    load_kinds()
    return _KINDS.get(name)


def all_kinds() -> dict[str, JobKind]:
    load_kinds()
    return dict(_KINDS)
