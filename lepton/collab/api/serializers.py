"""Serializers of working together (/api/v1/shares/, access-requests/, comments/, watches/).

They validate and present; the viewsets call lepton.services / lepton.collab.services.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from lepton.api.serializers import InputSerializer
from lepton.collab import targets
from lepton.collab.models import AccessRequest, AccessRequestStatus, Comment, Watch
from lepton.models import Share, ShareLevel


def _label(content_type) -> str:
    return f"{content_type.app_label}.{content_type.model}"


class TargetInputSerializer(InputSerializer):
    object_type = serializers.CharField(help_text="What is meant: datalake.dataset, models_repo.registeredmodel, …")
    object_id = serializers.CharField(max_length=64, help_text="Its id.")


class ShareSerializer(serializers.ModelSerializer):
    object_type = serializers.SerializerMethodField()
    department = serializers.CharField(source="department.slug", read_only=True)
    granted_by = serializers.CharField(source="granted_by.username", read_only=True, default=None)
    active = serializers.SerializerMethodField()

    class Meta:
        model = Share
        fields = ["id", "object_type", "object_id", "department", "level", "purpose", "granted_by", "created_at",
                  "expires_at", "active"]  # fmt: skip
        read_only_fields = fields

    def get_object_type(self, share) -> str:
        return _label(share.content_type)

    def get_active(self, share) -> bool:
        return share.is_active()


class ShareCreateSerializer(TargetInputSerializer):
    output_serializer_class = ShareSerializer
    department = serializers.SlugField(help_text="The department that receives access.")
    level = serializers.ChoiceField(choices=ShareLevel.choices, default=ShareLevel.VIEW)
    purpose = serializers.CharField(max_length=300, help_text="Why they need it.")
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class DiscoverableSetSerializer(TargetInputSerializer):
    discoverable = serializers.BooleanField(help_text="Whether other departments see its metadata and may ask for access.")


class DiscoverableSerializer(serializers.Serializer):
    """What another department may know of a discoverable object: no rows, no versions."""

    object_type = serializers.CharField()
    object_id = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    department = serializers.CharField()


class AccessRequestSerializer(serializers.ModelSerializer):
    object_type = serializers.SerializerMethodField()
    object = serializers.CharField(source="object_repr", read_only=True)
    department = serializers.CharField(source="department.slug", read_only=True)
    requester_department = serializers.CharField(source="requester_department.slug", read_only=True)
    requested_by = serializers.CharField(source="requested_by.username", read_only=True)
    decided_by = serializers.CharField(source="decided_by.username", read_only=True, default=None)
    share = serializers.UUIDField(source="share_id", read_only=True, allow_null=True)

    class Meta:
        model = AccessRequest
        fields = ["id", "object_type", "object_id", "object", "department", "requester_department", "requested_by",
                  "level", "purpose", "status", "created_at", "decided_at", "decided_by", "reason", "share"]  # fmt: skip
        read_only_fields = fields

    def get_object_type(self, request) -> str:
        return _label(request.content_type)


class AccessRequestCreateSerializer(TargetInputSerializer):
    output_serializer_class = AccessRequestSerializer
    level = serializers.ChoiceField(choices=ShareLevel.choices, default=ShareLevel.VIEW)
    purpose = serializers.CharField(max_length=300, help_text="What you need it for.")
    department = serializers.SlugField(
        required=False, allow_null=True, default=None, help_text="Your department that needs access (when you have several)."
    )


class ApproveSerializer(InputSerializer):
    output_serializer_class = AccessRequestSerializer
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    level = serializers.ChoiceField(choices=ShareLevel.choices, required=False, allow_null=True, default=None)


class RejectSerializer(InputSerializer):
    output_serializer_class = AccessRequestSerializer
    reason = serializers.CharField(max_length=2000, help_text="Why not; the requester is told.")


class AccessRequestFilterSerializer(serializers.Serializer):
    box = serializers.ChoiceField(choices=["incoming", "outgoing"], required=False)
    status = serializers.ChoiceField(choices=AccessRequestStatus.choices, required=False)


class CommentSerializer(serializers.ModelSerializer):
    object_type = serializers.SerializerMethodField()
    author = serializers.CharField(source="author.username", read_only=True, default=None)

    class Meta:
        model = Comment
        fields = ["id", "object_type", "object_id", "author", "body", "mentions", "created_at"]
        read_only_fields = fields

    def get_object_type(self, comment) -> str:
        return _label(comment.content_type)


class CommentCreateSerializer(TargetInputSerializer):
    output_serializer_class = CommentSerializer
    body = serializers.CharField(help_text="Markdown; @username tells that person.", trim_whitespace=False)


class WatchSerializer(serializers.ModelSerializer):
    object_type = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = Watch
        fields = ["object_type", "object_id", "created_at", "url"]
        read_only_fields = fields

    def get_object_type(self, watch) -> str:
        return _label(watch.content_type)

    @extend_schema_field(serializers.CharField())
    def get_url(self, watch) -> str:
        return ""


class WatchInputSerializer(TargetInputSerializer):
    output_serializer_class = WatchSerializer


def target_labels() -> list[str]:
    return sorted(k.label for k in targets.kinds())
