"""The audit log writer. Services call `record()` inside their transaction.

Where the change came from (IP, user agent) is taken from the request that is being
served, set by `lepton.middleware.RequestContextMiddleware`; tasks and commands have none.
"""

from contextvars import ContextVar
from dataclasses import dataclass

from django.db import models

from lepton.models import AuditEvent


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
