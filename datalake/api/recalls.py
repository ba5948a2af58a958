"""Recalls through the API: /api/v1/recalls/ (list, read, recall a version) and acknowledging an impact."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from datalake.models import DatasetVersion, Recall, RecallImpact
from datalake.services import recalls
from lepton import policy
from lepton.api.serializers import ErrorSerializer
from lepton.errors import NotFound

ERRORS = {code: ErrorSerializer for code in (400, 401, 403, 404, 409, 429)}


class RecallImpactSerializer(serializers.ModelSerializer):
    department = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    acknowledged_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = RecallImpact
        fields = [
            "id", "object_type", "object_id", "label", "department", "depth", "aliases", "blocking",
            "acknowledged_at", "acknowledged_by",
        ]  # fmt: skip
        read_only_fields = fields


class RecallSerializer(serializers.ModelSerializer):
    version = serializers.UUIDField(source="version_id", read_only=True)
    dataset = serializers.UUIDField(source="version.dataset_id", read_only=True)
    version_number = serializers.IntegerField(source="version.number", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    impacts = RecallImpactSerializer(many=True, read_only=True)

    class Meta:
        model = Recall
        fields = [
            "id", "dataset", "version", "version_number", "reason", "block_predictions", "created_by", "created_at",
            "impacts",
        ]  # fmt: skip
        read_only_fields = fields


class RecallCreateSerializer(serializers.Serializer):
    version = serializers.UUIDField(help_text="The published dataset version to recall.")
    reason = serializers.CharField(max_length=recalls.MAX_REASON)
    block_predictions = serializers.BooleanField(default=False)


class RecallViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    """Recalls of your departments' data or touching what they own; maintainers recall their versions."""

    serializer_class = RecallSerializer

    def get_queryset(self):
        return (
            recalls.visible_recalls(self.request.user)
            .select_related("version", "created_by")
            .prefetch_related("impacts__department", "impacts__acknowledged_by")
            .order_by("-created_at")
        )

    @extend_schema(request=RecallCreateSerializer, responses={201: RecallSerializer, **ERRORS})
    def create(self, request, *args, **kwargs):
        serializer = RecallCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        version = policy.visible_to(request.user, DatasetVersion).filter(pk=data["version"]).select_related("dataset").first()
        if version is None or version.dataset.deleted_at is not None:
            raise NotFound()
        recall = recalls.version_recall(
            actor=request.user, version=version, reason=data["reason"], block_predictions=data["block_predictions"]
        )
        return Response(RecallSerializer(self.get_queryset().get(pk=recall.pk)).data, status=status.HTTP_201_CREATED)


class RecallAcknowledgeView(APIView):
    @extend_schema(
        summary="Acknowledge a recall's impact on your department's object (maintainers); blocked predictions resume",
        request=None,
        responses={200: RecallImpactSerializer, **ERRORS},
    )
    def post(self, request, pk):
        impact = get_object_or_404(recalls.visible_impacts(request.user), pk=pk)
        impact = recalls.impact_acknowledge(actor=request.user, impact=impact)
        return Response(RecallImpactSerializer(impact).data)
