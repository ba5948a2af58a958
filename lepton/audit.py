"""The audit log writer and its hash chain. Services call `record()` inside their transaction.

Where the change came from (IP, user agent) is taken from the request that is being
served, set by `lepton.middleware.RequestContextMiddleware`; tasks and commands have none.

The chain (tamper evidence). Every event is sealed once: it gets the next position `seq`
(1, 2, 3, …), `prev_hash` = the hash of event `seq - 1` ("" for the first) and
`hash` = sha256 over `canonical(event)`, a JSON text with sorted keys of every recorded
field and `prev_hash`. Changing any field of a sealed event, deleting one or reordering
them breaks a link that `verify(…)` (`manage.py verify_audit`) names.

Why sealing is a separate step and not done in `record()`: writers run in parallel
transactions, and an event's predecessor must be an event that is already committed,
or a rolled-back transaction would leave a hole, and two writers could both chain onto
the same predecessor. So `record()` only inserts the row (unsealed) and asks for
`seal_pending()` on commit; the dispatcher also runs it periodically
(LEPTON_PERIODIC_TASKS) for events whose on-commit call was lost (a killed process).
`seal_pending()` takes one PostgreSQL advisory lock (on SQLite, the write transaction
itself serialises writers), reads the last sealed event and seals the committed,
unsealed ones in id order. Only one sealer runs at a time and it sees only committed
rows, so positions are strictly increasing without gaps, and `seq` is unique in the
database besides. The order of the chain is the order of sealing, which follows the
order of commits, not necessarily of `at`.

What the chain cannot tell: the removal of the newest events (truncation of the tail)
leaves a valid shorter chain; operators who need that keep the head hash that
`verify_audit` prints elsewhere (a ticket, a log shipper) and compare it.
"""

import hashlib
import json
import logging
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC

from django.db import connection, models, transaction

from lepton.models import AuditEvent

logger = logging.getLogger(__name__)

# pg_advisory_xact_lock key of the sealer ("LEPTAUDT" as a 64-bit integer).
SEAL_LOCK_KEY = 0x4C45505441554454 - (1 << 63)
SEAL_BATCH = 500


@dataclass(frozen=True)
class RequestContext:
    ip: str | None = None
    user_agent: str = ""


_NO_REQUEST = RequestContext()
_request_context: ContextVar[RequestContext | None] = ContextVar("lepton_request_context", default=None)


def set_request_context(context: RequestContext):
    return _request_context.set(context)


def reset_request_context(token) -> None:
    _request_context.reset(token)


def object_type(obj_or_model) -> str:
    meta = obj_or_model._meta
    return f"{meta.app_label}.{meta.model_name}"


def _jsonable(value):
    if isinstance(value, models.Model):
        return str(value.pk)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def record(*, actor, action: str, obj=None, department=None, changes: dict | None = None, object_repr: str = "") -> AuditEvent:
    """Write one audit event. Call inside the service's `transaction.atomic()` block."""
    context = _request_context.get() or _NO_REQUEST
    if department is None and obj is not None:
        from lepton.models import Department

        department = obj if isinstance(obj, Department) else getattr(obj, "department", None)
    actor_user = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    transaction.on_commit(_seal_after_commit)
    return AuditEvent.objects.create(
        actor=actor_user,
        actor_label=actor_user.get_username() if actor_user else "system",
        action=action,
        object_type=object_type(obj) if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=(object_repr or (str(obj) if obj is not None else ""))[:200],
        department=department,
        ip=context.ip,
        user_agent=context.user_agent[:300],
        changes=_jsonable(changes or {}),
    )


def diff(instance, fields: list[str], new_values: dict) -> dict:
    """{field: [old, new]} for the fields whose value changes."""
    changes = {}
    for field in fields:
        if field in new_values and getattr(instance, field) != new_values[field]:
            changes[field] = [_jsonable(getattr(instance, field)), _jsonable(new_values[field])]
    return changes


# --- the hash chain -------------------------------------------------------------------------

# The fields a hash covers. Adding one changes every hash: old events would need a versioned
# canonical form, so keep this list as it is.
CHAINED_FIELDS = (
    "id",
    "seq",
    "at",
    "actor_id",
    "actor_label",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "department_id",
    "ip",
    "user_agent",
    "changes",
    "prev_hash",
)


def canonical(event: AuditEvent) -> str:
    """The text an event's hash is taken over: its chained fields as JSON with sorted keys."""
    values = {}
    for field in CHAINED_FIELDS:
        value = getattr(event, field)
        if field == "at":
            value = value.astimezone(UTC).isoformat(timespec="microseconds")
        values[field] = value
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def event_hash(event: AuditEvent) -> str:
    return hashlib.sha256(canonical(event).encode("utf-8")).hexdigest()


def seal_pending() -> int:
    """Seal every committed, unsealed event in id order; returns how many were sealed.

    Safe to run from many processes at once (one advisory lock); see the module docstring.
    """
    sealed = 0
    while True:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEAL_LOCK_KEY])
            last = AuditEvent.objects.filter(seq__isnull=False).order_by("-seq").values_list("seq", "hash").first()
            seq, prev = last if last else (0, "")
            batch = list(AuditEvent.objects.filter(seq__isnull=True).order_by("id")[:SEAL_BATCH])
            for event in batch:
                seq += 1
                event.seq = seq
                event.prev_hash = prev
                # Hash what the database gives back (jsonb key order, inet text), as verify() will.
                event.hash = prev = event_hash(event)
            AuditEvent.objects.bulk_update(batch, ["seq", "prev_hash", "hash"])
        sealed += len(batch)
        if len(batch) < SEAL_BATCH:
            return sealed


def _seal_after_commit() -> None:
    try:
        seal_pending()
    except Exception:  # the periodic run seals what this one could not; the change itself is committed
        logger.exception("Sealing audit events failed; the periodic run will retry.")


@dataclass(frozen=True)
class ChainReport:
    """The outcome of `verify`: `ok`, how many sealed events were checked, how many wait for
    sealing, the head hash, and for a broken chain the first bad event and what differs."""

    ok: bool
    checked: int
    pending: int
    head: str = ""
    broken_id: int | None = None
    broken_seq: int | None = None
    reason: str = ""


def verify() -> ChainReport:
    """Walk the chain from its start and report the first broken link."""
    expected_seq, prev = 1, ""
    checked = 0
    pending = AuditEvent.objects.filter(seq__isnull=True).count()
    events = AuditEvent.objects.filter(seq__isnull=False).order_by("seq").iterator(chunk_size=2000)
    for event in events:
        reason = _link_fault(event, expected_seq, prev)
        if reason:
            return ChainReport(False, checked, pending, prev, event.pk, event.seq, reason)
        prev = event.hash
        expected_seq += 1
        checked += 1
    return ChainReport(True, checked, pending, prev)


def _link_fault(event: AuditEvent, expected_seq: int, prev: str) -> str:
    """What is wrong with `event` as the link after `prev` at `expected_seq`; "" when nothing."""
    if event.seq != expected_seq:
        return f"position {event.seq} follows {expected_seq - 1}: events {expected_seq}–{event.seq - 1} are missing"
    if event.prev_hash != prev:
        return f"prev_hash {event.prev_hash[:12]}… differs from the previous event's hash {prev[:12] or '(none)'}…"
    actual = event_hash(event)
    if actual != event.hash:
        return f"content differs from what was sealed (stored hash {event.hash[:12]}…, content hashes to {actual[:12]}…)"
    return ""
