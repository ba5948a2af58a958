"""POST /api/v1/models/<department>/<model>/versions — a version from an uploaded model file.

Multipart: `file` (ONNX, .keras or skops; never a pickle), `input_schema` (JSON, where the file
does not name its inputs), `output` (JSON {"classes": [...]}, where it does not name its
classes), `description`. Maintainers of the model's department; 201 with the version (a .keras
version is `validating` until a worker has loaded it with safe_mode).
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from lepton import policy
from lepton.api.serializers import ErrorSerializer
from lepton.errors import NotFound
from models_repo import services
from models_repo.api.serializers import ModelVersionSerializer
from models_repo.models import RegisteredModel

ERRORS = {code: ErrorSerializer for code in (400, 401, 403, 404, 409, 429)}


class VersionUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="An ONNX graph, a .keras archive or a skops file (pickles are refused).")
    input_schema = serializers.CharField(
        required=False, allow_blank=True, default="",
        help_text='JSON list of {"name", "type" (number|integer|string|boolean|datetime), "nullable"}.',
    )  # fmt: skip
    output = serializers.CharField(required=False, allow_blank=True, default="", help_text='JSON {"classes": [...]}.')
    description = serializers.CharField(required=False, allow_blank=True, default="")


class VersionUploadView(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        summary="Register a version from an uploaded ONNX, .keras or skops file (maintainers)",
        parameters=[
            OpenApiParameter("department", str, OpenApiParameter.PATH),
            OpenApiParameter("model", str, OpenApiParameter.PATH),
        ],
        request={"multipart/form-data": VersionUploadSerializer},
        responses={201: ModelVersionSerializer, **ERRORS},
    )
    def post(self, request, department: str, model: str):
        registered = RegisteredModel.objects.select_related("department").filter(department__slug=department, slug=model).first()
        if registered is None or not policy.can(request.user, "view", registered):
            raise NotFound(_("No model %(model)s that you may see.") % {"model": f"{department}/{model}"})
        serializer = VersionUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        version = services.version_upload(
            actor=request.user, model=registered, stream=data["file"], filename=data["file"].name,
            input_schema=data["input_schema"], output=data["output"], description=data["description"],
        )  # fmt: skip
        return Response(ModelVersionSerializer(version).data, status=status.HTTP_201_CREATED)
