"""Viewsets of the core API (/api/v1/): me, departments, memberships, jobs, tokens, audit.

Every queryset starts from lepton.policy (directly or through lepton.selectors), so an
object out of the caller's reach is a 404; every write calls a service, which checks the
role (403 with a reason), changes the rows and writes the audit event. Service errors are
rendered by lepton.api.errors.exception_handler in the one error shape.
"""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.db.models import Count
from django.utils.functional import cached_property
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from lepton import policy, selectors, services
from lepton.api.serializers import (
    ApiTokenCreatedSerializer,
    ApiTokenCreateSerializer,
    ApiTokenSerializer,
    AuditEventSerializer,
    DepartmentCreateSerializer,
    DepartmentSerializer,
    DepartmentUpdateSerializer,
    ErrorSerializer,
    JobDetailSerializer,
    JobLogLineSerializer,
    JobSerializer,
    JobSubmitSerializer,
    MembershipCreateSerializer,
    MembershipSerializer,
    MembershipUpdateSerializer,
    MeSerializer,
)
from lepton.errors import Forbidden, Invalid
from lepton.filtersets import AuditEventFilterSet, JobFilterSet
from lepton.jobs import services as job_services
from lepton.jobs.models import Job
from lepton.models import ApiToken, AuditEvent, Department, Membership


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Documents lepton.api.authentication.BearerTokenAuthentication in the OpenAPI schema."""

    target_class = "lepton.api.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token from your profile page or POST /api/v1/tokens/ (`lep_…`).",
        }


def errors(*codes: int) -> dict:
    """Schema responses in the one error shape for the given status codes."""
    return {code: ErrorSerializer for code in codes}


# Statuses every authenticated endpoint may answer: not logged in, wrong token scope, throttled.
COMMON = (401, 403, 429)


def _is_schema_generation(view) -> bool:
    # drf-spectacular instantiates views without a request user or URL kwargs.
    return getattr(view, "swagger_fake_view", False)


# --- me ----------------------------------------------------------------------------------


class MeView(APIView):
    """The caller: user, departments with roles, staff flags, and the token in use."""

    @extend_schema(operation_id="me_retrieve", responses={200: MeSerializer, **errors(*COMMON)})
    def get(self, request):
        user = request.user
        memberships = (
            policy.visible_to(user, Membership).filter(user=user).select_related("department").order_by("department__name")
        )
        token = request.auth if isinstance(request.auth, ApiToken) else None
        data = {
            "username": user.get_username(),
            "full_name": user.get_full_name(),
            "email": user.email,
            "is_staff": user.is_staff,
            "is_superuser": user.is_superuser,
            "departments": memberships,
            "token": token,
        }
        return Response(MeSerializer(data, context={"request": request}).data)


# --- departments -------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="Departments you belong to", responses={200: DepartmentSerializer, **errors(*COMMON)}),
    retrieve=extend_schema(summary="One department", responses={200: DepartmentSerializer, **errors(*COMMON, 404)}),
    create=extend_schema(
        summary="Create a department (platform administrators)",
        responses={201: DepartmentSerializer, **errors(400, *COMMON)},
    ),
    partial_update=extend_schema(
        summary="Change name and description (maintainers) or quotas (admins)",
        responses={200: DepartmentSerializer, **errors(400, *COMMON, 404)},
    ),
)
class DepartmentViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet
):
    lookup_field = "slug"
    lookup_value_regex = r"[-a-z0-9]+"
    # PUT would have to resend every quota; PATCH says exactly what changes.
    http_method_names = ["get", "post", "patch", "head", "options"]
    serializer_class = DepartmentSerializer
    filter_backends: list = []

    def get_queryset(self):
        # Explicit order: Meta.ordering is dropped from GROUP BY queries, and pages need one.
        return policy.visible_to(self.request.user, Department).annotate(member_count=Count("memberships")).order_by("name", "pk")

    def get_serializer_class(self):
        return {"create": DepartmentCreateSerializer, "partial_update": DepartmentUpdateSerializer}.get(
            self.action, DepartmentSerializer
        )

    def perform_create(self, serializer):
        values = dict(serializer.validated_data)
        admin_name = values.pop("admin", None)
        admin = None
        if admin_name:
            try:
                admin = services.user_find(admin_name)
            except Invalid as exc:
                raise Invalid(exc.message, fields={"admin": exc.fields["user"]}) from None
        department = services.department_create(actor=self.request.user, admin=admin, **values)
        # Read back through the policy queryset, so the answer carries the member count.
        serializer.instance = self.get_queryset().get(pk=department.pk)

    def perform_update(self, serializer):
        department = services.department_update(
            actor=self.request.user, department=serializer.instance, **serializer.validated_data
        )
        serializer.instance = self.get_queryset().get(pk=department.pk)


# --- memberships -------------------------------------------------------------------------


DEPARTMENT_SLUG = OpenApiParameter("department_slug", OpenApiTypes.STR, OpenApiParameter.PATH, description="Department slug")
USERNAME = OpenApiParameter("username", OpenApiTypes.STR, OpenApiParameter.PATH, description="The member's username")


@extend_schema_view(
    list=extend_schema(
        summary="Members of a department and their roles",
        parameters=[DEPARTMENT_SLUG],
        responses={200: MembershipSerializer, **errors(*COMMON, 404)},
    ),
    retrieve=extend_schema(
        summary="One member's role",
        parameters=[DEPARTMENT_SLUG, USERNAME],
        responses={200: MembershipSerializer, **errors(*COMMON, 404)},
    ),
    create=extend_schema(
        summary="Add a person (maintainers; admins for the admin role)",
        parameters=[DEPARTMENT_SLUG],
        responses={201: MembershipSerializer, **errors(400, *COMMON, 404)},
    ),
    partial_update=extend_schema(
        summary="Change a member's role (the last admin cannot be demoted: 409)",
        parameters=[DEPARTMENT_SLUG, USERNAME],
        responses={200: MembershipSerializer, **errors(400, *COMMON, 404, 409)},
    ),
    destroy=extend_schema(
        summary="Remove a person from the department (not the last admin: 409)",
        parameters=[DEPARTMENT_SLUG, USERNAME],
        responses={204: None, **errors(*COMMON, 404, 409)},
    ),
)
class MembershipViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Memberships of one department, addressed by username (public URLs carry no integer ids)."""

    lookup_field = "user__username"
    lookup_url_kwarg = "username"
    lookup_value_regex = r"[^/]+"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    serializer_class = MembershipSerializer
    filter_backends: list = []

    @cached_property
    def department(self) -> Department:
        """The department in the URL, or 404 when the caller cannot see it."""
        return policy.get_visible_or_404(self.request.user, Department, slug=self.kwargs["department_slug"])

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # Resolve the department before the body is validated: to an outsider every method
        # answers 404, never a validation error that tells the department exists.
        if not _is_schema_generation(self):
            self.department  # noqa: B018 - raises Http404

    def get_queryset(self):
        if _is_schema_generation(self):
            return Membership.objects.none()
        return selectors.department_members(self.request.user, self.department).select_related("department")

    def get_serializer_class(self):
        return {"create": MembershipCreateSerializer, "partial_update": MembershipUpdateSerializer}.get(
            self.action, MembershipSerializer
        )

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.membership_add(
            actor=self.request.user, department=self.department, user=services.user_find(data["user"]), role=data["role"]
        )

    def perform_update(self, serializer):
        serializer.instance = services.membership_change_role(
            actor=self.request.user, membership=serializer.instance, role=serializer.validated_data["role"]
        )

    def perform_destroy(self, instance):
        services.membership_remove(actor=self.request.user, membership=instance)


# --- jobs --------------------------------------------------------------------------------


JOB_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The job's id")


@extend_schema_view(
    list=extend_schema(summary="Jobs you may see, newest first", responses={200: JobSerializer, **errors(400, *COMMON)}),
    retrieve=extend_schema(
        summary="One job: status, progress, timings, result, error",
        parameters=[JOB_ID],
        responses={200: JobDetailSerializer, **errors(*COMMON, 404)},
    ),
    create=extend_schema(
        summary="Start a job in a department (members and above)",
        responses={201: JobDetailSerializer, **errors(400, *COMMON, 404)},
    ),
)
class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    serializer_class = JobSerializer
    filterset_class = JobFilterSet

    def get_queryset(self):
        return selectors.jobs_visible(self.request.user)

    def get_serializer_class(self):
        return {
            "list": JobSerializer,
            "create": JobSubmitSerializer,
            "log": JobLogLineSerializer,
        }.get(self.action, JobDetailSerializer)

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = job_services.job_submit(
            actor=self.request.user,
            department=data["department"],
            kind=data["kind"],
            params=data["params"],
            priority=data["priority"],
        )

    def _detail(self, job: Job) -> Response:
        return Response(JobDetailSerializer(job, context=self.get_serializer_context()).data)

    @extend_schema(
        summary="Cancel a job (queued: at once; running: at its next step). A finished job answers 409.",
        request=None,
        parameters=[JOB_ID],
        responses={200: JobDetailSerializer, **errors(*COMMON, 404, 409)},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def cancel(self, request, pk=None):
        return self._detail(job_services.job_cancel(actor=request.user, job=self.get_object()))

    @extend_schema(
        summary="Run a failed or cancelled job again",
        request=None,
        parameters=[JOB_ID],
        responses={200: JobDetailSerializer, **errors(*COMMON, 404, 409)},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def requeue(self, request, pk=None):
        return self._detail(job_services.job_requeue(actor=request.user, job=self.get_object()))

    @extend_schema(
        summary="A job's log lines, oldest first",
        parameters=[
            JOB_ID,
            OpenApiParameter(
                "after",
                OpenApiTypes.INT,
                description="Only lines with an id greater than this (for tailing: pass the last id you have).",
            ),
        ],
        responses={200: JobLogLineSerializer(many=True), **errors(400, *COMMON, 404)},
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def log(self, request, pk=None):
        job = self.get_object()
        lines = job.log_lines.order_by("id")
        after = request.query_params.get("after")
        if after not in (None, ""):
            try:
                lines = lines.filter(id__gt=int(after))
            except ValueError:
                message = "'after' must be a log line id (a whole number)."
                raise Invalid(message, fields={"after": [message]}) from None
        page = self.paginate_queryset(lines)
        return self.get_paginated_response(JobLogLineSerializer(page, many=True).data)


# --- tokens ------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="Your API tokens (never their secrets)", responses={200: ApiTokenSerializer, **errors(*COMMON)}),
    retrieve=extend_schema(summary="One of your tokens", responses={200: ApiTokenSerializer, **errors(*COMMON, 404)}),
    create=extend_schema(
        summary="Create a token: the secret is in this answer only",
        responses={201: ApiTokenCreatedSerializer, **errors(400, *COMMON)},
    ),
    destroy=extend_schema(summary="Revoke a token", responses={204: None, **errors(*COMMON, 404, 409)}),
)
class ApiTokenViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = ApiTokenSerializer
    filter_backends: list = []

    def get_queryset(self):
        # This endpoint is "my tokens", also for platform staff (the policy lets them see
        # everyone's): they manage other people's tokens in the admin.
        return policy.visible_to(self.request.user, ApiToken).filter(user_id=self.request.user.pk)

    def get_serializer_class(self):
        return ApiTokenCreateSerializer if self.action == "create" else ApiTokenSerializer

    def perform_create(self, serializer):
        data = serializer.validated_data
        used = self.request.auth
        if isinstance(used, ApiToken):
            # A token may not mint a token stronger than itself.
            extra = sorted(set(data["scopes"]) - set(used.scopes))
            if extra:
                raise Forbidden(
                    f"This token cannot create a token with scopes it lacks: {', '.join(extra)}.",
                    fields={"scopes": [f"Not in this token's scopes: {', '.join(extra)}."]},
                )
        token, secret = services.token_create(
            actor=self.request.user, name=data["name"], scopes=data["scopes"], expires_at=data["expires_at"]
        )
        token.secret = secret
        serializer.instance = token

    def perform_destroy(self, instance):
        services.token_revoke(actor=self.request.user, token=instance)


# --- audit -------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="Audit events of your departments, newest first", responses={200: AuditEventSerializer, **errors(400, *COMMON)}
    ),
)
class AuditEventViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilterSet

    def get_queryset(self):
        return policy.visible_to(self.request.user, AuditEvent).select_related("department")


# --- docs --------------------------------------------------------------------------------


class ApiDocsView(SpectacularSwaggerSplitView):
    """Swagger UI (assets from drf-spectacular-sidecar, no CDN); people log in first.

    The split view serves its start-up script from this URL (`?script`), not inline, so the
    page runs under the Content-Security-Policy (lepton/settings.py) without 'unsafe-inline'.

    The page itself holds no data, but the schema it loads needs a session, so an
    anonymous visitor is sent to the login page instead of a UI that cannot load.
    """

    permission_classes = [AllowAny]

    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return super().get(request, *args, **kwargs)
