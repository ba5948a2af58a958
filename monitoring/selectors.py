"""Read queries of monitoring, always from what the user may see (models through their policy).

`model_drift` is what the drift API, the drift panel (templates/monitoring/partials/_drift.html)
and the model dashboard read; alerts can read `latest_drift` of a version directly.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import Sum
from django.utils.translation import gettext_lazy as _

from lepton.errors import NotFound
from models_repo import selectors as models_selectors
from monitoring.engine import drift as engine
from monitoring.models import DriftReference, DriftStatus, FeatureDrift, ReferenceStatus

NO_PRODUCTION = "no_production"
NOT_COMPUTED = "not_computed"
HISTORY_WINDOWS = 48

# The reason codes of monitoring.services and monitoring.engine.drift, in words.
REASONS = {
    NO_PRODUCTION: _("No version of this model is in production; drift is measured on the production version."),
    NOT_COMPUTED: _("The training inputs of this version have not been profiled yet."),
    "uploaded": _(
        "This version was uploaded as a file: Lepton has no training data to compare its inputs with, so it gets no drift."
    ),
    "not_tabular": _("This kind of model takes no table of inputs; drift is not computed for it."),
    "images": _("Image inputs are not profiled for drift."),
    "no_features": _("This version names no input columns."),
    "data_gone": _("The dataset version this version was trained on was deleted; there is nothing to compare with."),
    "data_changed": _("The training data no longer reads as it did when this version was trained."),
    "no_training_rows": _("No training rows were left to profile."),
    engine.SKIP_DATETIME: _("Dates are not compared: prediction times move past the training period by nature."),
    engine.SKIP_TYPE: _("Inputs of this type are not compared."),
    engine.SKIP_NO_VALUES: _("The training rows hold no value of this input."),
    engine.TOO_FEW: _("Too few sampled values in this window."),
}


def reason_text(code: str) -> str:
    return str(REASONS.get(code, code))


def drift_model(user, model_id):
    """The registered model `model_id` if the user may see it (department or share); NotFound otherwise."""
    model = models_selectors.models_visible(user).filter(pk=model_id).first()
    if model is None:
        raise NotFound()
    return model


def latest_drift(version) -> list[FeatureDrift]:
    """The features' drift of the version's latest computed window (empty when none yet)."""
    last = FeatureDrift.objects.filter(version=version).order_by("-window_end").values_list("window_end", flat=True).first()
    if last is None:
        return []
    return list(FeatureDrift.objects.filter(version=version, window_end=last))


def model_drift(user, model_id, *, number: int | None = None, history: int = HISTORY_WINDOWS) -> dict:
    """The drift of a model's production version (or version `number`) for a user who may see the model.

    Returns {model, version, available, reason, message, reference_rows, window_start,
    window_end, features (largest PSI first), history ({feature: [{window_end, psi, status}]},
    oldest first), sampled (input rows sampled in the current window), settings}. `available`
    is False with a reason when the version can have no drift (none in production, an uploaded
    file, a model without table inputs…); True with no features until a first window is computed.
    """
    from models_repo.models import VersionSource
    from models_repo.services import PRODUCTION

    model = drift_model(user, model_id)
    if number is not None:
        version = model.versions.filter(number=number).first()
        if version is None:
            raise NotFound()
    else:
        alias = next((a for a in model.aliases.all() if a.name == PRODUCTION), None)
        version = alias.version if alias is not None else None
    out = {
        "model": model,
        "version": version,
        "available": False,
        "reason": "",
        "message": "",
        "reference_rows": 0,
        "window_start": None,
        "window_end": None,
        "features": [],
        "history": {},
        "sampled": 0,
        "settings": {
            "window_hours": settings.LEPTON_DRIFT_WINDOW_HOURS,
            "min_sample": settings.LEPTON_DRIFT_MIN_SAMPLE,
            "psi_moderate": settings.LEPTON_DRIFT_PSI_MODERATE,
            "psi_significant": settings.LEPTON_DRIFT_PSI_SIGNIFICANT,
        },
    }
    if version is None:
        return {**out, "reason": NO_PRODUCTION, "message": reason_text(NO_PRODUCTION)}
    reference = DriftReference.objects.filter(version=version).only("status", "reason", "rows").first()
    if version.source == VersionSource.UPLOAD or (reference is not None and reference.status == ReferenceStatus.UNAVAILABLE):
        code = "uploaded" if version.source == VersionSource.UPLOAD else reference.reason
        return {**out, "reason": code, "message": reason_text(code)}
    out["available"] = True
    out["reference_rows"] = reference.rows if reference is not None else 0
    out["sampled"] = _sampled_now(version)
    latest = latest_drift(version)
    if not latest:
        return out
    out["window_start"], out["window_end"] = latest[0].window_start, latest[0].window_end
    out["features"] = sorted(
        (_feature(row) for row in latest), key=lambda f: (f["psi"] is None, -(f["psi"] or 0.0), f["feature"])
    )
    ends = list(
        FeatureDrift.objects.filter(version=version)
        .values_list("window_end", flat=True)
        .distinct()
        .order_by("-window_end")[:history]
    )
    points = FeatureDrift.objects.filter(version=version, window_end__gte=ends[-1]).order_by("window_end", "feature")
    for row in points.values("feature", "window_end", "psi", "status"):
        out["history"].setdefault(row["feature"], []).append(
            {"window_end": row["window_end"], "psi": row["psi"], "status": row["status"]}
        )
    return out


def _feature(row: FeatureDrift) -> dict:
    return {
        "feature": row.feature,
        "kind": row.kind,
        "status": row.status,
        "status_label": str(DriftStatus(row.status).label) if row.status in DriftStatus.values else row.status,
        "psi": row.psi,
        "ks_statistic": row.ks_statistic,
        "ks_pvalue": row.ks_pvalue,
        "sample_size": row.sample_size,
        "reason": row.reason,
        "message": reason_text(row.reason) if row.reason else "",
        "bins": row.bins,
    }


def _sampled_now(version) -> int:
    """Input rows sampled for the version in the window that ends now (the empty state counts them)."""
    from django.utils import timezone

    from models_repo.models import PredictionLog
    from monitoring.services import JsonArrayLength, window_start_for

    now = timezone.now()
    logs = PredictionLog.objects.filter(version=version, created_at__gt=window_start_for(now), created_at__lte=now)
    return logs.aggregate(n=Sum(JsonArrayLength("inputs")))["n"] or 0
