"""Viewsets of the data-lake API: querysets through the policy, writes through datalake.services."""

import json
import re

from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from datalake import selectors, services
from datalake.api.serializers import (
    ColumnClassificationSerializer,
    DatabaseImportSerializer,
    DatabaseImportWriteSerializer,
    DatasetCreateSerializer,
    DatasetSerializer,
    DatasetUpdateSerializer,
    DatasetVersionDetailSerializer,
    DatasetVersionSerializer,
    DiscoverableDatasetSerializer,
    RecipeCreateSerializer,
    RecipePreviewSerializer,
    RecipeSerializer,
    RetrySerializer,
    SavedQueryCreateSerializer,
    SavedQueryRunSerializer,
    SavedQuerySerializer,
    SavedQueryUpdateSerializer,
    SqlExportSerializer,
    SqlQuerySerializer,
    SqlResultSerializer,
    UnmaskGrantSerializer,
    UploadSerializer,
    UploadSessionSerializer,
    UploadSessionStartSerializer,
)
from datalake.filtersets import DatasetFilterSet
from datalake.models import Recipe, SavedQuery, UploadSession
from lepton.api.pagination import LargeListPagination
from lepton.api.serializers import ErrorSerializer
from lepton.errors import Invalid, NotFound

DATASET_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The dataset's id.")
VERSION_ID = OpenApiParameter("version_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The version's id.")
ERRORS = {code: ErrorSerializer for code in (400, 401, 403, 404, 409, 429)}


@extend_schema_view(
    list=extend_schema(
        summary="Datasets you may see",
        responses={200: DatasetSerializer(many=True), **ERRORS},
    ),
    retrieve=extend_schema(summary="One dataset", parameters=[DATASET_ID], responses={200: DatasetSerializer, **ERRORS}),
    create=extend_schema(
        summary="Create a dataset", request=DatasetCreateSerializer, responses={201: DatasetSerializer, **ERRORS}
    ),
    partial_update=extend_schema(
        summary="Change a dataset's description, tags, discoverability or checks",
        parameters=[DATASET_ID],
        request=DatasetUpdateSerializer,
        responses={200: DatasetSerializer, **ERRORS},
    ),
)
class DatasetViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet
):
    serializer_class = DatasetSerializer
    filterset_class = DatasetFilterSet
    pagination_class = LargeListPagination
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_queryset(self):
        trash = self.action in ("restore", "purge", "trash")
        # Ordered along the (department, slug) unique index: a deep page is an index range, not a
        # sort of every visible dataset (bench/catalog.py: 10 ms → 0.3 ms at 10 000 datasets).
        return selectors.datasets_visible(self.request.user, trash=trash).order_by("department_id", "slug")

    def get_serializer_class(self):
        return {"create": DatasetCreateSerializer, "partial_update": DatasetUpdateSerializer, "upload": UploadSerializer}.get(
            self.action, DatasetSerializer
        )

    def _present(self, dataset, code=status.HTTP_200_OK):
        fresh = selectors.datasets_visible(self.request.user, trash=dataset.deleted_at is not None).get(pk=dataset.pk)
        return Response(DatasetSerializer(fresh, context=self.get_serializer_context()).data, status=code)

    def create(self, request, *args, **kwargs):
        serializer = DatasetCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        dataset = services.dataset_create(actor=request.user, **serializer.validated_data)
        return self._present(dataset, status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        serializer = DatasetUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        dataset = services.dataset_update(actor=request.user, dataset=self.get_object(), **serializer.validated_data)
        return self._present(dataset)

    @extend_schema(
        summary="Upload a file as a new version (multipart); its ingest runs as a job",
        parameters=[DATASET_ID],
        request={"multipart/form-data": UploadSerializer},
        responses={202: DatasetVersionSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser, FormParser], filter_backends=[])
    def upload(self, request, pk=None):
        dataset = self.get_object()
        serializer = UploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        version = services.dataset_upload(
            actor=request.user, dataset=dataset, stream=upload, filename=upload.name, options=serializer.validated_data["options"]
        )
        return Response(DatasetVersionSerializer(version, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Versions of a dataset (newest first)",
        parameters=[DATASET_ID],
        responses={200: DatasetVersionSerializer(many=True), **ERRORS},
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def versions(self, request, pk=None):
        versions = selectors.versions_visible(request.user, self.get_object())
        page = self.paginate_queryset(versions)
        return self.get_paginated_response(DatasetVersionSerializer(page, many=True, context={"request": request}).data)

    @extend_schema(
        summary="One version with its profile",
        parameters=[DATASET_ID, VERSION_ID],
        responses={200: DatasetVersionDetailSerializer, **ERRORS},
    )
    @action(detail=True, methods=["get"], url_path=r"versions/(?P<version_id>[0-9a-f-]{36})", filter_backends=[])
    def version(self, request, pk=None, version_id=None):
        from django.shortcuts import get_object_or_404

        version = get_object_or_404(selectors.versions_visible(request.user, self.get_object()), pk=version_id)
        return Response(DatasetVersionDetailSerializer(version, context={"request": request}).data)

    @extend_schema(
        summary="Sensitive columns: the classification of the dataset's columns (PATCH: maintainers)",
        description=(
            'PATCH {"columns": {"email": {"level": "personal", "mode": "hash"}, "city": {"level": "public"}}}. '
            "Levels: public, personal, confidential; modes: hide, hash. Needs the server's data key."
        ),
        parameters=[DATASET_ID],
        request=ColumnClassificationSerializer,
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    @action(detail=True, methods=["get", "patch"], url_path="columns", filter_backends=[], parser_classes=[JSONParser])
    def columns(self, request, pk=None):
        dataset = self.get_object()
        if request.method == "PATCH":
            serializer = ColumnClassificationSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            dataset = services.columns_classify(actor=request.user, dataset=dataset, columns=serializer.validated_data["columns"])
        return Response(_classification(request.user, dataset))

    @extend_schema(
        summary="Move a dataset to the trash (restorable for 30 days)", parameters=[DATASET_ID], responses={204: None, **ERRORS}
    )
    def destroy(self, request, *args, **kwargs):
        services.dataset_delete(actor=request.user, dataset=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(summary="Datasets in the trash", responses={200: DatasetSerializer(many=True), **ERRORS})
    @action(detail=False, methods=["get"], filter_backends=[])
    def trash(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(DatasetSerializer(page, many=True).data)

    @extend_schema(
        summary="Restore a dataset from the trash",
        parameters=[DATASET_ID],
        request=None,
        responses={200: DatasetSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def restore(self, request, pk=None):
        return self._present(services.dataset_restore(actor=request.user, dataset=self.get_object()))

    @extend_schema(
        summary="Delete a trashed dataset and its stored bytes for good (department admins)",
        parameters=[DATASET_ID],
        request=None,
        responses={204: None, **ERRORS},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def purge(self, request, pk=None):
        services.dataset_purge(actor=request.user, dataset=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="What changed between two published versions",
        parameters=[
            DATASET_ID,
            OpenApiParameter("from", int, description="Older version number (default: the one before `to`)"),
            OpenApiParameter("to", int, description="Newer version number (default: the latest)"),
        ],
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def diff(self, request, pk=None):
        dataset = self.get_object()
        return Response(
            services.dataset_diff(
                actor=request.user, dataset=dataset, old=request.query_params.get("from"), new=request.query_params.get("to")
            )
        )

    @extend_schema(
        summary="Ingest a failed version's kept upload again, optionally with other options",
        parameters=[DATASET_ID, VERSION_ID],
        request=RetrySerializer,
        responses={202: DatasetVersionSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"], url_path=r"versions/(?P<version_id>[0-9a-f-]{36})/retry", filter_backends=[])
    def retry(self, request, pk=None, version_id=None):
        from django.shortcuts import get_object_or_404

        version = get_object_or_404(selectors.versions_visible(request.user, self.get_object()), pk=version_id)
        serializer = RetrySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = services.version_retry(actor=request.user, version=version, options=serializer.validated_data.get("options"))
        return Response(DatasetVersionSerializer(version, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Discoverable datasets of other departments: metadata only, never rows",
        responses={200: DiscoverableDatasetSerializer(many=True), **ERRORS},
    )
    @action(detail=False, methods=["get"])
    def discover(self, request):
        queryset = self.filter_queryset(selectors.datasets_discoverable(request.user))
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(DiscoverableDatasetSerializer(page, many=True).data)

    @extend_schema(
        summary="Start a resumable upload (then PUT chunks to /uploads/<id>/ and POST …/complete/)",
        parameters=[DATASET_ID],
        request=UploadSessionStartSerializer,
        responses={201: UploadSessionSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="uploads", filter_backends=[], parser_classes=[JSONParser])
    def start_upload(self, request, pk=None):
        dataset = self.get_object()
        serializer = UploadSessionStartSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        session = services.upload_session_start(actor=request.user, dataset=dataset, **serializer.validated_data)
        return Response(UploadSessionSerializer(session).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        methods=["GET"],
        summary="The dataset's database import (maintainers and members of its department)",
        parameters=[DATASET_ID],
        responses={200: DatabaseImportSerializer, **ERRORS},
    )
    @extend_schema(
        methods=["POST"],
        summary="Read the dataset's versions from a database: URL, password (stored encrypted), query, interval",
        parameters=[DATASET_ID],
        request=DatabaseImportWriteSerializer,
        responses={201: DatabaseImportSerializer, **ERRORS},
    )
    @extend_schema(
        methods=["PATCH"],
        summary="Change the import (a password given replaces the stored one; an empty one clears it)",
        parameters=[DATASET_ID],
        request=DatabaseImportWriteSerializer(partial=True),
        responses={200: DatabaseImportSerializer, **ERRORS},
    )
    @extend_schema(methods=["DELETE"], summary="Stop importing (versions stay)", parameters=[DATASET_ID], responses={204: None})
    @action(detail=True, methods=["get", "post", "patch", "delete"], url_path="import", filter_backends=[])
    def database_import(self, request, pk=None):
        dataset = self.get_object()
        current = services.database_import_for(request.user, dataset)
        if request.method == "POST":
            serializer = DatabaseImportWriteSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            created = services.database_import_create(actor=request.user, dataset=dataset, **serializer.validated_data)
            return Response(DatabaseImportSerializer(created).data, status=status.HTTP_201_CREATED)
        if current is None:
            raise NotFound(_("This dataset has no database import you may see."))
        if request.method == "PATCH":
            serializer = DatabaseImportWriteSerializer(data=request.data, partial=True)
            serializer.is_valid(raise_exception=True)
            values = dict(serializer.validated_data)
            current = services.database_import_update(
                actor=request.user, db_import=current, password=values.pop("password", None), **values
            )
        elif request.method == "DELETE":
            services.database_import_delete(actor=request.user, db_import=current)
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(DatabaseImportSerializer(current).data)

    @extend_schema(
        summary="Run the database import now (a job; the new version is pending until it publishes)",
        parameters=[DATASET_ID],
        request=None,
        responses={202: DatasetVersionSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="import/run", filter_backends=[])
    def database_import_run(self, request, pk=None):
        current = services.database_import_for(request.user, self.get_object())
        if current is None:
            raise NotFound(_("This dataset has no database import you may see."))
        version = services.database_import_run(actor=request.user, db_import=current)
        return Response(DatasetVersionSerializer(version, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Lineage: what the dataset's versions were made from and what was made from them",
        parameters=[DATASET_ID],
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def lineage(self, request, pk=None):
        return Response(services.dataset_lineage(actor=request.user, dataset=self.get_object()))

    def _version(self, request, version_id):
        from django.shortcuts import get_object_or_404

        return get_object_or_404(selectors.versions_visible(request.user, self.get_object()), pk=version_id)

    @extend_schema(
        summary="A page of rows of a published version, sorted and filtered on the server",
        parameters=[
            DATASET_ID,
            VERSION_ID,
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int, description="1 to 500 (default 50)"),
            OpenApiParameter("sort", str, description="A column name"),
            OpenApiParameter("desc", bool),
            OpenApiParameter(
                "filters",
                str,
                description='JSON list of {"column", "op", "value"}; ops: eq, ne, lt, le, gt, '
                "ge, contains, starts_with, is_null, not_null, in",
            ),
        ],
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    @action(detail=True, methods=["get"], url_path=r"versions/(?P<version_id>[0-9a-f-]{36})/preview", filter_backends=[])
    def preview(self, request, pk=None, version_id=None):
        version = self._version(request, version_id)
        params = request.query_params
        try:
            filters = json.loads(params.get("filters") or "[]")
        except ValueError:
            raise Invalid(_("filters must be a JSON list."), fields={"filters": [_("Not valid JSON.")]}) from None
        try:
            page, page_size = int(params.get("page", 1)), int(params.get("page_size", 50))
        except ValueError:
            raise Invalid(_("page and page_size must be whole numbers."), fields={"page": [_("A whole number.")]}) from None
        return Response(
            services.version_preview(
                actor=request.user,
                version=version,
                page=page,
                page_size=page_size,
                sort=params.get("sort"),
                descending=params.get("desc") in ("1", "true", "yes"),
                filters=filters,
            )
        )

    @extend_schema(
        summary="An image version's first images per class (thumbnail and image checksums, sizes, modes)",
        operation_id="v1_datasets_versions_images_list",
        parameters=[
            DATASET_ID,
            VERSION_ID,
            OpenApiParameter("per_class", int, description="1 to 200 (default 8)"),
            OpenApiParameter("label", str, description="Only this class"),
        ],
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    @action(detail=True, methods=["get"], url_path=r"versions/(?P<version_id>[0-9a-f-]{36})/images", filter_backends=[])
    def images(self, request, pk=None, version_id=None):
        version = self._version(request, version_id)
        try:
            per_class = int(request.query_params.get("per_class", 8))
        except ValueError:
            raise Invalid(_("per_class must be a whole number."), fields={"per_class": [_("A whole number.")]}) from None
        grid = services.version_image_grid(
            actor=request.user, version=version, per_class=per_class, label=request.query_params.get("label")
        )
        return Response({"classes": (version.profile or {}).get("images", {}).get("classes", {}), "images": grid})

    @extend_schema(
        summary="One image or thumbnail of an image version, by its sha256 (checksum-verified bytes)",
        operation_id="v1_datasets_versions_image_retrieve",
        parameters=[DATASET_ID, VERSION_ID, OpenApiParameter("sha256", str, OpenApiParameter.PATH)],
        responses={(200, "image/*"): OpenApiTypes.BINARY, **ERRORS},
    )
    @action(
        detail=True,
        methods=["get"],
        url_path=r"versions/(?P<version_id>[0-9a-f-]{36})/images/(?P<sha256>[0-9a-f]{64})",
        filter_backends=[],
    )
    def image(self, request, pk=None, version_id=None, sha256=None):
        from django.http import HttpResponse

        version = self._version(request, version_id)
        data, content_type = services.version_image(actor=request.user, version=version, sha256=sha256)
        response = HttpResponse(data, content_type=content_type)
        response["Cache-Control"] = "private, max-age=31536000, immutable"
        return response

    @extend_schema(
        summary="Download a published version as Parquet (as stored) or CSV (UTF-8 with BOM, formula cells escaped)",
        parameters=[
            DATASET_ID,
            VERSION_ID,
            OpenApiParameter("as", str, enum=["parquet", "csv"]),
        ],
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, **ERRORS},
    )
    @action(detail=True, methods=["get"], url_path=r"versions/(?P<version_id>[0-9a-f-]{36})/download", filter_backends=[])
    def download(self, request, pk=None, version_id=None):
        version = self._version(request, version_id)
        return download_response(request.user, version, request.query_params.get("as", "parquet"))


def _classification(user, dataset) -> dict:
    """The dataset's sensitive columns and whether the reader sees them in clear."""
    return {
        "columns": dataset.sensitive_columns or {},
        "unmasked": services.may_unmask(user, dataset),
    }


def download_response(user, version, file_format: str):
    """A streamed download of a version (shared by the API and the dataset page)."""
    from django.http import FileResponse, StreamingHttpResponse

    stem = f"{version.dataset.slug}-v{version.number}"
    if file_format == "csv":
        response = StreamingHttpResponse(services.version_export_csv(actor=user, version=version), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="{stem}.csv"'
        return response
    if file_format != "parquet":
        raise Invalid(_("Choose parquet or csv."), fields={"as": [_("Choose parquet or csv.")]})
    return FileResponse(
        services.version_parquet_open(actor=user, version=version),
        as_attachment=True,
        filename=f"{stem}.parquet",  # noqa: SIM115 (FileResponse closes it)
        content_type="application/vnd.apache.parquet",
    )


UPLOAD_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The upload's id.")
CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


@extend_schema_view(
    retrieve=extend_schema(
        summary="A resumable upload: how many bytes arrived",
        parameters=[UPLOAD_ID],
        responses={200: UploadSessionSerializer, **ERRORS},
    )
)
class UploadSessionViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Chunks of a resumable upload; only the person who started it sees it."""

    serializer_class = UploadSessionSerializer
    http_method_names = ["get", "put", "post", "head", "options"]

    def get_queryset(self):
        return UploadSession.objects.filter(
            created_by=self.request.user, dataset__in=selectors.datasets_visible(self.request.user, "change").values("pk")
        ).select_related("dataset")

    @extend_schema(
        summary="Send the next chunk as the raw request body",
        description="Give its position with `Content-Range: bytes <start>-<end>/<total>` or `?offset=<start>`; "
        "the start must equal received_bytes (409 otherwise, with the offset to resume from).",
        parameters=[UPLOAD_ID, OpenApiParameter("offset", int, required=False)],
        request={"application/octet-stream": OpenApiTypes.BINARY},
        responses={200: UploadSessionSerializer, **ERRORS},
    )
    def update(self, request, *args, **kwargs):
        session = self.get_object()
        offset = request.query_params.get("offset")
        match = CONTENT_RANGE.match(request.headers.get("Content-Range", ""))
        if match:
            offset = match.group(1)
        try:
            offset = int(offset)
        except (TypeError, ValueError):
            raise Invalid(
                _("Say where the chunk starts: Content-Range or ?offset="), fields={"offset": [_("Required.")]}
            ) from None
        session = services.upload_session_append(actor=request.user, session=session, offset=offset, stream=request.stream)
        return Response(UploadSessionSerializer(session).data)

    @extend_schema(
        summary="Finish the upload: the joined file becomes a new version (its ingest runs as a job)",
        parameters=[UPLOAD_ID],
        request=None,
        responses={202: DatasetVersionSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def complete(self, request, pk=None):
        version = services.upload_session_complete(actor=request.user, session=self.get_object())
        return Response(DatasetVersionSerializer(version, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)


class SqlView(APIView):
    """Read-only SQL over the datasets you may see: one SELECT, sandboxed, row-capped, time-limited."""

    # A POST that reads: a token with the `read` scope may run queries.
    required_scope = "read"

    @extend_schema(
        summary="Run a read-only query (views are named department.dataset)",
        request=SqlQuerySerializer,
        responses={200: SqlResultSerializer, **ERRORS},
    )
    def post(self, request):
        serializer = SqlQuerySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(services.sql_run(actor=request.user, **serializer.validated_data))


class SqlExportView(APIView):
    """The whole result of a read-only query as a CSV download (within LEPTON_SQL_EXPORT_MAX_ROWS)."""

    required_scope = "read"

    @extend_schema(
        summary="Download a query's whole result as CSV (UTF-8 with BOM, formula cells escaped)",
        request=SqlExportSerializer,
        responses={(200, "text/csv"): OpenApiTypes.BINARY, **ERRORS},
    )
    def post(self, request):
        serializer = SqlExportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return sql_export_response(request.user, serializer.validated_data["sql"])


class _RemovedOnClose:
    """A file whose folder is removed when the response closes it (after the last byte was sent)."""

    def __init__(self, path: str, folder: str):
        self._file, self._folder = open(path, "rb"), folder  # noqa: SIM115 (closed by the response)

    def read(self, size=-1):
        return self._file.read(size)

    def close(self):
        import shutil

        self._file.close()
        shutil.rmtree(self._folder, ignore_errors=True)


def sql_export_response(user, sql: str):
    """Run the export in a temporary folder and stream the CSV; headers say how many rows and whether more existed."""
    import shutil
    import tempfile

    from django.http import FileResponse

    folder = tempfile.mkdtemp(prefix="lepton-sql-export-")
    try:
        result = services.sql_export(actor=user, sql=sql, folder=folder)
    except Exception:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    response = FileResponse(_RemovedOnClose(result["path"], folder), as_attachment=True, filename="query-result.csv")
    response["Content-Type"] = "text/csv; charset=utf-8"
    response["X-Lepton-Rows"] = str(result["row_count"])
    response["X-Lepton-Truncated"] = "true" if result["truncated"] else "false"
    return response


QUERY_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The saved query's id.")


@extend_schema_view(
    list=extend_schema(summary="Saved queries you may see", responses={200: SavedQuerySerializer(many=True), **ERRORS}),
    retrieve=extend_schema(summary="One saved query", parameters=[QUERY_ID], responses={200: SavedQuerySerializer, **ERRORS}),
    create=extend_schema(
        summary="Save a query for a department",
        request=SavedQueryCreateSerializer,
        responses={201: SavedQuerySerializer, **ERRORS},
    ),
    partial_update=extend_schema(
        summary="Rename a saved query or change its SQL",
        parameters=[QUERY_ID],
        request=SavedQueryUpdateSerializer,
        responses={200: SavedQuerySerializer, **ERRORS},
    ),
    destroy=extend_schema(summary="Delete a saved query", parameters=[QUERY_ID], responses={204: None, **ERRORS}),
)
class SavedQueryViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = SavedQuerySerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    required_scope = None  # the default rule (read for GET, write otherwise); `run` only reads

    def get_queryset(self):
        from lepton import policy

        return (
            policy.visible_to(self.request.user, SavedQuery)
            .select_related("department", "created_by")
            .order_by("department__slug", "name")
        )

    def create(self, request, *args, **kwargs):
        serializer = SavedQueryCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        query = services.saved_query_create(actor=request.user, **serializer.validated_data)
        return Response(SavedQuerySerializer(query).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        serializer = SavedQueryUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        query = services.saved_query_update(actor=request.user, query=self.get_object(), **serializer.validated_data)
        return Response(SavedQuerySerializer(query).data)

    def destroy(self, request, *args, **kwargs):
        services.saved_query_delete(actor=request.user, query=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Run a saved query (over the datasets you may see now)",
        parameters=[QUERY_ID],
        request=SavedQueryRunSerializer,
        responses={200: SqlResultSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"], required_scope="read")
    def run(self, request, pk=None):
        serializer = SavedQueryRunSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        query = self.get_object()
        return Response(services.sql_run(actor=request.user, sql=query.sql, **serializer.validated_data))


class SqlTablesView(APIView):
    @extend_schema(
        summary="The views the SQL console offers you, with their columns", responses={200: OpenApiTypes.OBJECT, **ERRORS}
    )
    def get(self, request):
        tables = services.sql_tables(request.user)
        return Response({name: list(source.columns.values()) for name, source in sorted(tables.items())})


RECIPE_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The recipe's id.")


@extend_schema_view(
    list=extend_schema(summary="Recipes you may see", responses={200: RecipeSerializer(many=True), **ERRORS}),
    retrieve=extend_schema(summary="One recipe", parameters=[RECIPE_ID], responses={200: RecipeSerializer, **ERRORS}),
    create=extend_schema(
        summary="Save a recipe (its output dataset is created with it)",
        request=RecipeCreateSerializer,
        responses={201: RecipeSerializer, **ERRORS},
    ),
)
class RecipeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    serializer_class = RecipeSerializer

    def get_queryset(self):
        from lepton import policy

        return policy.visible_to(self.request.user, Recipe).select_related("department").order_by("name")

    def create(self, request, *args, **kwargs):
        serializer = RecipeCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        from django.shortcuts import get_object_or_404

        dataset = get_object_or_404(selectors.datasets_visible(request.user), pk=data.pop("input_dataset"))
        recipe = services.recipe_create(actor=request.user, input_dataset=dataset, **data)
        return Response(RecipeSerializer(recipe).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Try the steps on the first rows of the inputs (nothing is stored)",
        parameters=[RECIPE_ID],
        request=RecipePreviewSerializer,
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def preview(self, request, pk=None):
        serializer = RecipePreviewSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(services.recipe_preview(actor=request.user, recipe=self.get_object(), **serializer.validated_data))

    @extend_schema(
        summary="Run the recipe on the latest input versions: a new output version, published by a job",
        parameters=[RECIPE_ID],
        request=None,
        responses={202: DatasetVersionSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def run(self, request, pk=None):
        version = services.recipe_run(actor=request.user, recipe=self.get_object())
        return Response(DatasetVersionSerializer(version, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    list=extend_schema(
        summary="Unmask grants of the departments you belong to", responses={200: UnmaskGrantSerializer(many=True)}
    ),
    create=extend_schema(
        summary="Let a member read the department's sensitive columns in clear (maintainers)",
        request=UnmaskGrantSerializer,
        responses={201: UnmaskGrantSerializer, **ERRORS},
    ),
    destroy=extend_schema(summary="Take an unmask grant back (maintainers)", responses={204: None, **ERRORS}),
)
class UnmaskGrantViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    serializer_class = UnmaskGrantSerializer

    def get_queryset(self):
        from datalake.models import UnmaskGrant
        from lepton import policy

        departments = policy.departments_for(self.request.user)
        return UnmaskGrant.objects.filter(department__in=departments).select_related("department", "user", "granted_by")

    def create(self, request, *args, **kwargs):
        from django.contrib.auth import get_user_model

        from lepton import policy
        from lepton.models import Department

        serializer = UnmaskGrantSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        department = policy.departments_for(request.user).filter(slug=serializer.validated_data["department"]).first()
        if department is None:
            raise NotFound(_("No department you belong to has this slug."), fields={"department": [_("Not found.")]})
        user = get_user_model().objects.filter(username=serializer.validated_data["user"]).first()
        if user is None:
            message = _("No such user.")
            raise Invalid(message, fields={"user": [message]})
        grant = services.unmask_grant(actor=request.user, department=Department.objects.get(pk=department.pk), user=user)
        return Response(UnmaskGrantSerializer(grant).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs):
        grant = self.get_object()
        services.unmask_revoke(actor=request.user, department=grant.department, user=grant.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
