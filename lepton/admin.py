"""The Django admin of the core: departments, people, shares, tokens, the audit log, jobs.

Every write goes through the services (lepton.services, lepton.jobs.services), so the
admin writes the same audit events and keeps the same rules as the browser and the API
("a department keeps an admin", quotas in range…). A ServiceError becomes an error
message on the page and the whole save is rolled back (the admin's change and delete
views run in one transaction).

Platform staff (`is_staff`) may look at everything here, as the policy allows them to
view everything; changing anything needs a superuser. Tokens never show their hash;
the audit log, jobs and worker heartbeats are read-only records.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.utils.translation import gettext_lazy as _

from lepton import services
from lepton.collab.models import AccessRequest, Comment
from lepton.errors import Invalid, ServiceError
from lepton.forms import AdminLoginForm
from lepton.jobs import services as job_services
from lepton.jobs.models import Job, JobLogLine, WorkerHeartbeat
from lepton.models import ApiToken, AuditEvent, Department, ExternalIdentity, Membership, Role, Share

admin.site.site_header = _("Lepton administration")
admin.site.site_title = _("Lepton admin")
admin.site.index_title = _("Departments, people, jobs and the audit log")
# The admin's login is throttled like the site's (lepton.forms.ThrottledLogin).
admin.site.login_form = AdminLoginForm


class StaffViewsMixin:
    """Staff see every row (as the policy lets them view everything); only superusers change rows."""

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_add_permission(self, request, *args):
        return request.user.is_active and request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser


class ReadOnlyMixin(StaffViewsMixin):
    """A record nobody edits in the admin."""

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ServiceErrorsAsMessages:
    """Turns a ServiceError raised while saving or deleting into an error message, not a 500.

    The admin's change and delete views wrap the save in `transaction.atomic()`, so
    raising out of them rolls back everything the save had done; we then send the
    person back to the page they were on, with the service's message.
    """

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceError as exc:
            self.message_user(request, _service_message(exc), level=messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except ServiceError as exc:
            self.message_user(request, _service_message(exc), level=messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def get_actions(self, request):
        # Bulk delete would bypass the services' rules; rows are deleted one at a time instead.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


def _service_message(exc: ServiceError) -> str:
    details = "; ".join(f"{field}: {' '.join(map(str, errors))}" for field, errors in exc.fields.items())
    return f"{exc.message} ({details})" if details and details not in exc.message else exc.message


# --- departments and people --------------------------------------------------------------


class MembershipInline(StaffViewsMixin, admin.TabularInline):
    model = Membership
    extra = 0
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]
    autocomplete_fields = ["user"]


@admin.register(Department)
class DepartmentAdmin(ServiceErrorsAsMessages, StaffViewsMixin, admin.ModelAdmin):
    """Departments with their members inline. Saving calls department_create/department_update
    and the membership services; the first admin row of a new department becomes its first admin
    (without one, the person creating it is)."""

    list_display = ["slug", "name", "member_count", "max_concurrent_jobs", "gpu_minutes_per_month", "storage_bytes_quota"]
    search_fields = ["slug", "name", "description"]
    inlines = [MembershipInline]
    fieldsets = [
        (None, {"fields": ["slug", "name", "description", "created_at"]}),
        (_("Quotas"), {"fields": ["max_concurrent_jobs", "gpu_minutes_per_month", "storage_bytes_quota"]}),
    ]

    def get_queryset(self, request):
        from django.db.models import Count

        return super().get_queryset(request).annotate(_members=Count("memberships"))

    @admin.display(description=_("members"), ordering="_members")
    def member_count(self, obj) -> int:
        return obj._members

    def get_readonly_fields(self, request, obj=None):
        # The slug is in URLs and API paths: it is chosen once.
        return ["slug", "created_at"] if obj is not None else ["created_at"]

    def has_delete_permission(self, request, obj=None):
        # A department owns jobs, data and models; there is no service to delete one (yet).
        return False

    def save_model(self, request, obj, form, change):
        if change:
            values = {f: form.cleaned_data[f] for f in form.changed_data if f in services.DEPARTMENT_FIELDS}
            if values:
                services.department_update(actor=request.user, department=obj, **values)
        # A new department is created in save_related, once its first admin is known from the inline.

    def save_related(self, request, form, formsets, change):
        if not change:
            first_admin = _first_admin_in(formsets)
            quotas = {f: form.cleaned_data[f] for f in services.DEPARTMENT_QUOTA_FIELDS if f in form.cleaned_data}
            department = services.department_create(
                actor=request.user,
                slug=form.cleaned_data["slug"],
                name=form.cleaned_data["name"],
                description=form.cleaned_data.get("description", ""),
                admin=first_admin,
                **quotas,
            )
            # The admin redirects to, and logs, the object it was given: make it the created row.
            form.instance.pk = department.pk
            form.instance.created_at = department.created_at
        for formset in formsets:
            self.save_formset(request, form, formset, change)

    def save_formset(self, request, form, formset, change):
        # commit=False fills new_objects / changed_objects / deleted_objects (the admin's change
        # message reads them) without writing; the services below do the writes.
        formset.save(commit=False)
        department = form.instance
        for membership in formset.new_objects:
            if Membership.objects.filter(department=department, user=membership.user).exists():
                existing = Membership.objects.get(department=department, user=membership.user)
                if existing.role == membership.role:
                    continue  # the first admin, already added by department_create
                raise Invalid(
                    _("%(user)s is already in %(department)s.")
                    % {"user": membership.user.get_username(), "department": department}
                )
            services.membership_add(actor=request.user, department=department, user=membership.user, role=membership.role)
        # Promotions to admin first, so that "make B admin, demote A" in one save keeps an admin throughout.
        changed = sorted(formset.changed_objects, key=lambda pair: pair[0].role != Role.ADMIN)
        for membership, fields in changed:
            if "user" in fields:
                raise Invalid(_("A membership belongs to one person: remove the row and add a new one instead."))
            services.membership_change_role(actor=request.user, membership=membership, role=membership.role)
        for membership in formset.deleted_objects:
            services.membership_remove(actor=request.user, membership=membership)


def _first_admin_in(formsets):
    for formset in formsets:
        if formset.model is not Membership:
            continue
        for form in formset.forms:
            data = getattr(form, "cleaned_data", None) or {}
            if data.get("role") == Role.ADMIN and data.get("user") and not data.get("DELETE"):
                return data["user"]
    return None


@admin.register(Membership)
class MembershipAdmin(ServiceErrorsAsMessages, StaffViewsMixin, admin.ModelAdmin):
    """One person's role in one department; saved through the membership services."""

    list_display = ["user", "department", "role", "created_at"]
    list_filter = ["role", "department"]
    search_fields = ["user__username", "user__first_name", "user__last_name", "department__slug", "department__name"]
    list_select_related = ["user", "department"]
    autocomplete_fields = ["user", "department"]

    def get_readonly_fields(self, request, obj=None):
        return ["user", "department", "created_at"] if obj is not None else ["created_at"]

    def save_model(self, request, obj, form, change):
        if change:
            saved = services.membership_change_role(actor=request.user, membership=obj, role=obj.role)
        else:
            saved = services.membership_add(actor=request.user, department=obj.department, user=obj.user, role=obj.role)
        obj.pk = saved.pk
        obj.created_at = saved.created_at

    def delete_model(self, request, obj):
        services.membership_remove(actor=request.user, membership=obj)


@admin.register(ExternalIdentity)
class ExternalIdentityAdmin(ServiceErrorsAsMessages, StaffViewsMixin, admin.ModelAdmin):
    """Who signs in through the provider as which account (single sign-on, lepton/oidc.py).

    Adding one links an existing account (linked and unlinked through the services, audited);
    an identity is never edited, because re-pointing it would hand the account to another person.
    """

    list_display = ["user", "subject", "issuer", "last_login", "created_at"]
    list_filter = ["issuer"]
    search_fields = ["user__username", "subject", "issuer"]
    list_select_related = ["user"]
    autocomplete_fields = ["user"]

    def get_readonly_fields(self, request, obj=None):
        stamps = ["created_at", "last_login", "groups", "granted"]
        return ["issuer", "subject", "user", *stamps] if obj is not None else stamps

    def has_change_permission(self, request, obj=None):
        return False  # shown, never edited: unlink and link again

    def save_model(self, request, obj, form, change):
        saved = services.external_identity_link(actor=request.user, user=obj.user, issuer=obj.issuer, subject=obj.subject)
        obj.pk = saved.pk
        obj.created_at = saved.created_at

    def delete_model(self, request, obj):
        services.external_identity_unlink(actor=request.user, identity=obj)


# --- shares and tokens -------------------------------------------------------------------


@admin.register(Share)
class ShareAdmin(ServiceErrorsAsMessages, StaffViewsMixin, admin.ModelAdmin):
    """Shares are granted by the owning department's maintainers in the app; here they can be revoked."""

    list_display = ["content_type", "object_id", "department", "level", "granted_by", "created_at", "expires_at"]
    list_filter = ["level", "department", "content_type"]
    search_fields = ["object_id", "purpose", "department__slug"]
    readonly_fields = [
        "content_type",
        "object_id",
        "department",
        "level",
        "purpose",
        "granted_by",
        "created_at",
        "expires_at",
    ]

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        services.share_revoke(actor=request.user, share=obj)


@admin.register(ApiToken)
class ApiTokenAdmin(ServiceErrorsAsMessages, StaffViewsMixin, admin.ModelAdmin):
    """Tokens are created by their owner (the secret is shown once, to them); the admin sees the
    visible prefix and can revoke. The stored hash is never shown, listed or searchable."""

    list_display = ["name", "user", "prefix", "scopes", "created_at", "expires_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix", "user__username"]
    list_select_related = ["user"]
    # An explicit list: token_hash must never reach a page (tests/lepton/test_admin.py checks it).
    fields = ["name", "user", "prefix", "scopes", "created_at", "expires_at", "last_used_at", "revoked_at"]
    readonly_fields = fields
    actions = ["revoke"]

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # Revoked tokens stay, so that the audit log's references keep their meaning.
        return False

    @admin.action(description=_("Revoke selected tokens"), permissions=["revoke"])
    def revoke(self, request, queryset):
        _apply(self, request, queryset, lambda token: services.token_revoke(actor=request.user, token=token), _("revoked"))

    def has_revoke_permission(self, request):
        return request.user.is_active and request.user.is_superuser


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """The audit log: written by the services only, never edited or deleted."""

    list_display = ["at", "actor_label", "action", "object_type", "object_repr", "department", "ip"]
    list_filter = ["action", "object_type", "department"]
    search_fields = ["actor_label", "action", "object_type", "object_id", "object_repr"]
    date_hierarchy = "at"
    list_select_related = ["department"]


# --- jobs --------------------------------------------------------------------------------


class JobLogLineInline(admin.TabularInline):
    model = JobLogLine
    extra = 0
    fields = ["at", "level", "message"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff


@admin.register(Job)
class JobAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Jobs are records of work: read-only here, with cancel and requeue actions that call the job services."""

    list_display = [
        "short_id",
        "kind",
        "department",
        "status",
        "resource",
        "priority",
        "progress",
        "queued_at",
        "wait_seconds",
        "worker",
    ]
    list_filter = ["status", "kind", "department", "resource"]
    search_fields = ["kind", "requested_by__username", "worker", "error_message", "celery_task_id", "wait_reason"]
    list_select_related = ["department"]
    date_hierarchy = "queued_at"
    inlines = [JobLogLineInline]
    actions = ["cancel", "requeue"]
    fieldsets = [
        (None, {"fields": ["id", "kind", "params", "department", "requested_by", "priority", "resource"]}),
        (
            _("State"),
            {"fields": ["status", "progress", "progress_message", "wait_reason", "attempts", "max_attempts", "queue", "worker"]},
        ),
        (
            _("Timings"),
            {"fields": ["queued_at", "not_before", "released_at", "started_at", "heartbeat_at", "finished_at", "wait_seconds"]},
        ),
        (
            _("Outcome"),
            {
                "fields": [
                    "result",
                    "result_ref",
                    "error_message",
                    "error_traceback",
                    "cancel_requested_at",
                    "cancel_requested_by",
                    "celery_task_id",
                ]
            },
        ),
    ]

    def get_readonly_fields(self, request, obj=None):
        return [f for _label, spec in self.fieldsets for f in spec["fields"]]

    @admin.display(description=_("job"), ordering="id")
    def short_id(self, obj) -> str:
        return str(obj.pk)[:8]

    @admin.action(description=_("Cancel selected jobs"), permissions=["operate"])
    def cancel(self, request, queryset):
        _apply(self, request, queryset, lambda job: job_services.job_cancel(actor=request.user, job=job), _("cancelled"))

    @admin.action(description=_("Requeue selected jobs (failed or cancelled)"), permissions=["operate"])
    def requeue(self, request, queryset):
        _apply(self, request, queryset, lambda job: job_services.job_requeue(actor=request.user, job=job), _("requeued"))

    def has_operate_permission(self, request):
        # The job services decide per job (policy: superusers may cancel anything).
        return request.user.is_active and request.user.is_staff


def _apply(model_admin, request, queryset, operation, done: str) -> None:
    """Run a service on each selected row; report how many worked and each refusal's reason."""
    succeeded = 0
    for obj in queryset:
        try:
            operation(obj)
            succeeded += 1
        except ServiceError as exc:
            model_admin.message_user(request, f"{obj}: {_service_message(exc)}", level=messages.ERROR)
    if succeeded:
        model_admin.message_user(request, f"{succeeded} {done}.", level=messages.SUCCESS)


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Live Celery workers as they last reported themselves (written by the workers)."""

    list_display = ["hostname", "queues", "concurrency", "pid", "started_at", "last_seen"]
    search_fields = ["hostname"]


# --- working together (lepton/collab/): decided in the app, read here ----------------------------


@admin.register(AccessRequest)
class AccessRequestAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["object_repr", "department", "requester_department", "requested_by", "level", "status", "created_at"]
    list_filter = ["status", "level", "department"]
    search_fields = ["object_repr", "purpose", "requested_by__username"]


@admin.register(Comment)
class CommentAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["content_type", "object_id", "author", "created_at"]
    list_filter = ["content_type"]
    search_fields = ["body", "author__username"]
