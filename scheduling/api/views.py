"""Viewsets of the production-scheduling API: querysets through the policy, writes through scheduling.services."""

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from datalake.models import DatasetVersion
from lepton import policy
from lepton.api.serializers import ErrorSerializer
from lepton.errors import Invalid, NotFound
from lepton.models import Department
from models_repo.api.serializers import TrainingRunSerializer
from models_repo.selectors import models_visible
from scheduling import selectors, services
from scheduling.api.serializers import (
    PolicyTrainSerializer,
    ProblemCreateSerializer,
    ProblemFromDatasetSerializer,
    RunStartSerializer,
    SchedulePolicySerializer,
    ScheduleRunDetailSerializer,
    ScheduleRunSerializer,
    ShopProblemDetailSerializer,
    ShopProblemSerializer,
)
from scheduling.engine.instance import InstanceError
from scheduling.models import ProblemSource
from scheduling.policies import policy_find, policy_train_start

ERRORS = {code: ErrorSerializer for code in (400, 401, 403, 404, 409, 429)}
PROBLEM_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The problem's id.")
RUN_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The run's id.")


def _department(user, slug: str) -> Department:
    """The department named in a request body, among those the user belongs to (404 otherwise)."""
    department = policy.visible_to(user, Department).filter(slug=slug).first()
    if department is None:
        raise NotFound()
    return department


@extend_schema_view(
    list=extend_schema(summary="Shop problems you may see", responses={200: ShopProblemSerializer(many=True), **ERRORS}),
    retrieve=extend_schema(
        summary="One problem with its machines and jobs",
        parameters=[PROBLEM_ID],
        responses={200: ShopProblemDetailSerializer, **ERRORS},
    ),
    create=extend_schema(
        summary="Add a problem: machines and jobs as JSON, or the text of an OR-Library, Taillard or CSV file",
        request=ProblemCreateSerializer,
        responses={201: ShopProblemDetailSerializer, **ERRORS},
    ),
    destroy=extend_schema(
        summary="Delete a problem and its runs (maintainers)", parameters=[PROBLEM_ID], responses={204: None, **ERRORS}
    ),
)
class ShopProblemViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    lookup_value_regex = "[0-9a-f-]{36}"

    def get_queryset(self):
        return selectors.problems_visible(self.request.user).order_by("department__slug", "slug")

    def get_serializer_class(self):
        return ShopProblemSerializer if self.action == "list" else ShopProblemDetailSerializer

    def create(self, request, *args, **kwargs):
        serializer = ProblemCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        department = _department(request.user, data["department"])
        if "text" in data:
            problem = services.problem_upload(
                actor=request.user, department=department, name=data["name"], text=data["text"], format=data.get("format")
            )
        else:
            try:
                instance = services.instance_from_data(data["machines"], data["jobs"])
            except InstanceError as exc:
                message = services.instance_error_text(exc)
                raise Invalid(message, fields={exc.field: [message]}, code="invalid_problem") from None
            problem = services.problem_create(
                actor=request.user, department=department, name=data["name"], instance=instance,
                source=ProblemSource.API, description=data.get("description", ""),
            )  # fmt: skip
        return Response(ShopProblemDetailSerializer(problem).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        services.problem_delete(actor=self.request.user, problem=instance)

    @extend_schema(
        summary="Add a problem built from a dataset version you may read, mapping its columns to job, machine, duration…",
        request=ProblemFromDatasetSerializer,
        responses={201: ShopProblemDetailSerializer, **ERRORS},
    )
    @action(detail=False, methods=["post"], url_path="from-dataset")
    def from_dataset(self, request):
        serializer = ProblemFromDatasetSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        department = _department(request.user, data["department"])
        version = DatasetVersion.objects.select_related("dataset__department").filter(pk=data["dataset_version"]).first()
        problem = services.problem_from_dataset(
            actor=request.user, department=department, name=data["name"], dataset_version=version,
            mapping=data["mapping"], description=data["description"], alternatives=data["alternatives"],
        )  # fmt: skip
        return Response(ShopProblemDetailSerializer(problem).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(
        summary="Schedule runs you may see (newest first)", responses={200: ScheduleRunSerializer(many=True), **ERRORS}
    ),
    retrieve=extend_schema(
        summary="One run with its schedule, breakdowns and method details",
        parameters=[RUN_ID],
        responses={200: ScheduleRunDetailSerializer, **ERRORS},
    ),
    create=extend_schema(
        summary="Schedule a problem with a method (a job on the cpu queue)",
        request=RunStartSerializer,
        responses={202: ScheduleRunSerializer, **ERRORS},
    ),
)
class ScheduleRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    lookup_value_regex = "[0-9a-f-]{36}"

    def get_queryset(self):
        runs = selectors.runs_visible(self.request.user).order_by("-created_at")
        problem = self.request.query_params.get("problem")
        return runs.filter(problem_id=problem) if problem else runs

    def get_serializer_class(self):
        return ScheduleRunDetailSerializer if self.action == "retrieve" else ScheduleRunSerializer

    def create(self, request, *args, **kwargs):
        serializer = RunStartSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        problem = selectors.problems_visible(request.user).filter(pk=data["problem"]).first()
        if problem is None:
            raise NotFound()
        version = None
        if data["policy_version"] or data["policy_model"]:
            version = policy_find(
                request.user, version=data["policy_version"], model=data["policy_model"], alias=data["policy_alias"],
                field="policy_version" if data["policy_version"] else "policy_model",
            )  # fmt: skip
        run = services.run_start(
            actor=request.user, problem=problem, method=data["method"], time_limit=data["time_limit"],
            seed=data["seed"], breakdowns_seed=data.get("breakdowns_seed"), replications=data["replications"],
            policy_version=version,
        )  # fmt: skip
        return Response(ScheduleRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Stop a run (a running search keeps the best schedule it has)",
        parameters=[RUN_ID],
        request=None,
        responses={200: ScheduleRunSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        run = services.run_cancel(actor=request.user, run=self.get_object())
        return Response(ScheduleRunSerializer(run).data)

    @extend_schema(
        summary="The schedule as CSV (job, op, machine, start, end) or as the CLI's JSON (?as=json)",
        parameters=[RUN_ID, OpenApiParameter("as", str, description="csv (default) or json")],
        responses={(200, "text/csv"): OpenApiTypes.STR, **ERRORS},
    )
    @action(detail=True, methods=["get"])
    def export(self, request, pk=None):
        run = self.get_object()
        names = ("job", "op", "machine", "start", "end")
        rows = list(run.operations.order_by("start", "machine", "job").values_list(*names))
        kind = "json" if request.query_params.get("as") == "json" else "csv"
        if kind == "json":
            response = Response({"makespan": run.makespan, "operations": [dict(zip(names, r, strict=True)) for r in rows]})
        else:
            lines = [",".join(names), *(",".join(str(v) for v in r) for r in rows)]
            response = HttpResponse("\n".join(lines) + "\n", content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{run.problem.slug}-{run.method}.{kind}"'
        return response


@extend_schema_view(
    list=extend_schema(
        summary="Learnt scheduling policies you may apply (newest version first per model)",
        responses={200: SchedulePolicySerializer(many=True), **ERRORS},
    ),
    create=extend_schema(
        summary="Train a policy over a family of generated shops (a job on the cpu queue); follow it at /api/v1/runs/<id>/",
        request=PolicyTrainSerializer,
        responses={202: TrainingRunSerializer, **ERRORS},
    ),
)
class SchedulePolicyViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    serializer_class = SchedulePolicySerializer

    def get_queryset(self):
        return selectors.policy_versions_usable(self.request.user)

    def create(self, request, *args, **kwargs):
        serializer = PolicyTrainSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        department = model = None
        if data.get("department"):
            department = policy.visible_to(request.user, Department).filter(slug=data["department"]).first()
            if department is None:
                raise NotFound()
        if data["model"]:
            model = models_visible(request.user).filter(pk=data["model"]).first()
            if model is None:
                raise NotFound()
        run = policy_train_start(
            actor=request.user, department=department, model=model, model_name=data["model_name"],
            spec={k: data[k] for k in ("jobs", "machines", "instances", "held_out", "breakdowns", "seconds", "episodes", "seed")},
        )  # fmt: skip
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)
