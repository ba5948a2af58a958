"""What a training returns: plain data the services record on the TrainingRun and ModelVersion."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrainResult:
    """One finished training.

    artifact_path   the fitted model written by the engine (joblib for scikit-learn pipelines,
                    .keras for Keras), loadable by `load_model` of the same module;
    flavor          "sklearn" or "keras";
    task            classification | regression | forecasting | sequence_classification | image_classification;
    algorithm       the chosen algorithm's key (the best one when several were searched);
    params          the chosen hyper-parameters (JSON-able);
    metrics         holdout metrics by name (floats), e.g. accuracy, f1_macro, roc_auc, rmse, r2;
    cv              per-fold and mean CV scores with the scoring name ({} when no CV);
    candidates      every searched candidate: {"algorithm", "params", "score"} (best first);
    curves          named plot data: "roc", "pr", "learning", "residuals", "confusion_matrix", "epochs";
    importance      permutation importance [{"feature", "mean", "std"}], most important first;
    input_schema    [{"name", "type", "nullable"}] of the columns a prediction needs, in order;
    output          {"classes": [...]} for classifiers, {} otherwise;
    warnings        [{"code", "message"}]: class imbalance, leakage, few rows, …;
    holdout         what the gate re-scores on: {"rows": n, "indices": [...] or None, "metric": name};
    seconds         wall time of the fit and evaluation;
    packages        versions of the libraries that trained it (reproducibility).
    """

    artifact_path: str
    flavor: str
    task: str
    algorithm: str
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    cv: dict[str, Any] = field(default_factory=dict)
    candidates: list[dict[str, Any]] = field(default_factory=list)
    curves: dict[str, Any] = field(default_factory=dict)
    importance: list[dict[str, Any]] = field(default_factory=list)
    input_schema: list[dict[str, Any]] = field(default_factory=list)
    output: dict[str, Any] = field(default_factory=dict)
    warnings: list[dict[str, str]] = field(default_factory=list)
    holdout: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    packages: dict[str, str] = field(default_factory=dict)
