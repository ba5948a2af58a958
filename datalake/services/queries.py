"""Saved SQL console queries, kept per department."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from datalake.models import SavedQuery
from lepton import audit, policy
from lepton.errors import Forbidden, Invalid, NotFound
from lepton.i18n import translated
from lepton.models import Department

QUERY_FIELDS = ["name", "description", "sql"]


def _checked_sql(sql) -> str:
    """The statement must be one read-only query (parsed only: the views it names may come later)."""
    from datalake.engine.sql import QueryError, check_read_only

    try:
        check_read_only(sql)
    except QueryError as exc:
        message = translated(exc.message)
        raise Invalid(message, fields={"sql": [message]}, code=f"sql_{exc.code}") from None
    return sql


def _checked_name(department: Department, name, exclude=None) -> str:
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name:
        raise Invalid(_("A saved query needs a name."), fields={"name": [_("A saved query needs a name.")]})
    if len(name) > 200:
        raise Invalid(_("At most 200 characters."), fields={"name": [_("At most 200 characters.")]})
    taken = SavedQuery.objects.filter(department=department, name=name)
    if exclude is not None:
        taken = taken.exclude(pk=exclude.pk)
    if taken.exists():
        message = _("%(department)s already has a saved query named “%(name)s”.") % {"department": department.name, "name": name}
        raise Invalid(message, fields={"name": [message]}, code="name_taken")
    return name


def saved_query_create(*, actor, department: Department, name: str, sql: str, description: str = "") -> SavedQuery:
    """Save a query for `department` (members and above); the SQL must be one read-only statement."""
    if not policy.can(actor, "view", department):
        raise NotFound()
    if not policy.can(actor, "submit", department):
        raise Forbidden(_("Members and above may save queries."))
    sql = _checked_sql(sql)
    with transaction.atomic():
        name = _checked_name(department, name)
        query = SavedQuery.objects.create(
            department=department, name=name, sql=sql, description=description or "", created_by=actor
        )
        audit.record(actor=actor, action="sql.query_save", obj=query, changes={"name": name, "sql": sql[:2000]})
    return query


def saved_query_update(*, actor, query: SavedQuery, **values) -> SavedQuery:
    """Change a saved query's name, description or SQL (members of its department)."""
    unknown = set(values) - set(QUERY_FIELDS)
    if unknown:
        raise Invalid(
            _("Unknown fields: %(fields)s.") % {"fields": ", ".join(sorted(unknown))},
            fields={f: [_("Unknown field.")] for f in unknown},
        )
    policy.require(actor, "change", query)
    if "sql" in values:
        values["sql"] = _checked_sql(values["sql"])
    with transaction.atomic():
        query = SavedQuery.objects.select_for_update().get(pk=query.pk)
        if "name" in values:
            values["name"] = _checked_name(query.department, values["name"], exclude=query)
        changes = audit.diff(query, QUERY_FIELDS, values)
        if not changes:
            return query
        for field, value in values.items():
            setattr(query, field, value)
        query.updated_at = timezone.now()
        query.save(update_fields=[*values, "updated_at"])
        audit.record(actor=actor, action="sql.query_update", obj=query, changes=changes)
    return query


def saved_query_delete(*, actor, query: SavedQuery) -> None:
    """Delete a saved query: its author (still a member) or a maintainer."""
    policy.require(actor, "view", query)
    own = query.created_by_id == getattr(actor, "pk", None) and policy.can(actor, "change", query)
    if not (own or policy.can(actor, "delete", query)):
        raise Forbidden(_("Only the author or a maintainer may delete this saved query."))
    with transaction.atomic():
        audit.record(actor=actor, action="sql.query_delete", obj=query, changes={"name": query.name})
        query.delete()
