"""The ONNX fast path for the scikit-learn pipelines `tabular.build_pipeline` makes (no Django).

`convert(pipeline)` rebuilds the pipeline as one ONNX graph: the ColumnTransformer's
branches are written here node by node (their custom FunctionTransformers included), the
final estimator is converted by skl2onnx, and the two are joined. `OnnxPredictor` runs it
with onnxruntime and answers like `tabular.predict`. `prepare` converts, checks the result
against the native pipeline on holdout rows and, when it is used, builds the quantised
variants and keeps those whose holdout metric stays within VARIANT_TOLERANCE.

What runs in Python per request (`OnnxPredictor.feed`): the input columns become one tensor
per branch — numbers through `tabular.to_float`, categories through `tabular.to_category`
(missing → ""), dates as UTC seconds since 1970 (NaN when missing), text through
`tabular.to_text`, lowercased and with its whitespace folded the way TfidfVectorizer's
char_wb analyser does it (onnxruntime's string ops depend on the machine's locales). The
rest (imputation, scaling, one-hot with infrequent categories, the date parts, character
n-gram TF-IDF, the estimator) is in the graph.

Anything else in a pipeline (another step, another analyser, an estimator skl2onnx cannot
convert) raises `ConversionError` with the reason; the caller then serves natively.

Modules (the names callers use are re-exported here: they write `onnx.<name>`, whatever the module):

- common.py      tolerances, limits, graph names, ConversionError;
- predictor.py   session_options, make_session, OnnxPredictor and its feed;
- branches.py    the ColumnTransformer's branches, node by node;
- conversion.py  convert: the branches joined to the estimator skl2onnx converts;
- metrics.py     holdout_metric and metric_name;
- quantised.py   the float16 and int8 variants and whether each is offered;
- checks.py      compare, read_holdout and prepare.

A test that changes a constant patches it on the module that reads it (onnx.checks.PROBA_TOLERANCE).
Inside this package `import onnx` is the ONNX library (imports are absolute), not this package.
"""

from __future__ import annotations

from .checks import compare, prepare, read_holdout  # noqa: F401  (callers and tests use these as onnx.<name>)
from .common import (  # noqa: F401
    CHECK_MAX_ROWS,
    FEATURES,
    FEATURES_CAST,
    LABEL_TIE,
    LOWER_IS_BETTER,
    MAIN_OPSET,
    MAX_DENSE_CELLS,
    METADATA_KEY,
    ML_OPSET,
    PROBA_TOLERANCE,
    REGRESSION_RTOL,
    VARIANT_TOLERANCE,
    VARIANTS,
    ConversionError,
)
from .conversion import convert  # noqa: F401
from .metrics import holdout_metric, metric_name  # noqa: F401
from .predictor import OnnxPredictor, _epoch_seconds, make_session, session_options  # noqa: F401
from .quantised import NOT_SHRINKING, VARIANT_BUILDERS, float16_variant, int8_variant, variants  # noqa: F401
