"""Every state change of the data lake: datasets, uploads, ingest and publication, recipes.

Like the core services, each takes the acting user as `actor=`, checks the policy, writes
its audit event in its transaction and queues work with `transaction.on_commit`. Callers
import from `datalake.services`; the modules split the use cases by subject.
"""

from .datasets import (
    EDITABLE_FIELDS,
    TRASH_DAYS,
    dataset_create,
    dataset_delete,
    dataset_diff,
    dataset_lineage,
    dataset_purge,
    dataset_restore,
    dataset_update,
    department_storage_used,
    lineage_add,
)
from .imports import (
    IMPORT_KIND,
    database_import_create,
    database_import_delete,
    database_import_for,
    database_import_run,
    database_import_update,
    import_execute,
    imports_submit_due,
)
from .queries import saved_query_create, saved_query_delete, saved_query_update
from .reading import (
    sql_export,
    sql_run,
    sql_tables,
    version_export_csv,
    version_image,
    version_image_grid,
    version_parquet_path,
    version_preview,
)
from .recipes import RECIPE_KIND, recipe_create, recipe_execute, recipe_preview, recipe_run
from .versions import (
    INGEST_KIND,
    USER_OPTIONS,
    dataset_upload,
    upload_session_append,
    upload_session_complete,
    upload_session_start,
    version_fail,
    version_finish,
    version_ingest,
    version_publish,
    version_retry,
)

__all__ = [
    "EDITABLE_FIELDS",
    "IMPORT_KIND",
    "database_import_create",
    "database_import_delete",
    "database_import_for",
    "database_import_run",
    "database_import_update",
    "import_execute",
    "imports_submit_due",
    "INGEST_KIND",
    "RECIPE_KIND",
    "TRASH_DAYS",
    "USER_OPTIONS",
    "dataset_create",
    "dataset_delete",
    "dataset_diff",
    "dataset_lineage",
    "dataset_purge",
    "dataset_restore",
    "dataset_update",
    "dataset_upload",
    "department_storage_used",
    "lineage_add",
    "recipe_create",
    "recipe_execute",
    "recipe_preview",
    "recipe_run",
    "saved_query_create",
    "saved_query_delete",
    "saved_query_update",
    "sql_export",
    "sql_run",
    "sql_tables",
    "upload_session_append",
    "upload_session_complete",
    "upload_session_start",
    "version_export_csv",
    "version_fail",
    "version_finish",
    "version_image",
    "version_image_grid",
    "version_ingest",
    "version_parquet_path",
    "version_preview",
    "version_publish",
    "version_retry",
]
