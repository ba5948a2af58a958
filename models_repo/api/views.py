"""Viewsets of the model-repository API: querysets through the policy, writes through models_repo.services."""

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from datalake import selectors as datalake_selectors
from datalake.models import DatasetVersion
from lepton import policy
from lepton.api.serializers import ErrorSerializer
from lepton.errors import Invalid, NotFound
from lepton.history import parse_at
from lepton.models import Department
from models_repo import selectors, services
from models_repo.api.serializers import (
    AliasEventSerializer,
    AliasSetSerializer,
    ArchiveSerializer,
    BatchPredictSerializer,
    DecisionSerializer,
    ModelAliasSerializer,
    ModelCreateSerializer,
    ModelUpdateSerializer,
    ModelVersionSerializer,
    PromotionCreateSerializer,
    PromotionRequestSerializer,
    ReasonSerializer,
    RegisteredModelSerializer,
    TrainingRunDetailSerializer,
    TrainingRunSerializer,
    TrainingStartSerializer,
)
from models_repo.models import AliasEvent, ModelAlias

ERRORS = {code: ErrorSerializer for code in (400, 401, 403, 404, 409, 429)}
RUN_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The run's id.")
MODEL_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The model's id.")
PROMOTION_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The request's id.")
ALIAS = OpenApiParameter("alias", str, OpenApiParameter.PATH, description="An alias, e.g. staging.")


@extend_schema_view(
    list=extend_schema(
        summary="Training runs you may see (newest first)", responses={200: TrainingRunSerializer(many=True), **ERRORS}
    ),
    retrieve=extend_schema(
        summary="One run with its curves and per-epoch metrics",
        parameters=[RUN_ID],
        responses={200: TrainingRunDetailSerializer, **ERRORS},
    ),
    create=extend_schema(
        summary="Start a training run on a dataset version (a job on the cpu or gpu queue)",
        request=TrainingStartSerializer,
        responses={202: TrainingRunSerializer, **ERRORS},
    ),
)
class TrainingRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    lookup_value_regex = "[0-9a-f-]{36}"
    serializer_class = TrainingRunSerializer

    def get_queryset(self):
        return selectors.runs_visible(self.request.user).order_by("-created_at")

    def get_serializer_class(self):
        return TrainingRunDetailSerializer if self.action == "retrieve" else TrainingRunSerializer

    def create(self, request, *args, **kwargs):
        serializer = TrainingStartSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        version = DatasetVersion.objects.filter(
            pk=data["dataset_version"], dataset__in=datalake_selectors.datasets_visible(request.user)
        ).first()
        if version is None:
            raise NotFound()
        model = None
        if data.get("registered_model"):
            model = selectors.models_visible(request.user).filter(pk=data["registered_model"]).first()
            if model is None:
                raise NotFound()
        run = services.training_start(
            actor=request.user, dataset_version=version, spec=data["spec"], registered_model=model, name=data["name"]
        )
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Train again from the record: same spec, seed and data version",
        parameters=[RUN_ID],
        request=None,
        responses={202: TrainingRunSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def rerun(self, request, pk=None):
        run = services.training_rerun(actor=request.user, run=self.get_object())
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Stop a run (what finished is kept)",
        parameters=[RUN_ID],
        request=None,
        responses={200: TrainingRunSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        run = services.training_cancel(actor=request.user, run=self.get_object())
        return Response(TrainingRunSerializer(run).data)


@extend_schema_view(
    list=extend_schema(summary="Registered models you may see", responses={200: RegisteredModelSerializer(many=True), **ERRORS}),
    retrieve=extend_schema(summary="One model", parameters=[MODEL_ID], responses={200: RegisteredModelSerializer, **ERRORS}),
    create=extend_schema(
        summary="Register a model (maintainers)",
        request=ModelCreateSerializer,
        responses={201: RegisteredModelSerializer, **ERRORS},
    ),
    partial_update=extend_schema(
        summary="Change a model's description, tags, card or promotion gate",
        parameters=[MODEL_ID],
        request=ModelUpdateSerializer,
        responses={200: RegisteredModelSerializer, **ERRORS},
    ),
    update=extend_schema(exclude=True),  # PUT answers 405 "Use PATCH" (it stays routed for the aliases' PUT)
)
class RegisteredModelViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet
):
    lookup_value_regex = "[0-9a-f-]{36}"
    serializer_class = RegisteredModelSerializer
    http_method_names = ["get", "post", "patch", "put", "delete", "head", "options"]

    def get_queryset(self):
        return selectors.models_visible(self.request.user).order_by("department_id", "slug")

    def _present(self, model, code=status.HTTP_200_OK):
        fresh = selectors.models_visible(self.request.user).get(pk=model.pk)
        return Response(RegisteredModelSerializer(fresh).data, status=code)

    def create(self, request, *args, **kwargs):
        serializer = ModelCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        department = policy.visible_to(request.user, Department).filter(slug=data.pop("department")).first()
        if department is None:
            raise Invalid(
                _("No department of yours has that slug."), fields={"department": [_("Not a department you belong to.")]}
            )
        model = services.model_create(actor=request.user, department=department, **data)
        return self._present(model, status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        if not kwargs.get("partial"):
            return Response({"error": "method_not_allowed", "detail": "Use PATCH."}, status=status.HTTP_405_METHOD_NOT_ALLOWED)
        serializer = ModelUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        model = services.model_update(actor=request.user, model=self.get_object(), **serializer.validated_data)
        return self._present(model)

    @extend_schema(
        summary="Versions of a model (newest first)",
        parameters=[MODEL_ID],
        responses={200: ModelVersionSerializer(many=True), **ERRORS},
    )
    @action(detail=True, methods=["get"])
    def versions(self, request, pk=None):
        model = self.get_object()
        page = self.paginate_queryset(model.versions.prefetch_related("aliases").order_by("-number"))
        return self.get_paginated_response(ModelVersionSerializer(page, many=True).data)

    @extend_schema(
        summary="The model's aliases and their full history; with ?at=, the aliases as of that date",
        parameters=[MODEL_ID, OpenApiParameter("at", str, description="ISO date or date-time: the aliases as they were then")],
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    @action(detail=True, methods=["get"])
    def aliases(self, request, pk=None):
        model = self.get_object()
        if "at" in request.query_params:
            # "As of": which version held each alias at that moment (a date means the end of that day).
            at = parse_at(request.query_params.get("at"))
            return Response({"at": at, "aliases": selectors.aliases_at(model, at)})
        current = ModelAlias.objects.filter(model=model).select_related("version", "updated_by")
        history = AliasEvent.objects.filter(model=model).select_related("from_version", "to_version", "actor")[:500]
        return Response(
            {"aliases": ModelAliasSerializer(current, many=True).data, "history": AliasEventSerializer(history, many=True).data}
        )

    @extend_schema(
        methods=["PUT"],
        summary="Point an alias at a version (maintainers; production moves only through a promotion)",
        parameters=[MODEL_ID, ALIAS],
        request=AliasSetSerializer,
        responses={200: ModelAliasSerializer, **ERRORS},
    )
    @extend_schema(
        methods=["DELETE"], summary="Remove an alias", parameters=[MODEL_ID, ALIAS], request=None, responses={204: None, **ERRORS}
    )
    @action(detail=True, methods=["put", "delete"], url_path=r"aliases/(?P<alias>[A-Za-z0-9_-]{1,40})")
    def alias(self, request, pk=None, alias=None):
        model = self.get_object()
        if request.method == "DELETE":
            services.alias_remove(actor=request.user, model=model, alias=alias, reason=request.query_params.get("reason", ""))
            return Response(status=status.HTTP_204_NO_CONTENT)
        serializer = AliasSetSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = model.versions.filter(number=serializer.validated_data["version"]).first()
        if version is None:
            message = f"{model.name} has no version {serializer.validated_data['version']}."
            raise Invalid(message, fields={"version": [message]}, code="no_such_version")
        moved = services.alias_set(
            actor=request.user, model=model, alias=alias, version=version, reason=serializer.validated_data["reason"]
        )
        return Response(ModelAliasSerializer(moved).data)

    @extend_schema(
        summary="Put production back on the version it held before (maintainers)",
        parameters=[MODEL_ID],
        request=ReasonSerializer,
        responses={200: ModelAliasSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def rollback(self, request, pk=None):
        serializer = ReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        alias = services.production_rollback(
            actor=request.user, model=self.get_object(), reason=serializer.validated_data["reason"]
        )
        return Response(ModelAliasSerializer(alias).data)

    @extend_schema(
        summary="Archive or restore a model (maintainers): archived models predict nothing and take no training",
        parameters=[MODEL_ID],
        request=ArchiveSerializer,
        responses={200: RegisteredModelSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def archive(self, request, pk=None):
        serializer = ArchiveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        model = services.model_archive(actor=request.user, model=self.get_object(), **serializer.validated_data)
        return self._present(model)

    @extend_schema(
        summary="Archive or restore one version (refused while an alias points at it)",
        parameters=[MODEL_ID, OpenApiParameter("number", int, OpenApiParameter.PATH)],
        request=ArchiveSerializer,
        responses={200: ModelVersionSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"], url_path=r"versions/(?P<number>[0-9]{1,9})/archive")
    def version_archive(self, request, pk=None, number=None):
        model = self.get_object()
        version = model.versions.filter(number=int(number)).first()
        if version is None:
            raise NotFound(_("%(model)s has no version %(number)s.") % {"model": model.name, "number": number})
        serializer = ArchiveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = services.version_archive(actor=request.user, version=version, **serializer.validated_data)
        return Response(ModelVersionSerializer(model.versions.prefetch_related("aliases").get(pk=version.pk)).data)

    @extend_schema(
        summary="Two to four versions side by side: metrics (best marked), params, data, holdouts",
        parameters=[MODEL_ID, OpenApiParameter("versions", str, description="Version numbers, e.g. 1,3")],
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    @action(detail=True, methods=["get"])
    def compare(self, request, pk=None):
        model = self.get_object()
        raw = [part.strip() for part in request.query_params.get("versions", "").split(",") if part.strip()]
        try:
            numbers = list(dict.fromkeys(int(part) for part in raw))
        except ValueError:
            raise Invalid(
                "versions must be version numbers separated by commas.", fields={"versions": ["Not a number."]}
            ) from None
        if not 2 <= len(numbers) <= selectors.COMPARE_MAX:
            message = f"Give 2 to {selectors.COMPARE_MAX} different version numbers."
            raise Invalid(message, fields={"versions": [message]})
        comparison = selectors.versions_compared(model, numbers)
        if comparison["missing"]:
            message = f"{model.name} has no version {', '.join(str(n) for n in comparison['missing'])}."
            raise Invalid(message, fields={"versions": [message]}, code="no_such_version")
        return Response(comparison)

    @extend_schema(
        summary="Predict a whole dataset version into a new version of an output dataset (a job)",
        parameters=[MODEL_ID],
        request=BatchPredictSerializer,
        responses={202: OpenApiTypes.OBJECT, **ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="batch-predictions")
    def batch_predictions(self, request, pk=None):
        model = self.get_object()
        serializer = BatchPredictSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        dataset_version = DatasetVersion.objects.filter(
            pk=data["dataset_version"], dataset__in=datalake_selectors.datasets_visible(request.user)
        ).first()
        if dataset_version is None:
            raise NotFound(_("No dataset version of that id that you may see."))
        if data.get("version"):
            version = model.versions.filter(number=data["version"]).first()
            if version is None:
                message = f"{model.name} has no version {data['version']}."
                raise Invalid(message, fields={"version": [message]}, code="no_such_version")
        else:
            current = ModelAlias.objects.select_related("version").filter(model=model, name=data["alias"]).first()
            if current is None:
                message = f"{model.name} has no '{data['alias']}' alias; give a version number."
                raise Invalid(message, fields={"alias": [message]}, code="no_such_alias")
            version = current.version
        pending = services.batch_predict_start(
            actor=request.user, model=model, version=version, dataset_version=dataset_version,
            output_name=data["output_name"],
        )  # fmt: skip
        body = {
            "output_version": str(pending.pk), "output_dataset": str(pending.dataset_id), "job": str(pending.job_id),
            "model_version": version.number, "status": pending.status,
        }  # fmt: skip
        return Response(body, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    list=extend_schema(
        summary="Promotion requests you may see (the inbox: ?status=pending)",
        responses={200: PromotionRequestSerializer(many=True), **ERRORS},
    ),
    retrieve=extend_schema(
        summary="One promotion request", parameters=[PROMOTION_ID], responses={200: PromotionRequestSerializer, **ERRORS}
    ),
    create=extend_schema(
        summary="Ask to put a version in production: the gate runs at once, then a maintainer approves",
        request=PromotionCreateSerializer,
        responses={201: PromotionRequestSerializer, **ERRORS},
    ),
)
class PromotionRequestViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    lookup_value_regex = "[0-9a-f-]{36}"
    serializer_class = PromotionRequestSerializer

    def get_queryset(self):
        queryset = selectors.promotions_visible(self.request.user).order_by("-created_at")
        wanted = self.request.query_params.get("status")
        return queryset.filter(status=wanted) if wanted else queryset

    def create(self, request, *args, **kwargs):
        serializer = PromotionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        model = get_object_or_404(selectors.models_visible(request.user), pk=data["model"])
        version = model.versions.filter(number=data["version"]).first()
        if version is None:
            message = f"{model.name} has no version {data['version']}."
            raise Invalid(message, fields={"version": [message]}, code="no_such_version")
        promotion = services.promotion_request(actor=request.user, version=version, reason=data["reason"])
        return Response(PromotionRequestSerializer(promotion).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Approve: production moves to the version",
        parameters=[PROMOTION_ID],
        request=DecisionSerializer,
        responses={200: PromotionRequestSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        serializer = DecisionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        promotion = services.promotion_approve(
            actor=request.user, request=self.get_object(), note=serializer.validated_data["note"]
        )
        return Response(PromotionRequestSerializer(promotion).data)

    @extend_schema(
        summary="Reject, saying why",
        parameters=[PROMOTION_ID],
        request=DecisionSerializer,
        responses={200: PromotionRequestSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        serializer = DecisionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        promotion = services.promotion_reject(
            actor=request.user, request=self.get_object(), note=serializer.validated_data["note"]
        )
        return Response(PromotionRequestSerializer(promotion).data)
