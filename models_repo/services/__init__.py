"""Every state change of the model repository: training runs, models, versions, aliases, promotions.

Like the core services, each takes the acting user as `actor=`, checks the policy, writes its
audit event in its transaction and queues work with `transaction.on_commit`.
"""

from .archive import model_archive, version_archive
from .batch import BATCH_TASKS, batch_predict_execute, batch_predict_start
from .continuous import continuous_set, promote_if_passing, retrain_on_publish
from .external import (
    external_artifact,
    external_training_claim,
    external_training_finish,
    external_training_start,
    external_training_stop,
)
from .registry import (
    GUARDED_ALIASES,
    PRODUCTION,
    alias_remove,
    alias_set,
    gate_check,
    model_create,
    model_update,
    production_rollback,
    promotion_approve,
    promotion_gate_run,
    promotion_reject,
    promotion_request,
    promotion_settings_update,
    promotions_settle,
    version_from_run,
)
from .training import (
    TRAIN_KINDS,
    runs_settle,
    training_abandon,
    training_analyse,
    training_cancel,
    training_execute,
    training_rerun,
    training_start,
)
from .uploads import version_upload, version_validate

__all__ = [
    "BATCH_TASKS",
    "batch_predict_execute",
    "batch_predict_start",
    "model_archive",
    "version_archive",
    "GUARDED_ALIASES",
    "PRODUCTION",
    "TRAIN_KINDS",
    "alias_remove",
    "continuous_set",
    "external_artifact",
    "external_training_claim",
    "external_training_finish",
    "external_training_start",
    "external_training_stop",
    "promote_if_passing",
    "retrain_on_publish",
    "alias_set",
    "gate_check",
    "model_create",
    "model_update",
    "production_rollback",
    "promotion_gate_run",
    "promotions_settle",
    "promotion_approve",
    "promotion_reject",
    "promotion_request",
    "promotion_settings_update",
    "runs_settle",
    "training_abandon",
    "training_cancel",
    "training_analyse",
    "training_execute",
    "training_rerun",
    "training_start",
    "version_from_run",
    "version_upload",
    "version_validate",
]
