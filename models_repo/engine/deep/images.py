"""Images for image_classification: the manifest read, each file decoded (Pillow) to uint8 pixels."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np

from ..errors import TrainingError, gettext_noop, phrase
from .constants import GRAYSCALE_MODES, PROGRESS_PREPARED
from .data import (
    _assemble,
    _check_counts,
    _class_warnings,
    _Data,
    _drop_missing,
    _encode_classes,
    _random_split,
    _read_columns,
)
from .options import DeepSpec


def _image_data(
    spec: DeepSpec,
    parquet_path: str,
    options: dict,
    image_loader: Callable[[str], bytes] | None,
    should_stop: Callable[[], bool],
    progress: Callable[[int, str], None],
    warnings: list[dict[str, str]],
) -> _Data:
    import pyarrow.parquet as pq

    if image_loader is None:
        raise ValueError("image_classification needs image_loader(sha256) -> bytes")
    names = pq.read_schema(parquet_path).names
    # datalake/engine/images.py calls the sha256 of the original bytes "checksum".
    digest_column = "sha256" if "sha256" in names else "checksum" if "checksum" in names else None
    if digest_column is None:
        raise TrainingError(
            TrainingError.INVALID_SPEC,
            gettext_noop("This is not an image manifest: it has no sha256 (or checksum) column."),
            {"task": [gettext_noop("image_classification needs an image dataset.")]},
        )
    wanted = [digest_column, *(c for c in ("path", "mode") if c in names)]
    frame = _read_columns(parquet_path, spec, wanted)
    frame = _drop_missing(frame, [spec.target, digest_column], warnings)
    modes = set(frame["mode"].astype(str)) if "mode" in frame else {"RGB"}
    color = "grayscale" if modes <= GRAYSCALE_MODES else "rgb"
    _encode_classes(frame[spec.target], "image")  # refuse one class / single images before decoding all
    size = options["image_size"]

    pixels, kept, bad = [], [], []
    for i, (position, digest) in enumerate(zip(frame.index, frame[digest_column], strict=True)):
        if i % 50 == 0:
            if should_stop():
                raise TrainingError(TrainingError.CANCELLED, gettext_noop("Training was cancelled before the first epoch."))
            message = phrase(gettext_noop("Decoding images (%(done)s of %(total)s)"), done=i, total=len(frame))
            progress(int(PROGRESS_PREPARED * i / max(len(frame), 1)), message)
        try:
            pixels.append(decode_image(image_loader(digest), size, color))
            kept.append(position)
        except (OSError, ValueError) as exc:  # Pillow raises OSError subclasses for damaged files
            name = frame.at[position, "path"] if "path" in frame else digest
            bad.append(f"{name} ({exc})")
    if bad:
        warnings.append(
            {
                "code": "images_skipped",
                "message": phrase(
                    gettext_noop("%(bad)s images could not be decoded and were left out: %(names)s"),
                    bad=len(bad),
                    names="; ".join(bad[:5]),
                ),
            }
        )
    if not pixels:
        raise TrainingError(
            TrainingError.TOO_FEW_ROWS, gettext_noop("No image could be decoded."), {"holdout": [gettext_noop("No images.")]}
        )
    x = np.stack(pixels)
    positions = np.array(kept)
    y, classes = _encode_classes(frame.loc[kept, spec.target], "image")
    train, test, how = _random_split(len(x), spec.holdout, spec.seed, y)
    _check_counts(len(train), len(test), "image")
    _class_warnings(y[train], classes, warnings)
    return _assemble(
        x,
        y,
        train,
        test,
        seed=spec.seed,
        labels=y,
        input_schema=[{"name": "image", "type": "image", "nullable": False}],
        output={"task": spec.task, "classes": classes, "image_size": size, "color_mode": color},
        holdout={"rows": len(test), "indices": [int(p) for p in positions[test]], "split": how},
        classes=classes,
    )


def decode_image(data: bytes, size: int, color: str) -> np.ndarray:
    """uint8 pixels (size, size, 1 or 3) of a PNG/JPEG/BMP file, as the model was trained on them."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as opened:
        opened.load()
        image = opened
        if image.mode in ("I", "F") or image.mode.startswith("I;"):
            # 16-bit and float images: stretch min..max to 8 bits, as the ingest thumbnails do.
            values = np.asarray(image, dtype="float64")
            low, high = float(values.min()), float(values.max())
            scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
            image = Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype("uint8"), mode="L")
        image = image.convert("L" if color == "grayscale" else "RGB").resize((size, size), Image.Resampling.BILINEAR)
        array = np.asarray(image, dtype="uint8")
    return array[:, :, None] if array.ndim == 2 else array
