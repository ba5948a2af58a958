"""API of working together, mounted at /api/v1/ by lepton/api/urls.py.

/shares/            the shares of the objects you may share (maintainers): list, create, revoke
/access-requests/   requests you decide or sent: create, list, approve, reject, withdraw
/comments/          an object's thread (?object_type=&object_id=): list, add
/watches/           what you watch: list, watch, unwatch

Querysets start from the policy; writes call the services, which audit and notify. An
object you may not see answers 404; so does a request for a non-discoverable object.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from lepton import policy, services
from lepton.api.views import COMMON, errors
from lepton.collab import selectors, targets
from lepton.collab import services as collab_services
from lepton.collab.api.serializers import (
    AccessRequestCreateSerializer,
    AccessRequestFilterSerializer,
    AccessRequestSerializer,
    ApproveSerializer,
    CommentCreateSerializer,
    CommentSerializer,
    DiscoverableSerializer,
    DiscoverableSetSerializer,
    RejectSerializer,
    ShareCreateSerializer,
    ShareSerializer,
    WatchInputSerializer,
    WatchSerializer,
)
from lepton.collab.models import AccessRequest, Comment, Watch
from lepton.errors import Invalid, NotFound
from lepton.models import Department, Share


def _visible_target(user, label: str, object_id: str, *, shareable: bool = False, action: str = "view"):
    obj = targets.find(label, object_id, shareable=shareable)
    if not policy.can(user, "view", obj):
        raise NotFound()
    if action != "view":
        policy.require(user, action, obj)
    return obj


def _department(slug: str, field: str = "department") -> Department:
    department = Department.objects.filter(slug=slug).first()
    if department is None:
        message = _("No department '%(slug)s'.") % {"slug": slug}
        raise Invalid(message, fields={field: [message]})
    return department


TARGET = [
    OpenApiParameter("object_type", OpenApiTypes.STR, description="datalake.dataset, models_repo.registeredmodel, …"),
    OpenApiParameter("object_id", OpenApiTypes.STR, description="The object's id."),
]


@extend_schema_view(
    list=extend_schema(
        summary="Shares of the objects you may share", parameters=TARGET, responses={200: ShareSerializer, **errors(400, *COMMON)}
    ),
    retrieve=extend_schema(summary="One share", responses={200: ShareSerializer, **errors(*COMMON, 404)}),
    create=extend_schema(
        summary="Share an object with another department (maintainers)",
        request=ShareCreateSerializer,
        responses={201: ShareSerializer, **errors(400, *COMMON, 404)},
    ),
    destroy=extend_schema(summary="Revoke a share", responses={204: None, **errors(*COMMON, 404)}),
)
class ShareViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    serializer_class = ShareSerializer
    filter_backends: list = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular: no request user
            return Share.objects.none()
        shares = collab_services.shares_managed(self.request.user).order_by("-created_at", "pk")
        if self.action == "list":
            params = self.request.query_params
            if params.get("object_type"):
                app_label, _, model = params["object_type"].partition(".")
                shares = shares.filter(content_type__app_label=app_label, content_type__model=model)
            if params.get("object_id"):
                shares = shares.filter(object_id=params["object_id"])
        return shares

    def get_serializer_class(self):
        return ShareCreateSerializer if self.action == "create" else ShareSerializer

    def perform_create(self, serializer):
        data = serializer.validated_data
        obj = _visible_target(self.request.user, data["object_type"], data["object_id"], shareable=True)
        serializer.instance = services.share_grant(
            actor=self.request.user,
            obj=obj,
            department=_department(data["department"]),
            level=data["level"],
            purpose=data["purpose"],
            expires_at=data["expires_at"],
        )

    def perform_destroy(self, instance):
        services.share_revoke(actor=self.request.user, share=instance)

    @extend_schema(
        summary="Make an object discoverable by other departments, or hide it (its maintainers)",
        request=DiscoverableSetSerializer,
        responses={204: None, **errors(400, *COMMON, 404)},
    )
    @action(detail=False, methods=["post"])
    def discoverable(self, request):
        serializer = DiscoverableSetSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        obj = _visible_target(request.user, data["object_type"], data["object_id"], shareable=True)
        collab_services.discoverable_set(actor=request.user, obj=obj, discoverable=data["discoverable"])
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(summary="Revoke a share (as DELETE)", request=None, responses={204: None, **errors(*COMMON, 404)})
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        services.share_revoke(actor=request.user, share=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(
        summary="Access requests you decide (incoming) or sent (outgoing)",
        parameters=[
            OpenApiParameter("box", OpenApiTypes.STR, enum=["incoming", "outgoing"]),
            OpenApiParameter("status", OpenApiTypes.STR, enum=["pending", "approved", "rejected", "withdrawn"]),
        ],
        responses={200: AccessRequestSerializer, **errors(400, *COMMON)},
    ),
    retrieve=extend_schema(summary="One access request", responses={200: AccessRequestSerializer, **errors(*COMMON, 404)}),
    create=extend_schema(
        summary="Ask for view or use of a discoverable object (404 when it is not discoverable)",
        request=AccessRequestCreateSerializer,
        responses={201: AccessRequestSerializer, **errors(400, *COMMON, 404)},
    ),
)
class AccessRequestViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    serializer_class = AccessRequestSerializer
    filter_backends: list = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AccessRequest.objects.none()
        requests = selectors.requests_visible(self.request.user).order_by("-created_at", "pk")
        if self.action == "list":
            query = AccessRequestFilterSerializer(data=self.request.query_params)
            query.is_valid(raise_exception=True)
            box, wanted = query.validated_data.get("box"), query.validated_data.get("status")
            if box == "incoming":
                requests = policy.visible_to(self.request.user, AccessRequest, "decide", queryset=requests)
            elif box == "outgoing":
                requests = policy.visible_to(self.request.user, AccessRequest, "withdraw", queryset=requests)
            if wanted:
                requests = requests.filter(status=wanted)
        return requests

    def get_serializer_class(self):
        return {"create": AccessRequestCreateSerializer, "approve": ApproveSerializer, "reject": RejectSerializer}.get(
            self.action, AccessRequestSerializer
        )

    def perform_create(self, serializer):
        data = serializer.validated_data
        try:
            obj = targets.find(data["object_type"], data["object_id"], shareable=True)
        except Invalid:
            raise NotFound() from None  # an unknown kind is as missing as a hidden object
        department = _department(data["department"]) if data.get("department") else None
        serializer.instance = collab_services.access_request_create(
            actor=self.request.user, obj=obj, level=data["level"], purpose=data["purpose"], department=department
        )

    @extend_schema(
        summary="Discoverable objects of other departments (datasets, models, shop problems): metadata only",
        parameters=[OpenApiParameter("q", OpenApiTypes.STR, description="Words in the name or description.")],
        responses={200: DiscoverableSerializer(many=True), **errors(*COMMON)},
    )
    @action(detail=False, methods=["get"], pagination_class=None)
    def discoverable(self, request):
        found = selectors.discoverable_for(request.user, request.query_params.get("q", ""))
        rows = [
            {
                "object_type": label,
                "object_id": str(obj.pk),
                "name": obj.name,
                "description": obj.description,
                "department": obj.department.slug,
            }
            for label, obj in found
        ]
        return Response(DiscoverableSerializer(rows, many=True).data)

    def _answer(self, access_request) -> Response:
        return Response(AccessRequestSerializer(access_request).data)

    @extend_schema(
        summary="Approve: creates the share (the owning maintainers; not your own request)",
        responses={200: AccessRequestSerializer, **errors(400, *COMMON, 404, 409)},
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        access_request = self.get_object()  # 404 before the body is read
        serializer = ApproveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        return self._answer(
            collab_services.access_request_approve(
                actor=request.user, request=access_request, expires_at=data["expires_at"], level=data["level"]
            )
        )

    @extend_schema(
        summary="Reject with a reason (the owning maintainers)",
        responses={200: AccessRequestSerializer, **errors(400, *COMMON, 404, 409)},
    )
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        access_request = self.get_object()
        serializer = RejectSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._answer(
            collab_services.access_request_reject(
                actor=request.user, request=access_request, reason=serializer.validated_data["reason"]
            )
        )

    @extend_schema(
        summary="Withdraw your pending request",
        request=None,
        responses={200: AccessRequestSerializer, **errors(*COMMON, 404, 409)},
    )
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None):
        return self._answer(collab_services.access_request_withdraw(actor=request.user, request=self.get_object()))


@extend_schema_view(
    list=extend_schema(
        summary="An object's comments, oldest first (object_type and object_id required)",
        parameters=TARGET,
        responses={200: CommentSerializer, **errors(400, *COMMON, 404)},
    ),
    create=extend_schema(
        summary="Comment on an object you may see; @username tells that person",
        request=CommentCreateSerializer,
        responses={201: CommentSerializer, **errors(400, *COMMON, 404)},
    ),
)
class CommentViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    serializer_class = CommentSerializer
    filter_backends: list = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Comment.objects.none()
        params = self.request.query_params
        if not params.get("object_type") or not params.get("object_id"):
            message = _("Name the object: object_type and object_id.")
            raise Invalid(message, fields={"object_type": [message]})
        obj = _visible_target(self.request.user, params["object_type"], params["object_id"])
        return collab_services.comments_of(self.request.user, obj).order_by("created_at", "pk")

    def get_serializer_class(self):
        return CommentCreateSerializer if self.action == "create" else CommentSerializer

    def perform_create(self, serializer):
        data = serializer.validated_data
        obj = _visible_target(self.request.user, data["object_type"], data["object_id"])
        serializer.instance = collab_services.comment_add(actor=self.request.user, obj=obj, body=data["body"])


@extend_schema_view(
    list=extend_schema(summary="What you watch", responses={200: WatchSerializer, **errors(*COMMON)}),
    create=extend_schema(
        summary="Watch an object: its new versions, promotions and failed checks are told to you",
        request=WatchInputSerializer,
        responses={201: WatchSerializer, **errors(400, *COMMON, 404)},
    ),
)
class WatchViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    serializer_class = WatchSerializer
    filter_backends: list = []

    def get_queryset(self):
        return Watch.objects.filter(user_id=self.request.user.pk).select_related("content_type").order_by("-created_at", "pk")

    def get_serializer_class(self):
        return WatchInputSerializer if self.action in ("create", "unwatch") else WatchSerializer

    def perform_create(self, serializer):
        data = serializer.validated_data
        obj = _visible_target(self.request.user, data["object_type"], data["object_id"])
        serializer.instance = collab_services.watch(actor=self.request.user, obj=obj)

    @extend_schema(
        summary="Stop watching an object", request=WatchInputSerializer, responses={204: None, **errors(400, *COMMON, 404)}
    )
    @action(detail=False, methods=["post"])
    def unwatch(self, request):
        serializer = WatchInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        obj = _visible_target(request.user, data["object_type"], data["object_id"])
        collab_services.unwatch(actor=request.user, obj=obj)
        return Response(status=status.HTTP_204_NO_CONTENT)
