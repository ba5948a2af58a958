"""Limits and defaults of the scikit-learn trainer (imported by its modules; tests may patch them on the package)."""

ARTIFACT_NAME = "model.joblib"
INNER_CV_FOLDS = 3  # the search's CV when the spec asks for no cv_folds
MIN_TRAIN_ROWS = 5
MIN_HOLDOUT_ROWS = 2
MAX_CATEGORIES = 50  # one-hot columns per categorical feature (the rest share "infrequent")
TEXT_FEATURES_SPARSE = 5000  # TF-IDF terms per text column when the estimator takes sparse input
TEXT_FEATURES_DENSE = 300  # … when it needs a dense matrix (rows × terms floats in memory)
TEXT_NGRAMS = (1, 3)
LEARNING_CURVE_MAX_ROWS = 50_000
LEARNING_CURVE_SIZES = (0.2, 0.4, 0.6, 0.8, 1.0)
IMPORTANCE_MAX_ROWS = 5000
IMPORTANCE_REPEATS = 5
CURVE_POINTS = 200
RESIDUAL_POINTS = 500
CHECK_SAMPLE_ROWS = 20_000  # leakage checks look at a sample
IMBALANCE_RATIO = 0.1
FEW_ROWS = 50
FEW_ROWS_PER_CLASS = 10
DATE_PARTS = ("year", "month", "day", "weekday", "hour")
