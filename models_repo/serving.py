"""Loading model versions for predictions and for the promotion gate.

A version is immutable, so a loaded model is cached per process by version id (LRU of
`LEPTON_SERVING_CACHE_SIZE`); aliases are resolved from the database on each request (one
indexed query), so moving an alias takes effect at once in every web process and
`invalidate` only drops this process's models of that model when an alias moved here.
Artifacts are checksum-verified by storage before they are loaded; a mismatch refuses to load.

`predictor` is what the predict endpoint serves with: a scikit-learn version converted to
ONNX at registration (`onnx_sha256`, see models_repo.services.registry.version_onnx_convert)
runs in onnxruntime, or one of its offered quantised variants when asked for; any other
version runs natively. `load` is always the native model (the promotion gate scores it).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections import OrderedDict

from django.conf import settings
from django.utils.translation import gettext as _

from lepton.errors import Invalid, ServiceError
from lepton.storage import BlobNotFound, CorruptBlob, get_storage

logger = logging.getLogger("lepton.serving")


class ArtifactUnavailable(ServiceError):
    """A version's artifact is missing or fails its checksum: it is not loaded (503)."""

    status = 503
    code = "artifact_unavailable"


_lock = threading.Lock()
# version id (native) or "version id:blob sha256" (ONNX) -> (model id, flavor, loaded model)
_loaded: OrderedDict = OrderedDict()
VARIANTS = ("float16", "int8")
NATIVE, ONNX = "native", "onnx"


def _capacity() -> int:
    return int(getattr(settings, "LEPTON_SERVING_CACHE_SIZE", 8))


def invalidate(model_id) -> None:
    """Forget this process's loaded versions of a model (called after one of its aliases moved)."""
    with _lock:
        for key in [k for k, (owner, _flavor, _model) in _loaded.items() if str(owner) == str(model_id)]:
            del _loaded[key]


class VersionNotReady(ServiceError):
    """An uploaded version still being validated, or refused at validation: it does not serve (409)."""

    status = 409
    code = "version_not_ready"


class NotServed(ServiceError):
    """A version of a kind another part applies (models_repo.external, a scheduling policy): no predictions (409)."""

    status = 409
    code = "not_served"


def refuse_not_served(version) -> None:
    """NotServed, with the owning part's reason, for a version of a kind this part does not serve."""
    from models_repo.external import by_flavor

    kind = by_flavor(version.flavor)
    if kind is not None:
        raise NotServed(str(kind.not_served))


def load(version):
    """The loaded native model of a ModelVersion (from the per-process cache when it is there)."""
    refuse_not_served(version)
    if version.status != "ready":  # models_repo.services.uploads: .keras uploads are validated in a worker first
        from models_repo.services.uploads import not_ready_reason

        raise VersionNotReady(not_ready_reason(version))

    def loader(path: str):
        if version.source == "upload" and version.flavor in ("onnx", "sklearn"):
            from models_repo.engine import uploaded

            return uploaded.load(version.flavor, path, version.input_schema, version.output.get("classes"))
        return _load_artifact(version.flavor, path)

    return _cached(version, str(version.pk), version.artifact_sha256, loader)


def predictor(version, variant: str = "") -> tuple[str, object]:
    """What serves `version`: ("onnx", OnnxPredictor) when it was converted, else ("native", `load`).

    `variant` (float16 or int8) asks for a quantised ONNX variant; one the version does not
    offer is a 400 naming `variant`. A converted version whose ONNX blob is missing or
    tampered with is refused (503), as the native artifact would be.
    """
    if variant:
        entry = (version.onnx_report.get("variants") or {}).get(variant) or {}
        if variant not in VARIANTS or not version.onnx_sha256 or not entry.get("offered") or not entry.get("sha256"):
            offered = offered_variants(version)
            if variant not in VARIANTS:
                message = _("variant must be one of %(names)s.") % {"names": ", ".join(VARIANTS)}
            elif offered:
                message = _("%(version)s offers no %(variant)s variant; it offers %(offered)s.") % {
                    "version": version, "variant": variant, "offered": ", ".join(offered),
                }  # fmt: skip
            else:
                message = _("%(version)s offers no quantised variant (its ONNX report on the model page says why).") % {
                    "version": version
                }
            raise Invalid(message, fields={"variant": [message]}, code="variant_not_offered")
        return ONNX, _load_onnx(version, entry["sha256"])
    if version.flavor == "sklearn" and version.source != "upload" and version.onnx_sha256:
        return ONNX, _load_onnx(version, version.onnx_sha256)
    return (ONNX if version.flavor == "onnx" else NATIVE), load(version)  # an uploaded ONNX file runs in onnxruntime


def offered_variants(version) -> list[str]:
    """The quantised variants a version offers (each passed the holdout check at registration)."""
    variants = (version.onnx_report.get("variants") or {}) if version.onnx_sha256 else {}
    return [name for name in VARIANTS if (variants.get(name) or {}).get("offered") and variants[name].get("sha256")]


def _load_onnx(version, sha256: str):
    from models_repo.engine.onnx import OnnxPredictor

    return _cached(version, f"{version.pk}:{sha256}", sha256, OnnxPredictor)


def _cached(version, key: str, sha256: str, loader):
    with _lock:
        if key in _loaded:
            _loaded.move_to_end(key)
            return _loaded[key][2]
    try:
        path = get_storage().verified_local_path(sha256)
    except (CorruptBlob, BlobNotFound) as exc:
        # Never load bytes that are not the ones registered; operators see this in the logs.
        logger.error("refusing to load %s (%s): %s", version, sha256[:12], exc)
        raise ArtifactUnavailable(
            f"The stored model of {version} is missing or does not match its checksum; it was not loaded. "
            "An administrator must restore the lake file or register the version again."
        ) from None
    try:
        model = loader(path)
    except Exception as exc:  # a file the installed libraries no longer read (an upgrade, a format change)
        logger.error("could not load %s (%s): %s: %s", version, sha256[:12], type(exc).__name__, exc)
        raise ArtifactUnavailable(
            f"The stored model of {version} could not be loaded by this installation ({type(exc).__name__}: "
            f"{str(exc)[:200]}). An administrator must check the installed library versions against the "
            "version's record, or register it again."
        ) from None
    with _lock:
        _loaded[key] = (version.model_id, version.flavor, model)
        while len(_loaded) > _capacity():
            _loaded.popitem(last=False)
    return model


def _load_artifact(flavor: str, path: str):
    if flavor == "keras":
        from models_repo.engine import deep

        # Keras wants the .keras suffix; the lake names blobs by checksum only: one link per artifact.
        folder = os.path.join(str(settings.VAR_DIR), "models")
        os.makedirs(folder, exist_ok=True)
        target = os.path.join(folder, f"{os.path.basename(path)}.keras")
        if not os.path.lexists(target):
            link = f"{target}.{os.getpid()}.tmp"
            os.symlink(os.path.abspath(path), link)
            os.replace(link, target)
        return deep.load_model(target)
    from models_repo.engine import tabular

    return tabular.load_model(path)


def predict_frame(version, inputs, variant: str = "") -> tuple[str, dict]:
    """(runtime, answer) for checked inputs, whatever the version's flavor and runtime.

    `inputs` is a DataFrame in the input schema's order for tabular versions, and what the
    Keras engine takes otherwise (windows, image bytes). The API, the try-it form, batch
    prediction and the promotion gate all predict through here. A version of a kind another
    part applies (models_repo.external) is refused (NotServed, 409).
    """
    runtime, loaded = predictor(version, variant)
    if version.flavor == "keras":
        from models_repo.engine import deep

        task = version.task or version.output.get("task", "")
        meta = {**version.output, "input_schema": version.input_schema, "task": task}
        return runtime, deep.predict(loaded, inputs, meta)
    if runtime == ONNX and version.flavor == "sklearn":
        return runtime, loaded.answer(inputs)
    from models_repo.engine import tabular

    return runtime, tabular.predict(loaded, inputs)


def score_on_holdout(version, reference, metric: str):
    """`version`'s `metric` on the holdout rows `reference` was evaluated on, or None when it cannot be scored.

    The rows are read from the reference's data version with the reference run's target; the
    version predicts them through its own runtime (models_repo.engine.scoring), so any flavor —
    a forest, a Keras network, an uploaded file — is measured on the same rows. Tabular
    classification and regression only: windowed and image holdouts are not rows of a table.
    Versions of a kind another part trains (models_repo.external) are measured by that part.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from models_repo.engine.errors import TrainingError
    from models_repo.engine.scoring import metric_from_predictions
    from models_repo.external import by_flavor

    kind = by_flavor(reference.flavor)
    if kind is not None or by_flavor(version.flavor) is not None:  # its owning part measures it, on its own held-out set
        return kind.score(version, reference, metric) if kind is not None and version.flavor == reference.flavor else None
    from models_repo.services.training import _named_parquet

    run, data, indices = reference.run, reference.dataset_version, reference.holdout.get("indices")
    tabular_tasks = ("classification", "regression")
    if run is None or data is None or not indices or version.task not in tabular_tasks or reference.task not in tabular_tasks:
        return None
    target = run.spec.get("target")
    names = [c["name"] for c in version.input_schema]
    with tempfile.TemporaryDirectory(prefix="lepton-gate-") as folder:
        try:
            parquet = _named_parquet(get_storage(), data, folder, actor=run.created_by, purpose="promotion gate")
            table = pq.read_table(parquet, columns=list(dict.fromkeys([*names, target])))
            frame = table.take(pa.array(indices, type=pa.int64())).to_pandas(date_as_object=False)
            _runtime, answer = predict_frame(version, frame[names])
        except (TrainingError, ServiceError, KeyError, ValueError, TypeError, IndexError, pa.ArrowException):
            return None
    return metric_from_predictions(metric, frame[target].tolist(), answer)
