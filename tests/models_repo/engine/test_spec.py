"""parse_spec: defaults, feature kinds, and every refusal with its code and field."""

import pytest

from models_repo.engine.errors import TrainingError
from models_repo.engine.spec import KERAS_ALGORITHMS, SKLEARN_ALGORITHMS, column_kind, parse_spec

COLUMNS = {
    "温度": "DOUBLE",
    "压力": "BIGINT",
    "line": "VARCHAR",
    "备注": "VARCHAR",
    "日期": "DATE",
    "ts": "TIMESTAMP",
    "machine": "VARCHAR",
    "ok": "BOOLEAN",
    "质量": "VARCHAR",
    "产量": "DOUBLE",
    "tags": "VARCHAR[]",
}


def spec(**overrides):
    raw = {"task": "classification", "target": "质量", "algorithms": [{"name": "random_forest"}]}
    raw.update(overrides)
    return raw


def refusal(raw, columns=COLUMNS) -> TrainingError:
    with pytest.raises(TrainingError) as caught:
        parse_spec(raw, columns)
    return caught.value


def test_classification_defaults():
    parsed = parse_spec(spec(), COLUMNS)
    assert parsed.task == "classification"
    assert parsed.flavor == "sklearn"
    assert parsed.split_method == "stratified"
    assert parsed.holdout == 0.2
    assert parsed.cv_folds == 0
    assert parsed.scoring == "f1_macro"
    assert parsed.seed == 42
    assert parsed.search_method == "grid"
    assert parsed.search_budget == 20
    # Every column but the target, less the list column that cannot be a feature.
    assert parsed.features == ("温度", "压力", "line", "备注", "日期", "ts", "machine", "ok", "产量")
    assert parsed.skipped == ("tags",)
    assert parsed.target_kind == "string"


def test_regression_defaults_to_random_split_and_rmse():
    parsed = parse_spec(spec(task="regression", target="产量"), COLUMNS)
    assert parsed.split_method == "random"
    assert parsed.scoring == "neg_root_mean_squared_error"
    assert "产量" not in parsed.features


def test_time_and_group_columns_are_not_default_features():
    parsed = parse_spec(spec(time_column="ts", group_column="machine"), COLUMNS)
    assert "ts" not in parsed.features
    assert "machine" not in parsed.features
    assert parsed.time_column == "ts"
    assert parsed.group_column == "machine"


def test_feature_kinds_text_features_are_tfidf_other_varchars_one_hot():
    parsed = parse_spec(spec(features=["温度", "压力", "line", "备注", "日期", "ok"], text_features=["备注"]), COLUMNS)
    assert parsed.feature_kinds == {
        "温度": "number",
        "压力": "integer",
        "line": "string",
        "备注": "text",
        "日期": "datetime",
        "ok": "boolean",
    }
    assert parsed.text_features == ("备注",)


@pytest.mark.parametrize(
    ("type_name", "kind"),
    [
        ("BIGINT", "integer"),
        ("int64", "integer"),
        ("uint8", "integer"),
        ("DOUBLE", "number"),
        ("DECIMAL(10,2)", "number"),
        ("float", "number"),
        ("BOOLEAN", "boolean"),
        ("bool", "boolean"),
        ("VARCHAR", "string"),
        ("large_string", "string"),
        ("ENUM('a', 'b')", "string"),
        ("DATE", "datetime"),
        ("date32[day]", "datetime"),
        ("TIMESTAMP WITH TIME ZONE", "datetime"),
        ("timestamp[us, tz=UTC]", "datetime"),
        ("INTEGER[]", "other"),
        ("STRUCT(a INTEGER)", "other"),
        ("BLOB", "other"),
        ("TIME", "other"),
    ],
)
def test_column_kind_reads_duckdb_and_arrow_names(type_name, kind):
    assert column_kind(type_name) == kind


def test_list_params_become_tuples():
    parsed = parse_spec(spec(algorithms=[{"name": "mlp", "params": {"hidden_layer_sizes": [8, 4]}}]), COLUMNS)
    assert parsed.algorithms[0].params == {"hidden_layer_sizes": (8, 4)}


def test_algorithm_given_as_a_bare_name():
    parsed = parse_spec(spec(algorithms=["knn"]), COLUMNS)
    assert parsed.algorithms[0].name == "knn"


def test_search_space_kept_per_algorithm():
    parsed = parse_spec(
        spec(algorithms=[{"name": "random_forest", "params": {"n_estimators": 10}, "search": {"max_depth": [None, 3]}}]),
        COLUMNS,
    )
    assert parsed.has_search
    assert parsed.algorithms[0].search == {"max_depth": [None, 3]}


def test_not_an_object_refused():
    assert refusal(["task"]).code == TrainingError.INVALID_SPEC


def test_unknown_keys_refused_by_name():
    error = refusal(spec(target_column="质量", colour="blue"))
    assert error.code == TrainingError.INVALID_SPEC
    assert set(error.fields) == {"target_column", "colour"}
    assert "'target_column'" in error.fields["target_column"][0]
    assert "'colour'" in error.message


def test_unknown_task_refused():
    error = refusal(spec(task="clustering"))
    assert "classification" in error.fields["task"][0]


def test_unknown_algorithm_refused_listing_known_ones():
    error = refusal(spec(algorithms=[{"name": "xgboost"}]))
    reason = error.fields["algorithms.0.name"][0]
    assert "xgboost" in reason
    for name in (*SKLEARN_ALGORITHMS, *KERAS_ALGORITHMS):
        assert name in reason


def test_empty_algorithm_list_refused():
    assert "algorithms" in refusal(spec(algorithms=[])).fields


def test_target_missing():
    error = refusal(spec(target="不存在"))
    assert error.code == TrainingError.TARGET_MISSING
    assert "不存在" in error.fields["target"][0]


def test_regression_on_text_target_is_not_numeric():
    error = refusal(spec(task="regression", target="质量", algorithms=[{"name": "ridge"}]))
    assert error.code == TrainingError.TARGET_NOT_NUMERIC
    assert "质量" in error.message
    assert "target" in error.fields


def test_specific_code_wins_over_other_problems():
    error = refusal(spec(task="regression", target="line", algorithms=[{"name": "ridge"}], colour="x"))
    assert error.code == TrainingError.TARGET_NOT_NUMERIC
    assert error.message.startswith("The training spec is not valid: target:")
    assert "colour" in error.fields


def test_features_not_in_columns_named():
    error = refusal(spec(features=["温度", "湿度"]))
    assert error.code == TrainingError.INVALID_SPEC
    assert "湿度" in error.fields["features.1"][0]


def test_target_listed_as_feature_refused():
    error = refusal(spec(features=["温度", "质量"]))
    assert "target" in error.fields["features.1"][0]


def test_list_column_as_feature_refused():
    assert "features.0" in refusal(spec(features=["tags"])).fields


def test_no_features_left():
    error = refusal(spec(features=[]), {"质量": "VARCHAR"})
    assert error.code == TrainingError.NO_FEATURES


def test_text_feature_must_be_varchar():
    error = refusal(spec(text_features=["温度"]))
    assert "text_features.0" in error.fields


def test_text_feature_must_be_among_given_features():
    error = refusal(spec(features=["温度"], text_features=["备注"]))
    assert "not among the features" in error.fields["text_features.0"][0]


def test_unknown_param_named():
    error = refusal(spec(algorithms=[{"name": "random_forest", "params": {"n_trees": 10}}]))
    reason = error.fields["algorithms.0.params.n_trees"][0]
    assert "n_trees" in reason
    assert "n_estimators" in reason  # the known parameters are listed


def test_bad_param_value_refused_with_sklearn_reason():
    error = refusal(spec(algorithms=[{"name": "random_forest", "params": {"n_estimators": -1}}]))
    assert "n_estimators" in error.fields["algorithms.0.params.n_estimators"][0]


def test_bad_search_value_named_by_position():
    error = refusal(spec(algorithms=[{"name": "random_forest", "search": {"max_depth": [None, -3]}}]))
    assert "algorithms.0.search.max_depth.1" in error.fields


def test_unknown_search_param_named():
    error = refusal(spec(algorithms=[{"name": "knn", "search": {"k": [1, 3]}}]))
    assert "algorithms.0.search.k" in error.fields


def test_search_values_must_be_a_list():
    error = refusal(spec(algorithms=[{"name": "knn", "search": {"n_neighbors": 3}}]))
    assert "algorithms.0.search.n_neighbors" in error.fields


def test_random_state_param_refused_in_favour_of_seed():
    error = refusal(spec(algorithms=[{"name": "random_forest", "params": {"random_state": 1}}]))
    assert "seed" in error.fields["algorithms.0.params.random_state"][0]


def test_hidden_layer_sizes_checked():
    error = refusal(spec(algorithms=[{"name": "mlp", "params": {"hidden_layer_sizes": [8, "a"]}}]))
    assert "algorithms.0.params.hidden_layer_sizes" in error.fields


@pytest.mark.parametrize(
    ("task", "target", "name"),
    [
        ("regression", "产量", "gaussian_nb"),
        ("regression", "产量", "logistic_regression"),
        ("classification", "质量", "linear_regression"),
    ],
)
def test_algorithm_without_variant_for_task_refused(task, target, name):
    error = refusal(spec(task=task, target=target, algorithms=[{"name": name}]))
    assert f"does not do {task}" in error.fields["algorithms.0.name"][0]


def test_duplicate_algorithm_refused():
    assert "algorithms.1.name" in refusal(spec(algorithms=["knn", "knn"])).fields


def test_flavors_cannot_be_mixed():
    error = refusal(spec(algorithms=[{"name": "random_forest"}, {"name": "keras_mlp"}]))
    assert "mix" in error.fields["algorithms"][0]


def test_keras_algorithm_accepted_as_keras_flavor():
    parsed = parse_spec(
        spec(task="forecasting", target="产量", time_column="ts", algorithms=[{"name": "keras_lstm"}], keras={"window": 24}),
        COLUMNS,
    )
    assert parsed.flavor == "keras"
    assert parsed.keras == {"window": 24}
    assert parsed.split_method == "time"


def test_keras_options_must_be_an_object():
    error = refusal(spec(algorithms=[{"name": "keras_mlp"}], keras=[1, 2]))
    assert "keras" in error.fields


def test_keras_algorithm_for_wrong_task_refused():
    error = refusal(spec(algorithms=[{"name": "keras_cnn2d"}]))
    assert "image_classification" in error.fields["algorithms.0.name"][0]


def test_forecasting_with_sklearn_refused_naming_keras_algorithms():
    error = refusal(spec(task="forecasting", target="产量", time_column="ts", algorithms=[{"name": "random_forest"}]))
    reason = error.fields["algorithms.0.name"][0]
    assert "keras_lstm" in reason


def test_sequence_task_needs_time_column():
    error = refusal(spec(task="sequence_classification", algorithms=[{"name": "keras_gru"}]))
    assert "time_column" in error.fields


def test_stratified_split_refused_for_regression():
    error = refusal(spec(task="regression", target="产量", split={"method": "stratified"}, algorithms=["ridge"]))
    assert "split.method" in error.fields


def test_time_split_needs_time_column():
    assert "split.method" in refusal(spec(split={"method": "time"})).fields


def test_time_column_must_be_temporal_or_numeric():
    assert "time_column" in refusal(spec(time_column="line")).fields


@pytest.mark.parametrize("holdout", [0.01, 0.6, "0.2", True])
def test_holdout_out_of_range_refused(holdout):
    assert "split.holdout" in refusal(spec(split={"holdout": holdout})).fields


def test_unknown_split_key_refused():
    assert "split.size" in refusal(spec(split={"size": 0.2})).fields


@pytest.mark.parametrize("folds", [1, 11, "5", 2.5])
def test_cv_folds_out_of_range_refused(folds):
    assert "cv_folds" in refusal(spec(cv_folds=folds)).fields


def test_unknown_search_method_refused():
    assert "search.method" in refusal(spec(search={"method": "bayes"})).fields


def test_grid_over_budget_refused():
    error = refusal(
        spec(
            algorithms=[{"name": "random_forest", "search": {"max_depth": [1, 2, 3], "n_estimators": [5, 10]}}],
            search={"method": "grid", "budget": 5},
        )
    )
    assert "6 candidates" in error.fields["algorithms.0.search"][0]


def test_random_search_may_exceed_budget():
    parsed = parse_spec(
        spec(
            algorithms=[{"name": "random_forest", "search": {"max_depth": [1, 2, 3], "n_estimators": [5, 10]}}],
            search={"method": "random", "budget": 5},
        ),
        COLUMNS,
    )
    assert parsed.search_method == "random"
    assert parsed.search_budget == 5


@pytest.mark.parametrize("seed", [-1, 2**32, "42", 1.5])
def test_bad_seed_refused(seed):
    assert "seed" in refusal(spec(seed=seed)).fields


def test_scoring_must_fit_the_task():
    error = refusal(spec(scoring="r2"))
    assert "f1_macro" in error.fields["scoring"][0]


def test_several_problems_reported_together():
    error = refusal(spec(features=["湿度"], cv_folds=1, seed=-1, split={"holdout": 0.9}))
    assert {"features.0", "cv_folds", "seed", "split.holdout"} <= set(error.fields)
    assert "3 more problems" in error.message
