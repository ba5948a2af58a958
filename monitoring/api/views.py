"""Views of the Monitoring API: reads only, through monitoring.selectors (the model's policy)."""

from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from lepton.api.serializers import ErrorSerializer
from lepton.errors import Invalid
from monitoring import selectors
from monitoring.api.serializers import ModelDriftSerializer

ERRORS = {code: ErrorSerializer for code in (400, 401, 403, 404, 429)}


class ModelDriftView(APIView):
    @extend_schema(
        summary="Input drift of a model's production version (or ?version=): PSI and KS per feature, and over time",
        parameters=[
            OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The model's id."),
            OpenApiParameter("version", int, description="A version number instead of the production version."),
        ],
        responses={200: ModelDriftSerializer, **ERRORS},
    )
    def get(self, request, pk):
        number = request.query_params.get("version")
        if number is not None and not number.isdigit():
            message = _("Give the version as a whole number.")
            raise Invalid(message, fields={"version": [message]})
        drift = selectors.model_drift(request.user, pk, number=int(number) if number is not None else None)
        return Response(ModelDriftSerializer(drift).data)
