"""The Keras engine on tiny generated data: every algorithm trains, refusals carry codes and fields,
cancel and GPU fallback keep a model, and a saved model predicts what the trainer measured."""

import hashlib
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from datalake.engine.demo import part_images, png_bytes
from models_repo.engine import deep
from models_repo.engine.deep import DeepSpec, load_model, predict, train, validate_keras_options
from models_repo.engine.errors import TrainingError

REPO = Path(__file__).resolve().parents[3]
SMALL = {"layers": 1, "units": 8, "dropout": 0.0, "batch_size": 32, "learning_rate": 0.01, "patience": 0}


@pytest.fixture(scope="module", autouse=True)
def _few_tf_threads():
    """Two threads: the test machine has two slow cores and other work runs beside it."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(2)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already started in this process (another test module)
        pass


def _spec(task, algorithm, target, features, *, options, time_column=None, group_column=None, holdout=0.2, seed=7):
    return DeepSpec(
        task=task,
        algorithm=algorithm,
        target=target,
        features=features,
        time_column=time_column,
        group_column=group_column,
        holdout=holdout,
        seed=seed,
        options=validate_keras_options(options, task, algorithm),
    )


def _table(tmp_path: Path, rows: int = 300, seed: int = 1) -> str:
    rng = np.random.default_rng(seed)
    a, b, c = rng.normal(size=(3, rows))
    frame = pd.DataFrame(
        {
            "a": a,
            "b": b * 10 + 50,  # another scale: the Normalization layer has to standardise it
            "c": c,
            "label": np.where(a + b > 0, "yes", "no"),
            "y": 100 + 30 * a - 20 * b + rng.normal(scale=2, size=rows),
        }
    )
    path = tmp_path / "table.parquet"
    frame.to_parquet(path)
    return str(path)


def _sensors(tmp_path: Path, machines: int = 3, rows: int = 150, seed: int = 2) -> str:
    """Per machine: vibration is a noisy square wave; `failing` is 1 while the clean wave is high."""
    rng = np.random.default_rng(seed)
    parts = []
    for m in range(machines):
        t = np.arange(rows)
        high = ((t + 7 * m) // 10) % 2 == 1
        parts.append(
            pd.DataFrame(
                {
                    "machine": f"M{m}",
                    "ts": pd.Timestamp("2024-01-01") + pd.to_timedelta(t, unit="h"),
                    "vibration": np.where(high, 1.0, -1.0) + rng.normal(scale=0.3, size=rows),
                    "temperature": 60 + rng.normal(scale=1.0, size=rows),
                    "failing": high.astype(int),
                    "level": 10 + 5 * np.sin(2 * np.pi * (t + 5 * m) / 25) + rng.normal(scale=0.2, size=rows),
                }
            )
        )
    frame = pd.concat(parts, ignore_index=True).sample(frac=1.0, random_state=seed)  # train() must sort by time
    path = tmp_path / "sensors.parquet"
    frame.to_parquet(path, index=False)
    return str(path)


@pytest.fixture(scope="module")
def table_path(tmp_path_factory) -> str:
    return _table(tmp_path_factory.mktemp("table"))


@pytest.fixture(scope="module")
def sensors_path(tmp_path_factory) -> str:
    return _sensors(tmp_path_factory.mktemp("sensors"))


@pytest.fixture(scope="module")
def mlp_classifier(table_path, tmp_path_factory):
    seen = []
    spec = _spec("classification", "keras_mlp", "label", ["a", "b", "c"], options={**SMALL, "units": 16, "epochs": 4})
    result = train(spec, table_path, str(tmp_path_factory.mktemp("mlp")), on_epoch=lambda epoch, logs: seen.append((epoch, logs)))
    return result, seen


# ---------------------------------------------------------------------------------------------
# Options


def test_options_get_defaults_and_only_the_keys_that_apply():
    options = validate_keras_options({"window": 24}, "sequence_classification", "keras_lstm")
    assert options["window"] == 24
    assert options["stride"] == 1 and options["epochs"] == 50 and options["device"] == "cpu"
    assert "horizon" not in options and "image_size" not in options and "filters" not in options
    assert validate_keras_options(options, "sequence_classification", "keras_lstm") == options

    cnn = validate_keras_options({"augment": True, "units": 32.0}, "image_classification", "keras_cnn2d")
    assert cnn["augment"] is True and cnn["units"] == 32 and isinstance(cnn["units"], int)
    assert cnn["image_size"] == 64 and cnn["filters"] == 32 and "window" not in cnn


def test_bad_options_name_every_field():
    with pytest.raises(TrainingError) as caught:
        validate_keras_options(
            {"window": 1, "dropout": 2, "bogus": 1, "lr_schedule": "step", "learning_rate": 0, "image_size": 32},
            "sequence_classification",
            "keras_lstm",
        )
    error = caught.value
    assert error.code == TrainingError.INVALID_SPEC
    assert set(error.fields) == {
        "keras.window",
        "keras.dropout",
        "keras.bogus",
        "keras.lr_schedule",
        "keras.learning_rate",
        "keras.image_size",
    }
    assert "2 to 2000" in error.fields["keras.window"][0]
    assert "Unknown option" in error.fields["keras.bogus"][0]
    assert "Does not apply" in error.fields["keras.image_size"][0]


def test_window_is_required_for_sequence_tasks():
    with pytest.raises(TrainingError) as caught:
        validate_keras_options({"horizon": 2}, "forecasting", "keras_gru")
    assert set(caught.value.fields) == {"keras.window"}
    assert "Required" in caught.value.fields["keras.window"][0]


@pytest.mark.parametrize(
    ("task", "algorithm"),
    [("classification", "keras_cnn2d"), ("image_classification", "keras_lstm"), ("regression", "keras_gru")],
)
def test_algorithm_that_cannot_learn_the_task_is_refused_naming_both(task, algorithm):
    with pytest.raises(TrainingError) as caught:
        validate_keras_options({}, task, algorithm)
    assert caught.value.code == TrainingError.INVALID_SPEC
    assert algorithm in caught.value.message and task in caught.value.message
    assert "algorithm" in caught.value.fields


@pytest.mark.parametrize("stride", [0, 2001, 1.5, "2", True])
def test_stride_must_be_a_whole_number_of_rows(stride):
    with pytest.raises(TrainingError) as caught:
        validate_keras_options({"window": 8, "stride": stride}, "sequence_classification", "keras_lstm")
    assert set(caught.value.fields) == {"keras.stride"}
    assert "1 to 2000" in caught.value.fields["keras.stride"][0]


@pytest.mark.parametrize(("task", "algorithm"), [("classification", "keras_mlp"), ("image_classification", "keras_cnn2d")])
def test_stride_applies_only_to_windows(task, algorithm):
    with pytest.raises(TrainingError) as caught:
        validate_keras_options({"stride": 2}, task, algorithm)
    assert "Does not apply" in caught.value.fields["keras.stride"][0]


def test_stride_steps_the_window_starts_within_each_group(sensors_path):
    """No TensorFlow: the windows are cut in numpy before any model is built."""
    options = validate_keras_options({"window": 8, "stride": 5, "horizon": 2}, "forecasting", "keras_gru")
    spec = _spec("forecasting", "keras_gru", "level", ["vibration"], options=options, time_column="ts", group_column="machine")
    data = deep._sequence_data(spec, sensors_path, options, [])
    windows = np.concatenate([data.x_train, data.x_val, data.x_test])
    # 150 rows per machine: window starts 0, 5, …, 140 (the last one leaves 8 rows + 2 ahead).
    assert len(windows) == 3 * len(range(0, 150 - 8 - 2 + 1, 5))
    frame = pd.read_parquet(sensors_path).sort_values(["machine", "ts"])
    first = frame[frame["machine"] == "M0"][["vibration", "level"]].to_numpy(dtype="float32")
    fitted = data.x_train  # M0's earliest windows come first
    np.testing.assert_array_equal(fitted[0], first[0:8])
    np.testing.assert_array_equal(fitted[1], first[5:13])
    assert data.y_train[1] == pytest.approx(first[5 + 8 - 1 + 2, 1])


def test_kernel_larger_than_the_window_is_refused():
    with pytest.raises(TrainingError) as caught:
        validate_keras_options({"window": 4, "kernel_size": 5}, "sequence_classification", "keras_cnn1d")
    assert set(caught.value.fields) == {"keras.kernel_size"}


# ---------------------------------------------------------------------------------------------
# Refusals on the data (no training happens)


def test_window_longer_than_every_group_is_bad_window(tmp_path):
    path = _sensors(tmp_path, machines=2, rows=10)
    spec = _spec(
        "sequence_classification",
        "keras_lstm",
        "failing",
        ["vibration"],
        options={"window": 20},
        time_column="ts",
        group_column="machine",
    )
    with pytest.raises(TrainingError) as caught:
        train(spec, path, str(tmp_path / "out"))
    error = caught.value
    assert error.code == TrainingError.BAD_WINDOW
    assert "window 20" in error.message and "10, 10 rows" in error.message and "'machine'" in error.message
    assert "keras.window" in error.fields
    assert not (tmp_path / "out").exists()


def test_forecast_horizon_counts_towards_the_window(tmp_path):
    path = _sensors(tmp_path, machines=1, rows=30)
    spec = _spec("forecasting", "keras_mlp", "level", ["vibration"], options={"window": 25, "horizon": 6}, time_column="ts")
    with pytest.raises(TrainingError) as caught:
        train(spec, path, str(tmp_path / "out"))
    assert caught.value.code == TrainingError.BAD_WINDOW
    assert "horizon 6" in caught.value.message and "31" in caught.value.message


def test_too_few_rows_for_the_holdout(tmp_path):
    path = _table(tmp_path, rows=8)
    spec = _spec("regression", "keras_mlp", "y", ["a", "b"], options=SMALL)
    with pytest.raises(TrainingError) as caught:
        train(spec, path, str(tmp_path / "out"))
    assert caught.value.code == TrainingError.TOO_FEW_ROWS


def test_missing_target_and_single_sample_class_are_refused(tmp_path, table_path):
    spec = _spec("classification", "keras_mlp", "nope", ["a"], options=SMALL)
    with pytest.raises(TrainingError) as caught:
        train(spec, table_path, str(tmp_path / "out"))
    assert caught.value.code == TrainingError.TARGET_MISSING and "target" in caught.value.fields

    frame = pd.read_parquet(table_path)
    frame.loc[0, "label"] = "maybe"
    frame.to_parquet(tmp_path / "odd.parquet")
    spec = _spec("classification", "keras_mlp", "label", ["a", "b"], options=SMALL)
    with pytest.raises(TrainingError) as caught:
        train(spec, str(tmp_path / "odd.parquet"), str(tmp_path / "out"))
    assert caught.value.code == TrainingError.CLASS_TOO_SMALL
    assert "'maybe'" in caught.value.message


def test_target_as_a_feature_is_refused_for_classifiers(tmp_path, sensors_path):
    spec = _spec(
        "sequence_classification", "keras_lstm", "failing", ["vibration", "failing"], options={"window": 5}, time_column="ts"
    )
    with pytest.raises(TrainingError) as caught:
        train(spec, sensors_path, str(tmp_path / "out"))
    assert caught.value.code == TrainingError.INVALID_SPEC and "features" in caught.value.fields


# ---------------------------------------------------------------------------------------------
# Training


def test_mlp_classifier_fits_and_reports_every_epoch(mlp_classifier):
    result, seen = mlp_classifier
    assert result.flavor == "keras" and result.task == "classification" and result.algorithm == "keras_mlp"
    assert os.path.isfile(result.artifact_path) and result.artifact_path.endswith("model.keras")
    assert result.metrics["accuracy"] > 0.8
    assert {"precision_macro", "recall_macro", "f1_macro", "roc_auc", "log_loss"} <= set(result.metrics)
    matrix = result.curves["confusion_matrix"]
    assert matrix["labels"] == ["no", "yes"]
    assert sum(map(sum, matrix["matrix"])) == result.holdout["rows"] == 60
    assert len(result.holdout["indices"]) == 60 and result.holdout["split"] == "stratified"
    assert [row["epoch"] for row in result.curves["epochs"]] == [1, 2, 3, 4]
    assert [epoch for epoch, _ in seen] == [1, 2, 3, 4]
    assert all(isinstance(v, float) for _, logs in seen for v in logs.values())
    assert {"loss", "val_loss", "accuracy", "val_accuracy"} <= set(seen[0][1])
    assert result.input_schema == [{"name": n, "type": "number", "nullable": False} for n in ("a", "b", "c")]
    assert result.output == {"task": "classification", "classes": ["no", "yes"]}
    assert result.params["device_used"] == "cpu" and result.params["epochs_run"] == 4
    assert set(result.packages) == {"tensorflow", "keras", "numpy"}
    # c is noise; a and b decide the label.
    assert {row["feature"] for row in result.importance[:2]} == {"a", "b"}
    assert result.warnings == []


def test_saved_classifier_predicts_what_the_holdout_measured(mlp_classifier, table_path):
    result, _ = mlp_classifier
    model = load_model(result.artifact_path)
    rows = pd.read_parquet(table_path).iloc[result.holdout["indices"]]
    out = predict(model, rows, {**result.output, "input_schema": result.input_schema})
    accuracy = float(np.mean(np.array(out["predictions"]) == rows["label"].to_numpy()))
    assert accuracy == pytest.approx(result.metrics["accuracy"])
    assert set(out["probabilities"][0]) == {"no", "yes"}
    assert all(abs(sum(p.values()) - 1) < 1e-5 for p in out["probabilities"])
    again = predict(load_model(result.artifact_path), rows, {**result.output, "input_schema": result.input_schema})
    assert again == out
    assert predict(model, rows.iloc[:0], {**result.output, "input_schema": result.input_schema}) == {
        "predictions": [],
        "probabilities": [],
    }
    with pytest.raises(ValueError, match="missing feature columns: c"):
        predict(model, rows[["a", "b"]], {**result.output, "input_schema": result.input_schema})


def test_mlp_regression_round_trip_keeps_target_units(tmp_path, table_path):
    options = {**SMALL, "units": 16, "epochs": 6, "batch_size": 16, "lr_schedule": "cosine"}
    spec = _spec("regression", "keras_mlp", "y", ["a", "b"], options=options)
    result = train(spec, table_path, str(tmp_path))
    assert {"rmse", "mae", "mape", "r2"} <= set(result.metrics)
    assert result.metrics["rmse"] < 12  # the target's spread is about 36; a constant guess scores that
    rates = [row["learning_rate"] for row in result.curves["epochs"]]
    assert rates == sorted(rates, reverse=True) and rates[-1] < rates[0] / 5  # cosine decay
    rows = pd.read_parquet(table_path).iloc[result.holdout["indices"]]
    out = predict(load_model(result.artifact_path), rows, {**result.output, "input_schema": result.input_schema})
    rmse = math.sqrt(np.mean((np.array(out["predictions"]) - rows["y"].to_numpy()) ** 2))
    assert rmse == pytest.approx(result.metrics["rmse"], rel=1e-4)
    assert "classes" not in result.output and "residuals" in result.curves


def test_lstm_learns_an_easy_sensor_signal(tmp_path, sensors_path):
    spec = _spec(
        "sequence_classification",
        "keras_lstm",
        "failing",
        ["vibration", "temperature"],
        options={**SMALL, "window": 8, "epochs": 4, "lr_schedule": "reduce_on_plateau"},
        time_column="ts",
        group_column="machine",
    )
    result = train(spec, sensors_path, str(tmp_path))
    assert result.metrics["accuracy"] >= 0.8  # balanced classes: chance is 0.5
    assert result.output == {
        "task": "sequence_classification",
        "window": 8,
        "channels": ["vibration", "temperature"],
        "target": "failing",
        "classes": [0, 1],
    }
    assert result.holdout["split"] == "time" and result.holdout["indices"] is None
    assert result.holdout["rows"] == 3 * 29  # 143 windows per machine, the last fifth of each held out
    assert result.importance[0]["feature"] == "vibration"

    frame = pd.read_parquet(sensors_path).sort_values(["machine", "ts"])
    machine = frame[frame["machine"] == "M0"]
    windows = [machine[["vibration", "temperature"]].iloc[s : s + 8].to_numpy().tolist() for s in range(100, 140)]
    out = predict(load_model(result.artifact_path), windows, result.output)
    truth = machine["failing"].to_numpy()[np.arange(100, 140) + 7]
    assert np.mean(np.array(out["predictions"]) == truth) >= 0.8
    assert set(out["probabilities"][0]) == {0, 1}
    with pytest.raises(ValueError, match="8 rows × 2 channels"):
        predict(load_model(result.artifact_path), [row[:5] for row in windows], result.output)


@pytest.mark.parametrize("algorithm", ["keras_gru", "keras_cnn1d"])
def test_gru_and_cnn1d_train_on_windows(tmp_path, sensors_path, algorithm):
    spec = _spec(
        "sequence_classification",
        algorithm,
        "failing",
        ["vibration", "temperature"],
        options={**SMALL, "window": 8, "stride": 2, "epochs": 2, **({"filters": 4} if algorithm == "keras_cnn1d" else {})},
        time_column="ts",
        group_column="machine",
    )
    result = train(spec, sensors_path, str(tmp_path))
    assert len(result.curves["epochs"]) == 2
    assert 0.0 <= result.metrics["accuracy"] <= 1.0
    assert result.holdout["rows"] == 3 * 14  # 72 windows per machine with stride 2
    assert os.path.isfile(result.artifact_path)


def test_forecasting_reports_rmse_and_uses_the_target_as_a_channel(tmp_path, sensors_path):
    spec = _spec(
        "forecasting",
        "keras_mlp",
        "level",
        ["temperature"],
        options={**SMALL, "units": 16, "window": 10, "horizon": 3, "epochs": 4},
        time_column="ts",
        group_column="machine",
    )
    result = train(spec, sensors_path, str(tmp_path))
    levels = pd.read_parquet(sensors_path)["level"]
    assert result.metrics["rmse"] < levels.std()  # better than predicting the mean
    assert {"mae", "mape", "r2"} <= set(result.metrics)
    assert result.output["channels"] == ["temperature", "level"] and result.output["horizon"] == 3
    assert result.input_schema[-1] == {"name": "level", "type": "number", "nullable": False}


def test_cnn2d_trains_on_manifest_images(tmp_path):
    images, labels = part_images(per_class=20, size=24, classes=("ok", "spot"))
    blobs, rows = {}, []
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        data = png_bytes(image)
        digest = hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        rows.append({"path": f"{label}/{i}.png", "label": label, "width": 24, "height": 24, "mode": "L", "sha256": digest})
    pd.DataFrame(rows).to_parquet(tmp_path / "manifest.parquet")
    loaded = []

    def loader(digest):
        loaded.append(digest)
        return blobs[digest]

    spec = _spec(
        "image_classification",
        "keras_cnn2d",
        "label",
        [],
        options={**SMALL, "image_size": 16, "filters": 4, "epochs": 2, "augment": True},
        holdout=0.25,
    )
    result = train(spec, str(tmp_path / "manifest.parquet"), str(tmp_path / "out"), image_loader=loader)
    assert len(loaded) == 40
    assert result.input_schema == [{"name": "image", "type": "image", "nullable": False}]
    assert result.output == {
        "task": "image_classification",
        "classes": ["ok", "spot"],
        "image_size": 16,
        "color_mode": "grayscale",
    }
    assert result.holdout["rows"] == 10 and sum(map(sum, result.curves["confusion_matrix"]["matrix"])) == 10
    assert "pillow" in result.packages

    held = [rows[i] for i in result.holdout["indices"]]
    meta = {**result.output, "input_schema": result.input_schema}
    out = predict(load_model(result.artifact_path), [blobs[r["sha256"]] for r in held], meta)
    accuracy = np.mean([p == r["label"] for p, r in zip(out["predictions"], held, strict=True)])
    assert accuracy == pytest.approx(result.metrics["accuracy"])
    with pytest.raises(ValueError, match="not a readable"):
        predict(load_model(result.artifact_path), [b"not an image"], meta)


# ---------------------------------------------------------------------------------------------
# Cancel and device


def test_stop_after_the_first_epoch_keeps_that_model(tmp_path, table_path):
    seen = []
    spec = _spec("classification", "keras_mlp", "label", ["a", "b"], options={**SMALL, "epochs": 5})
    result = train(spec, table_path, str(tmp_path), on_epoch=lambda e, logs: seen.append(e), should_stop=lambda: bool(seen))
    assert seen == [1]
    assert len(result.curves["epochs"]) == 1 and result.params["epochs_run"] == 1
    assert [w["code"] for w in result.warnings] == ["cancelled"]
    assert "1 of 5" in result.warnings[0]["message"]
    assert os.path.isfile(result.artifact_path)


def test_stop_before_any_epoch_raises_cancelled_and_writes_nothing(tmp_path, table_path):
    spec = _spec("classification", "keras_mlp", "label", ["a", "b"], options={**SMALL, "epochs": 5})
    with pytest.raises(TrainingError) as caught:
        train(spec, table_path, str(tmp_path / "out"), should_stop=lambda: True)
    assert caught.value.code == TrainingError.CANCELLED
    assert not (tmp_path / "out").exists()


def test_stop_during_the_first_epoch_raises_cancelled(tmp_path, table_path, monkeypatch):
    monkeypatch.setattr(deep.training, "STOP_POLL_SECONDS", 0.0)  # poll after every batch
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) > 1  # the first call comes before fitting

    spec = _spec("classification", "keras_mlp", "label", ["a", "b"], options={**SMALL, "epochs": 3})
    with pytest.raises(TrainingError) as caught:
        train(spec, table_path, str(tmp_path / "out"), should_stop=should_stop)
    assert caught.value.code == TrainingError.CANCELLED
    assert not (tmp_path / "out").exists()


def test_early_stopping_records_the_best_epoch(tmp_path, table_path):
    spec = _spec("classification", "keras_mlp", "label", ["a", "b"], options={**SMALL, "epochs": 3, "patience": 2})
    result = train(spec, table_path, str(tmp_path))
    losses = [row["val_loss"] for row in result.curves["epochs"]]
    assert result.params["best_epoch"] == losses.index(min(losses)) + 1


def test_same_seed_trains_the_same_model(tmp_path, table_path):
    spec = _spec("classification", "keras_mlp", "label", ["a"], options={**SMALL, "epochs": 1})
    first, second = (train(spec, table_path, str(tmp_path / name)) for name in ("one", "two"))
    assert first.curves["epochs"] == second.curves["epochs"] and first.metrics == second.metrics


def test_gpu_requested_without_a_gpu_trains_on_cpu(tmp_path, table_path):
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU is visible here")
    spec = _spec("classification", "keras_mlp", "label", ["a"], options={**SMALL, "epochs": 1, "device": "gpu"})
    result = train(spec, table_path, str(tmp_path))
    assert {"code": "cpu_fallback", "message": "No GPU was visible to this worker; trained on CPU."} in result.warnings
    assert result.params["device_used"] == "cpu" and result.params["device"] == "gpu"


def test_importing_the_engine_does_not_import_tensorflow():
    code = "import sys, models_repo.engine.deep; print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
