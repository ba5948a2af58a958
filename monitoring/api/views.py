"""Views of the Monitoring API: reads only, through monitoring.selectors (the model's policy)."""

from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from lepton.api.serializers import ErrorSerializer
from lepton.errors import Invalid
from monitoring import selectors, services
from monitoring.api.serializers import (
    FeedbackCreateSerializer,
    FeedbackSerializer,
    ModelDashboardSerializer,
    ModelDriftSerializer,
)
from monitoring.forms import PeriodForm
from monitoring.models import PredictionFeedback

ERRORS = {code: ErrorSerializer for code in (400, 401, 403, 404, 429)}
MODEL_PATH = [OpenApiParameter("department", str, OpenApiParameter.PATH), OpenApiParameter("model", str, OpenApiParameter.PATH)]


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


class ModelDashboardView(APIView):
    @extend_schema(
        summary="A model's dashboard: requests, latency percentiles, errors, predictions, versions, drift, real performance",
        parameters=[
            OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The model's id."),
            OpenApiParameter("start", OpenApiTypes.DATE, description="First day (default: a week before `end`)."),
            OpenApiParameter("end", OpenApiTypes.DATE, description="Last day, included (default: today)."),
        ],
        responses={200: ModelDashboardSerializer, **ERRORS},
    )
    def get(self, request, pk):
        selectors.drift_model(request.user, pk)  # 404 before judging the period, as for any model out of reach
        form = PeriodForm({k: request.query_params.get(k, "") for k in ("start", "end")})
        if not form.is_valid():
            fields = {name: [str(m) for m in messages] for name, messages in form.errors.items()}
            raise Invalid(next(iter(fields.values()))[0], fields=fields)
        start, end = form.period()
        data = selectors.model_dashboard(request.user, pk, start, end)
        return Response(ModelDashboardSerializer({**data, "start": start, "end": end}).data)


class FeedbackView(GenericAPIView):
    """Ground truth for logged predictions of a model: post one request's actual values, list those given.

    Posting needs what predicting needs: a token with the `predict` scope (a browser session
    has every scope) and `use` on the model (members of its department, or a `use` share).
    Listing needs `view` (and a `read` token).
    """

    serializer_class = FeedbackSerializer

    @property
    def required_scope(self):  # lepton.api.permissions.TokenScopePermission reads it
        return "predict" if self.request.method == "POST" else None

    def _model(self):
        return selectors.model_by_slug(self.request.user, self.kwargs["department"], self.kwargs["model"])

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no model to ask about
            return PredictionFeedback.objects.none()
        return selectors.model_feedback(self._model())

    @extend_schema(
        summary="Ground truth given for a model's predictions, newest prediction first",
        parameters=MODEL_PATH,
        responses={200: FeedbackSerializer(many=True), **ERRORS},
    )
    def get(self, request, department: str, model: str):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(FeedbackSerializer(page, many=True).data)

    @extend_schema(
        summary="Post the true values of one logged prediction request (scored against its predictions)",
        description=(
            "`prediction_id` is the id the predict answer carried; `actual` holds one value per predicted row. "
            "404: no prediction of this model with that id; 400: a value of the wrong type or count (the field "
            "names the row); 409: feedback for this id was already given (it cannot be changed)."
        ),
        parameters=MODEL_PATH,
        request=FeedbackCreateSerializer,
        responses={201: FeedbackSerializer, **ERRORS, 409: ErrorSerializer},
    )
    def post(self, request, department: str, model: str):
        registered = self._model()
        serializer = FeedbackCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        feedback = services.feedback_record(actor=request.user, model=registered, **serializer.validated_data)
        return Response(FeedbackSerializer(feedback).data, status=status.HTTP_201_CREATED)
