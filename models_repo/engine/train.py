"""One entry point for every training: parse the spec, then scikit-learn or Keras.

    result = train(spec_dict, columns, parquet_path, out_dir, progress=…, should_stop=…,
                   on_epoch=…, image_loader=…)

`columns` maps the dataset version's column names to their duckdb types (the version's
schema); the services pass the version's Parquet with those names.
"""

from __future__ import annotations

from models_repo.engine.result import TrainResult
from models_repo.engine.spec import TrainingSpec, parse_spec


def train(
    raw_spec: dict,
    columns: dict[str, str],
    parquet_path: str,
    out_dir: str,
    *,
    progress=lambda pct, msg: None,
    should_stop=lambda: False,
    on_epoch=lambda epoch, logs: None,
    image_loader=None,
) -> TrainResult:
    spec = parse_spec(raw_spec, columns)
    if spec.flavor == "keras":
        from models_repo.engine import deep

        return deep.train(
            deep_spec(spec),
            parquet_path,
            out_dir,
            progress=progress,
            should_stop=should_stop,
            on_epoch=on_epoch,
            image_loader=image_loader,
        )
    from models_repo.engine import tabular

    return tabular.train(spec, parquet_path, out_dir, progress=progress, should_stop=should_stop)


def deep_spec(spec: TrainingSpec):
    """The Keras engine's input from a parsed spec (one Keras algorithm per run)."""
    from models_repo.engine import deep

    name = spec.algorithms[0].name
    return deep.DeepSpec(
        task=spec.task,
        algorithm=name,
        target=spec.target,
        features=list(spec.features),
        time_column=spec.time_column,
        group_column=spec.group_column,
        holdout=spec.holdout,
        seed=spec.seed,
        options=deep.validate_keras_options(dict(spec.keras or {}), spec.task, name),
    )
