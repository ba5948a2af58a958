"""Tasks, algorithms, option defaults and limits of the Keras trainer.

The modules import these by name: a test that changes one patches it on the module that reads it
(deep.training.STOP_POLL_SECONDS, not deep.STOP_POLL_SECONDS).
"""

from __future__ import annotations

from typing import Any

TASKS = ("classification", "regression", "forecasting", "sequence_classification", "image_classification")
SEQUENCE_TASKS = ("sequence_classification", "forecasting")
CLASSIFIERS = ("classification", "sequence_classification", "image_classification")
ALGORITHMS = ("keras_mlp", "keras_lstm", "keras_gru", "keras_cnn1d", "keras_cnn2d")
# Which algorithm can learn which task; anything else is refused naming both.
ALGORITHMS_FOR_TASK = {
    "classification": ("keras_mlp",),
    "regression": ("keras_mlp",),
    "sequence_classification": ("keras_lstm", "keras_gru", "keras_cnn1d", "keras_mlp"),
    "forecasting": ("keras_lstm", "keras_gru", "keras_cnn1d", "keras_mlp"),
    "image_classification": ("keras_cnn2d",),
}
LR_SCHEDULES = ("none", "reduce_on_plateau", "cosine")
DEVICES = ("cpu", "gpu", "gpu_or_cpu")  # gpu_or_cpu: a GPU worker when one is online, else CPU (the job says)
DEFAULTS: dict[str, Any] = {
    "layers": 2,
    "units": 64,
    "dropout": 0.1,
    "epochs": 50,
    "batch_size": 32,
    "learning_rate": 1e-3,
    "lr_schedule": "none",
    "patience": 5,
    "device": "cpu",
    "stride": 1,
    "horizon": 1,
    "filters": 32,
    "kernel_size": 3,
    "image_size": 64,
    "augment": False,
}
COMMON_OPTIONS = ("layers", "units", "dropout", "epochs", "batch_size", "learning_rate", "lr_schedule", "patience", "device")
OPTION_NAMES = (*COMMON_OPTIONS, "window", "stride", "horizon", "filters", "kernel_size", "image_size", "augment")
MAX_FILTERS = 512
VALIDATION_FRACTION = 0.15  # of the training part, for early stopping and the lr schedule
MIN_TRAIN = 8  # samples (rows, windows, images) left for training after the holdout
MIN_HOLDOUT = 2
IMBALANCE_SHARE = 0.1  # a class below this share of the training labels gets a warning
STOP_POLL_SECONDS = 2.0  # should_stop may query the database; not after every batch
IMPORTANCE_REPEATS = 3
IMPORTANCE_MAX_FEATURES = 100
IMPORTANCE_MAX_SAMPLES = 2000
CURVE_POINTS = 200
GRAYSCALE_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
PROGRESS_PREPARED = 10  # progress() percent once the data is ready; epochs fill up to PROGRESS_TRAINED
PROGRESS_TRAINED = 90
