"""Shared counters every web process reads cheaply: API rate limits and the access generation.

Rate limits are fixed windows per identity (`token:<pk>`, `user:<pk>`, `ip:<addr>`): the
first request of a window creates its counter with the window's length as expiry, each
request increments it, and a count over the limit is refused until the window ends.

The access generation is one integer that goes up after every committed change that can
change who may predict with what (tokens, people, memberships, shares, departments, models,
versions, aliases: `watch` connects those models' save and delete signals to `bump`).
models_repo.api.fastpath keeps per-process answers to "may this token predict with this
model, and with which version" only as long as the generation they were read under is
current, so a revoked token or a moved alias takes effect at the next request in every process.

With Redis (REDIS_URL) both live there under the cache's key prefix and one request costs one
round trip (`rate_hit(..., with_generation=True)` pipelines the two); the embedded default
keeps them in Django's file cache.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save

logger = logging.getLogger("lepton.counters")
GENERATION_KEY = "access-generation"
_clients: dict[str, object] = {}


def _redis():
    """This process's Redis client (thread-safe; redis-py resets its connection pool after a fork)."""
    client = _clients.get(settings.REDIS_URL)
    if client is None:
        import redis

        client = _clients.setdefault(settings.REDIS_URL, redis.Redis.from_url(settings.REDIS_URL))
    return client


def parse_rate(rate: str) -> tuple[int, int]:
    """'600/min' → (600, 60); the periods DRF's rate strings use (s, m, h, d and longer spellings)."""
    count, period = rate.split("/")
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[period[0]]
    return int(count), seconds


def rate_hit(ident: str, rate: str, *, with_generation: bool = False) -> tuple[float | None, int | None]:
    """Count one request of `ident` against `rate`.

    Returns (wait, generation): wait is None when the request is allowed, else the seconds
    until its window ends; generation is the access generation when asked for (else None).
    While Redis is unreachable the request is allowed and the generation is None: every API
    request passes here, and a broker restart must not turn reads from the database into
    errors (tests/faults/test_redis_restart.py). None makes the predict fast path hand the
    request to Django, which checks access in the database.
    """
    limit, window = parse_rate(rate)
    now = time.time()
    start = int(now // window) * window
    key = cache.make_key(f"rate:{ident}:{window}:{start}")
    if settings.REDIS_URL:
        import redis

        pipe = _redis().pipeline(transaction=False)
        pipe.set(key, 0, ex=window + 1, nx=True)
        pipe.incr(key)
        if with_generation:
            pipe.get(cache.make_key(GENERATION_KEY))
        try:
            replies = pipe.execute()
        except redis.RedisError as exc:
            logger.error("rate limit not counted, Redis is unreachable: %s", exc)
            return None, None
        count = replies[1]
        generation = int(replies[2] or 0) if with_generation else None
    else:
        name = f"rate:{ident}:{window}:{start}"
        cache.add(name, 0, timeout=window + 1)
        try:
            count = cache.incr(name)
        except ValueError:  # expired between add and incr (a window boundary)
            cache.set(name, 1, timeout=window + 1)
            count = 1
        generation = generation_current() if with_generation else None
    wait = None if count <= limit else max(start + window - now, 0.001)
    return wait, generation


def generation_current() -> int | None:
    """The access generation now (0 before the first change; None while Redis is unreachable)."""
    if settings.REDIS_URL:
        import redis

        try:
            return int(_redis().get(cache.make_key(GENERATION_KEY)) or 0)
        except redis.RedisError as exc:
            logger.error("access generation unknown, Redis is unreachable: %s", exc)
            return None
    return int(cache.get(GENERATION_KEY) or 0)


def bump() -> None:
    """Move the access generation on, now (callers in a transaction use `bump_on_commit`)."""
    try:
        if settings.REDIS_URL:
            _redis().incr(cache.make_key(GENERATION_KEY))
        else:
            cache.add(GENERATION_KEY, 0, timeout=None)
            cache.incr(GENERATION_KEY)
    except Exception as exc:  # a cache outage must not fail the change itself
        # The fast path's answers still expire (LEPTON_PREDICT_GRANT_SECONDS); operators see why.
        logger.error("could not move the access generation on: %s", exc)


def bump_on_commit(**_signal) -> None:
    """After the current transaction commits (at once outside one): a reader that sees the new
    generation also sees the committed rows."""
    transaction.on_commit(bump, robust=True)


def watch(*models) -> None:
    """Move the generation on after every save or delete of these models.

    Signals and not the services: the fast path must never outlive a change, and a signal
    cannot be forgotten by the next service that saves one of these rows. Queryset
    `.update()` sends no signal: the updates of these models that exist change nothing the
    fast path reads (a token's last use, a model's gate metric, a version's ONNX report).
    """
    for model in models:
        uid = f"lepton.counters.{model._meta.label}"
        post_save.connect(bump_on_commit, sender=model, dispatch_uid=f"{uid}.save", weak=False)
        post_delete.connect(bump_on_commit, sender=model, dispatch_uid=f"{uid}.delete", weak=False)
