"""Tolerances, limits, graph names and ConversionError, shared by the converter, the predictor and the checks.

The modules import these by name: a test that changes one patches it on the module that reads it
(onnx.checks.PROBA_TOLERANCE, not onnx.PROBA_TOLERANCE).
"""

from __future__ import annotations

# The equivalence check (holdout rows, native vs ONNX): labels identical, probabilities and
# regression values within these. ONNX runs the estimator in float32, scikit-learn in float64.
PROBA_TOLERANCE = 1e-4
REGRESSION_RTOL = 1e-4  # relative to max(1, |native prediction|)
# Probabilities this close to a row's largest count as a tie, broken to the first class as numpy's
# argmax does (scikit-learn's predict); far below any real difference between a forest's vote shares.
LABEL_TIE = 1e-5
CHECK_MAX_ROWS = 20_000  # rows of the holdout the check and the variants look at (a sample beyond)
# A quantised variant is offered when its holdout metric is at most this much worse than the
# native model's (absolute for scores in [0, 1], relative to the value for errors such as
# rmse: 0.005 × max(1, |metric|)) and its file is smaller.
VARIANT_TOLERANCE = 0.005
VARIANTS = ("float16", "int8")
METADATA_KEY = "lepton"
MAX_DENSE_CELLS = 50_000_000  # k-NN's training rows held dense in the graph: 200 MB of float32 at most
MAIN_OPSET = 19
ML_OPSET = 3
FEATURES = "lp_features"
FEATURES_CAST = "lp_cast_features"  # float64 preprocessing → the estimator's float32 (float16_variant keeps it)
LOWER_IS_BETTER = {"rmse", "mae", "mse", "mape", "log_loss"}


class ConversionError(Exception):
    """The pipeline has a part with no ONNX equivalent here; `reason` says which."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
