"""TensorFlow/Keras training: MLP on tables, LSTM/GRU/1D-CNN/MLP on sensor windows, 2D-CNN on images.

    options = validate_keras_options({"window": 48, "epochs": 20}, "sequence_classification", "keras_lstm")
    result = train(DeepSpec(..., options=options), "version.parquet", "/tmp/run-7")
    model = load_model(result.artifact_path)
    predict(model, windows, {**result.output, "input_schema": result.input_schema})

TensorFlow and Keras are imported only inside the functions that need them: importing TF costs
seconds and hundreds of MB, and the web processes import this package (for validate_keras_options)
without ever training (tests/models_repo/engine/test_deep.py checks it in a subprocess).

Decisions (the tests pin them):
- Everything serving needs is inside the saved model: a Normalization layer adapted on the
  training split standardises features and sensor channels, a Rescaling layer turns the
  standardised regression output back into target units, images enter as uint8 pixels and a
  Rescaling layer maps them to [0, 1]. `predict` therefore only reshapes and decodes.
- Three parts: training, validation (early stopping, the lr schedule, "val_loss") and the
  holdout (the metrics, never seen during fitting). Tables and images split at random
  (stratified for classifiers); sequence and forecasting tasks split by time: in each group
  the windows whose label row is latest form the holdout, the latest of the rest validate.
- A window is `window` consecutive rows of one group ordered by `time_column` (file order when
  there is none); windows never cross groups, and one starts every `stride` rows of its group
  (1: at every row; a larger stride thins out long, densely sampled series). Its label is the
  target at its last row (sequence_classification) or `horizon` rows after it (forecasting, the
  target is then also an input channel). Rows with a missing or infinite value in a used column are left out with
  a warning before windows are cut, so a window may span the gap they leave.
- Images are decoded with Pillow, 16-bit and float images stretched min..max to 8 bits,
  converted to grayscale when every manifest row is grayscale and to RGB otherwise, and resized
  to image_size × image_size (the aspect ratio is not kept). A file that does not decode is
  left out with a warning (ingest already refused broken files, so this is rare).
- should_stop() is polled after each epoch and, at most every STOP_POLL_SECONDS, after a batch.
  Stopping after at least one finished epoch keeps the model (warning "cancelled"); stopping
  before raises TrainingError(CANCELLED) and writes nothing.

Modules (the names callers use are re-exported here: they write `deep.<name>`, whatever the module):

- constants.py  tasks, algorithms, option defaults and limits;
- options.py    DeepSpec and validate_keras_options;
- data.py       the _Data every task ends as: reading, checks, labels, splits, tables;
- windows.py    sensor windows for sequence_classification and forecasting;
- images.py     the image manifest and decode_image;
- builders.py   the Keras networks;
- training.py   train: the fit loop, its callback, the device, saving;
- evaluate.py   holdout metrics, curves and permutation importance;
- serving.py    load_model and predict.

A test that changes a constant patches it on the module that reads it (deep.training.STOP_POLL_SECONDS).
"""

from __future__ import annotations

from .constants import (  # noqa: F401  (callers and tests use these as deep.<name>)
    ALGORITHMS,
    ALGORITHMS_FOR_TASK,
    CLASSIFIERS,
    COMMON_OPTIONS,
    CURVE_POINTS,
    DEFAULTS,
    DEVICES,
    GRAYSCALE_MODES,
    IMBALANCE_SHARE,
    IMPORTANCE_MAX_FEATURES,
    IMPORTANCE_MAX_SAMPLES,
    IMPORTANCE_REPEATS,
    LR_SCHEDULES,
    MAX_FILTERS,
    MIN_HOLDOUT,
    MIN_TRAIN,
    OPTION_NAMES,
    PROGRESS_PREPARED,
    PROGRESS_TRAINED,
    SEQUENCE_TASKS,
    STOP_POLL_SECONDS,
    TASKS,
    VALIDATION_FRACTION,
)
from .images import decode_image  # noqa: F401
from .options import DeepSpec, validate_keras_options  # noqa: F401
from .serving import load_model, predict  # noqa: F401
from .training import train  # noqa: F401
from .windows import _sequence_data  # noqa: F401  (tests/models_repo/engine/test_deep.py)
