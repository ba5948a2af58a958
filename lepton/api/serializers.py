"""Serializers of the core API (/api/v1/): they validate input and present rows, never save.

Writes go through lepton.services / lepton.jobs.services, called from the viewsets. An
input serializer names the output it answers with (`output_serializer_class`), so a
viewset's `perform_create` can hand the service's result back to the same serializer.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from lepton import policy
from lepton.errors import NotFound
from lepton.jobs.models import Job, JobLogLine
from lepton.models import ApiToken, AuditEvent, Department, Membership, Role, TokenScope

User = get_user_model()


class InputSerializer(serializers.Serializer):
    """Validates a request body; rejects unknown keys; answers with `output_serializer_class`.

    Unknown keys are refused (400 naming them) rather than ignored, so that a client
    sending `slug` to a PATCH learns it cannot change it instead of seeing nothing happen.
    """

    output_serializer_class: type[serializers.Serializer] | None = None

    def validate(self, attrs):
        if isinstance(self.initial_data, dict):
            unknown = sorted(set(self.initial_data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field (it cannot be set here)."] for name in unknown})
        return attrs

    def to_representation(self, instance):
        if self.output_serializer_class is None:
            return super().to_representation(instance)
        return self.output_serializer_class(instance, context=self.context).data

    def create(self, validated_data):  # pragma: no cover - guarded: the viewsets call services
        raise NotImplementedError("API serializers never save; the viewset calls a service.")

    def update(self, instance, validated_data):  # pragma: no cover - guarded: the viewsets call services
        raise NotImplementedError("API serializers never save; the viewset calls a service.")


def _request_user(serializer: serializers.Serializer):
    request = serializer.context.get("request")
    return getattr(request, "user", None)


# --- me ----------------------------------------------------------------------------------


class MyDepartmentSerializer(serializers.Serializer):
    slug = serializers.CharField(source="department.slug")
    name = serializers.CharField(source="department.name")
    role = serializers.ChoiceField(choices=Role.choices)


class TokenInUseSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=TokenScope.choices))
    expires_at = serializers.DateTimeField(allow_null=True)


class MeSerializer(serializers.Serializer):
    """The caller: who they are, their departments and roles, and the token in use (if any)."""

    username = serializers.CharField()
    full_name = serializers.CharField()
    email = serializers.EmailField()
    is_staff = serializers.BooleanField()
    is_superuser = serializers.BooleanField()
    departments = MyDepartmentSerializer(many=True)
    token = TokenInUseSerializer(allow_null=True, help_text="The token this request was made with; null for a session.")


# --- departments -------------------------------------------------------------------------


class DepartmentSerializer(serializers.ModelSerializer):
    """A department with its quotas, member count and the caller's role in it."""

    member_count = serializers.IntegerField(read_only=True, help_text="People with any role in the department.")
    my_role = serializers.SerializerMethodField(help_text="The caller's role here; null for platform staff outside it.")

    class Meta:
        model = Department
        fields = [
            "slug",
            "name",
            "description",
            "max_concurrent_jobs",
            "gpu_minutes_per_month",
            "storage_bytes_quota",
            "member_count",
            "my_role",
            "created_at",
        ]
        read_only_fields = fields

    # A plain schema, not a second enum component for the same choices as RoleEnum.
    @extend_schema_field({"type": "string", "enum": Role.values, "nullable": True})
    def get_my_role(self, department: Department) -> str | None:
        # user_roles() is read once per request user, so this adds no query per row.
        return policy.role_in(_request_user(self), department)


class DepartmentCreateSerializer(InputSerializer):
    output_serializer_class = DepartmentSerializer

    slug = serializers.CharField(max_length=50, help_text="Lowercase letters, digits and hyphens; used in URLs.")
    name = serializers.CharField(max_length=120)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    max_concurrent_jobs = serializers.IntegerField(required=False, min_value=1, max_value=1000)
    gpu_minutes_per_month = serializers.IntegerField(required=False, min_value=0)
    storage_bytes_quota = serializers.IntegerField(required=False, min_value=0)
    admin = serializers.CharField(
        required=False, help_text="Username of the first admin; the caller when left out.", write_only=True
    )


class DepartmentUpdateSerializer(InputSerializer):
    """Name and description (maintainers); quotas (department admins)."""

    output_serializer_class = DepartmentSerializer

    name = serializers.CharField(max_length=120, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    max_concurrent_jobs = serializers.IntegerField(required=False, min_value=1, max_value=1000)
    gpu_minutes_per_month = serializers.IntegerField(required=False, min_value=0)
    storage_bytes_quota = serializers.IntegerField(required=False, min_value=0)


# --- memberships -------------------------------------------------------------------------


class MembershipSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username", read_only=True)
    full_name = serializers.SerializerMethodField()
    department = serializers.CharField(source="department.slug", read_only=True)

    class Meta:
        model = Membership
        fields = ["user", "full_name", "department", "role", "created_at"]
        read_only_fields = fields

    def get_full_name(self, membership: Membership) -> str:
        return membership.user.get_full_name()


class MembershipCreateSerializer(InputSerializer):
    output_serializer_class = MembershipSerializer

    user = serializers.CharField(max_length=150, help_text="Username of the person to add.")
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)


class MembershipUpdateSerializer(InputSerializer):
    output_serializer_class = MembershipSerializer

    role = serializers.ChoiceField(choices=Role.choices)


# --- jobs --------------------------------------------------------------------------------


class JobSerializer(serializers.ModelSerializer):
    """A job as lists show it: status, progress, why it waits, timings."""

    department = serializers.CharField(source="department.slug", read_only=True, allow_null=True, default=None)
    requested_by = serializers.CharField(source="requested_by.username", read_only=True, allow_null=True, default=None)
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "department",
            "requested_by",
            "priority",
            "resource",
            "status",
            "progress",
            "progress_message",
            "wait_reason",
            "attempts",
            "queued_at",
            "started_at",
            "finished_at",
            "wait_seconds",
            "duration_seconds",
            "cancel_requested_at",
            "error_message",
        ]
        read_only_fields = fields


class JobDetailSerializer(JobSerializer):
    """One job in full; the error traceback is shown to platform staff only (it may reveal internals)."""

    error_traceback = serializers.SerializerMethodField(help_text="Only for platform staff; null for everyone else.")

    class Meta(JobSerializer.Meta):
        fields = [
            *JobSerializer.Meta.fields,
            "params",
            "max_attempts",
            "queue",
            "released_at",
            "heartbeat_at",
            "worker",
            "result",
            "result_ref",
            "error_traceback",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_error_traceback(self, job: Job) -> str | None:
        user = _request_user(self)
        return job.error_traceback if user is not None and user.is_staff else None


class JobSubmitSerializer(InputSerializer):
    output_serializer_class = JobDetailSerializer

    kind = serializers.CharField(max_length=80, help_text="A user-startable job kind, e.g. `lepton.selfcheck`.")
    params = serializers.JSONField(required=False, default=dict, help_text="The kind's parameters (a JSON object).")
    priority = serializers.IntegerField(
        required=False,
        default=5,
        min_value=1,
        max_value=10,
        error_messages={
            "min_value": "Priority must be a whole number from 1 (lowest) to 10 (highest).",
            "max_value": "Priority must be a whole number from 1 (lowest) to 10 (highest).",
        },
    )
    department = serializers.CharField(max_length=50, help_text="Slug of the department that owns (and pays for) the job.")

    def validate_department(self, slug: str) -> Department:
        # A department the caller cannot see answers 404 like every object out of reach,
        # with the same message whether it exists or not.
        department = policy.visible_to(_request_user(self), Department).filter(slug=slug).first()
        if department is None:
            message = f"No department '{slug}' that you belong to."
            raise NotFound(message, fields={"department": [message]})
        return department


class JobLogLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobLogLine
        fields = ["id", "at", "level", "message"]
        read_only_fields = fields


# --- tokens ------------------------------------------------------------------------------


class ApiTokenSerializer(serializers.ModelSerializer):
    """A token as its owner sees it: never the secret, never the hash."""

    is_usable = serializers.SerializerMethodField()

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "scopes", "created_at", "expires_at", "last_used_at", "revoked_at", "is_usable"]
        read_only_fields = fields

    def get_is_usable(self, token: ApiToken) -> bool:
        return token.is_usable()


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    secret = serializers.CharField(read_only=True, help_text="The token itself. Shown this once; only its hash is kept.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class ApiTokenCreateSerializer(InputSerializer):
    output_serializer_class = ApiTokenCreatedSerializer

    name = serializers.CharField(max_length=100, help_text="What uses the token, e.g. 'MES nightly export'.")
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=TokenScope.choices), allow_empty=False)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


# --- audit -------------------------------------------------------------------------------


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_label", read_only=True)
    department = serializers.CharField(source="department.slug", read_only=True, allow_null=True, default=None)
    changes = serializers.JSONField(read_only=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "at",
            "actor",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "department",
            "ip",
            "user_agent",
            "changes",
        ]
        read_only_fields = fields


class ErrorSerializer(serializers.Serializer):
    """The one error shape of the API (documentation only; lepton.api.errors renders it)."""

    error = serializers.CharField(help_text="A stable code, e.g. `invalid`, `not_found`, `forbidden`, `last_admin`.")
    detail = serializers.CharField(help_text="What went wrong, for people.")
    # Declared fields are popped into _declared_fields by DRF's metaclass, so the name
    # `fields` does not shadow Serializer.fields.
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text='Messages per request field, e.g. `{"params.steps": ["…"]}`; empty when no field is at fault.',
    )
