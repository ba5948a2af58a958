"""The Keras networks: MLP, LSTM/GRU, 1D-CNN and 2D-CNN, with their normalisation and output layers.

`keras` is passed in by the training loop: nothing here imports TensorFlow.
"""

from __future__ import annotations

from .constants import MAX_FILTERS
from .data import _Data
from .options import DeepSpec


def _build_model(keras, spec: DeepSpec, options: dict, data: _Data):
    layers = keras.layers
    blocks, units, dropout = options["layers"], options["units"], options["dropout"]
    algorithm = spec.algorithm
    if algorithm == "keras_cnn2d":
        inputs = keras.Input(shape=data.x_train.shape[1:], dtype="uint8", name="image")
        x = layers.Rescaling(1.0 / 255, name="to_unit_range")(inputs)
        if options["augment"]:  # preprocessing layers that only act while training
            x = layers.RandomFlip("horizontal_and_vertical", seed=spec.seed)(x)
            x = layers.RandomRotation(0.1, seed=spec.seed)(x)
            x = layers.RandomZoom(0.1, seed=spec.seed)(x)
        for i in range(blocks):
            x = layers.Conv2D(
                min(options["filters"] * 2**i, MAX_FILTERS), options["kernel_size"], padding="same", activation="relu"
            )(x)
            x = layers.MaxPooling2D(2, padding="same")(x)
        # Max, not average: a defect is small and anywhere; its strongest response should count.
        x = layers.GlobalMaxPooling2D()(x)
    else:
        inputs = keras.Input(shape=data.x_train.shape[1:], name="window" if data.x_train.ndim == 3 else "features")
        normalise = layers.Normalization(axis=-1, name="standardise")
        normalise.adapt(data.x_train)
        x = normalise(inputs)
        if algorithm == "keras_mlp":
            if data.x_train.ndim == 3:
                x = layers.Flatten()(x)
            for _ in range(blocks):
                x = layers.Dense(units, activation="relu")(x)
                if dropout:
                    x = layers.Dropout(dropout)(x)
        elif algorithm in ("keras_lstm", "keras_gru"):
            recurrent = layers.LSTM if algorithm == "keras_lstm" else layers.GRU
            for i in range(blocks):
                # Dropout between layers, not recurrent_dropout, which would rule out the cuDNN kernel.
                x = recurrent(units, return_sequences=i < blocks - 1)(x)
                if dropout:
                    x = layers.Dropout(dropout)(x)
        else:  # keras_cnn1d
            for i in range(blocks):
                x = layers.Conv1D(
                    min(options["filters"] * 2**i, MAX_FILTERS), options["kernel_size"], padding="same", activation="relu"
                )(x)
                x = layers.MaxPooling1D(2, padding="same")(x)
            x = layers.GlobalAveragePooling1D()(x)
    if algorithm in ("keras_cnn1d", "keras_cnn2d"):
        x = layers.Dense(units, activation="relu")(x)
        if dropout:
            x = layers.Dropout(dropout)(x)
    if data.classes is not None:
        outputs = layers.Dense(len(data.classes), activation="softmax", name="probabilities")(x)
    else:
        # The network learns the standardised target; Rescaling returns target units, so the loss,
        # the metrics and the saved model all speak in them (Adam does not mind the scale).
        z = layers.Dense(1, name="standardised")(x)
        outputs = layers.Rescaling(scale=data.y_std, offset=data.y_mean, name="prediction")(z)
    return keras.Model(inputs, outputs, name=f"lepton_{algorithm}")
