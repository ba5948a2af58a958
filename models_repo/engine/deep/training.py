"""The training loop: `train` reads the data, builds and fits the network, evaluates and saves it.

TensorFlow and Keras are imported inside the functions here, never at module level.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import TrainingError, gettext_noop, phrase
from ..result import TrainResult
from .builders import _build_model
from .constants import PROGRESS_PREPARED, PROGRESS_TRAINED, SEQUENCE_TASKS, STOP_POLL_SECONDS
from .data import _tabular_data
from .evaluate import _evaluate, _importance
from .images import _image_data
from .options import DeepSpec, validate_keras_options
from .serving import _predict_arrays
from .windows import _sequence_data


def _reporter(keras, *, epochs: int, on_epoch, progress, should_stop):
    """A callback that reports each epoch, records the history and stops when asked."""

    class Reporter(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.history: list[dict[str, float]] = []
            self.cancelled = False
            self.cancelled_in_epoch = False
            self.last_poll = time.monotonic()

        def on_train_batch_end(self, batch, logs=None):
            if time.monotonic() - self.last_poll >= STOP_POLL_SECONDS:
                self.last_poll = time.monotonic()
                if should_stop():
                    self.cancelled = self.cancelled_in_epoch = True
                    self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            if self.cancelled_in_epoch:  # a partial epoch: not reported as done
                return
            row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
            row["learning_rate"] = float(keras.ops.convert_to_tensor(self.model.optimizer.learning_rate))
            self.history.append(row)
            on_epoch(epoch + 1, {k: v for k, v in row.items() if k != "epoch"})
            span = PROGRESS_TRAINED - PROGRESS_PREPARED
            numbers = {"epoch": epoch + 1, "epochs": epochs, "loss": f"{row['loss']:.4g}"}
            if "val_loss" in row:
                message = phrase(
                    gettext_noop("Epoch %(epoch)s of %(epochs)s: loss %(loss)s, val_loss %(val_loss)s"),
                    **numbers,
                    val_loss=f"{row['val_loss']:.4g}",
                )
            else:
                message = phrase(gettext_noop("Epoch %(epoch)s of %(epochs)s: loss %(loss)s"), **numbers)
            progress(PROGRESS_PREPARED + int(span * (epoch + 1) / epochs), message)
            self.last_poll = time.monotonic()
            if should_stop():
                self.cancelled = True
                self.model.stop_training = True

    return Reporter()


def _pick_device(tf, requested: str, warnings: list[dict[str, str]]) -> str:
    if requested not in ("gpu", "gpu_or_cpu"):
        return "cpu"
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        warnings.append({"code": "cpu_fallback", "message": gettext_noop("No GPU was visible to this worker; trained on CPU.")})
        return "cpu"
    for gpu in gpus:
        try:  # take GPU memory as needed: several workers may share a card
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised in this process; the earlier setting stands
            pass
    return "gpu"


def train(
    spec: DeepSpec,
    parquet_path: str,
    out_dir: str,
    *,
    progress: Callable[[int, str], None] = lambda pct, msg: None,
    should_stop: Callable[[], bool] = lambda: False,
    on_epoch: Callable[[int, dict[str, float]], None] = lambda epoch, logs: None,
    image_loader: Callable[[str], bytes] | None = None,
) -> TrainResult:
    """Fit spec.algorithm on the Parquet file, evaluate it on the holdout, save out_dir/model.keras.

    progress(pct, message) gets 0..100; on_epoch(epoch, logs) gets the 1-based epoch and plain
    floats (loss, val_loss, metrics, learning_rate); should_stop() is polled (see the package
    docstring); image_loader(sha256) returns an image's bytes (image_classification only).
    Raises TrainingError for a spec or data it refuses; nothing is written then.
    """
    started = time.monotonic()
    options = validate_keras_options(spec.options, spec.task, spec.algorithm)
    warnings: list[dict[str, str]] = []
    progress(0, gettext_noop("Reading the data"))
    if spec.task == "image_classification":
        data = _image_data(spec, parquet_path, options, image_loader, should_stop, progress, warnings)
    elif spec.task in SEQUENCE_TASKS:
        data = _sequence_data(spec, parquet_path, options, warnings)
    else:
        data = _tabular_data(spec, parquet_path, warnings)
    if should_stop():
        raise TrainingError(TrainingError.CANCELLED, gettext_noop("Training was cancelled before the first epoch."))
    progress(PROGRESS_PREPARED, phrase(gettext_noop("Training on %(samples)s samples"), samples=len(data.x_train)))

    import keras
    import tensorflow as tf

    device = _pick_device(tf, options["device"], warnings)
    keras.utils.set_random_seed(spec.seed)
    epochs, batch_size = options["epochs"], options["batch_size"]
    monitor = "val_loss" if data.x_val is not None else "loss"
    with tf.device("/GPU:0" if device == "gpu" else "/CPU:0"):
        model = _build_model(keras, spec, options, data)
        learning_rate = options["learning_rate"]
        if options["lr_schedule"] == "cosine":
            steps = epochs * math.ceil(len(data.x_train) / batch_size)
            learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps, alpha=0.01)
        classifier = data.classes is not None
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
            loss="sparse_categorical_crossentropy" if classifier else "mse",
            metrics=["accuracy"] if classifier else ["mae"],
        )
        reporter = _reporter(keras, epochs=epochs, on_epoch=on_epoch, progress=progress, should_stop=should_stop)
        callbacks = [reporter]
        if options["patience"]:
            callbacks.append(
                keras.callbacks.EarlyStopping(monitor=monitor, patience=options["patience"], restore_best_weights=True)
            )
        if options["lr_schedule"] == "reduce_on_plateau":
            callbacks.append(
                keras.callbacks.ReduceLROnPlateau(
                    monitor=monitor,
                    factor=0.5,
                    patience=max(1, options["patience"] // 2 or 2),
                    min_lr=options["learning_rate"] / 1000,
                )
            )
        model.fit(
            data.x_train,
            data.y_train,
            validation_data=None if data.x_val is None else (data.x_val, data.y_val),
            epochs=epochs,
            batch_size=batch_size,
            shuffle=True,
            verbose=0,
            callbacks=callbacks,
        )
        if not reporter.history:
            raise TrainingError(TrainingError.CANCELLED, gettext_noop("Training was cancelled before the first epoch finished."))
        progress(PROGRESS_TRAINED + 2, gettext_noop("Evaluating on the holdout"))
        predicted = _predict_arrays(model, data.x_test, batch_size)
        metrics, curves = _evaluate(data, predicted)
        importance = _importance(model, data, predicted, batch_size, spec.seed) if data.channels else []

    epochs_run = len(reporter.history)
    extra: dict[str, Any] = {"device_used": device, "epochs_run": epochs_run, "parameters": int(model.count_params())}
    if options["patience"]:  # EarlyStopping restored this epoch's weights
        scores = [row.get(monitor, math.inf) for row in reporter.history]
        extra["best_epoch"] = int(np.argmin(scores)) + 1
    if reporter.cancelled:
        warnings.append(
            {
                "code": "cancelled",
                "message": phrase(
                    gettext_noop("Training was stopped after %(run)s of %(epochs)s epochs; the model from those epochs is kept."),
                    run=epochs_run,
                    epochs=epochs,
                ),
            }
        )
    curves["epochs"] = reporter.history
    progress(PROGRESS_TRAINED + 7, gettext_noop("Saving the model"))
    os.makedirs(out_dir, exist_ok=True)
    artifact = os.path.join(out_dir, "model.keras")
    model.save(artifact)
    progress(100, gettext_noop("Done"))
    return TrainResult(
        artifact_path=artifact,
        flavor="keras",
        task=spec.task,
        algorithm=spec.algorithm,
        params={**options, **extra},
        metrics=metrics,
        curves=curves,
        importance=importance,
        input_schema=data.input_schema,
        output=data.output,
        warnings=warnings,
        holdout={**data.holdout, "metric": "f1_macro" if data.classes is not None else "rmse"},
        seconds=round(time.monotonic() - started, 3),
        packages=_packages(spec.task),
    )


def _packages(task: str) -> dict[str, str]:
    import keras
    import tensorflow as tf

    packages = {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__}
    if task == "image_classification":
        import PIL

        packages["pillow"] = PIL.__version__
    return packages
