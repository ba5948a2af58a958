"""Quality demo data: procedurally drawn grayscale part images, OK or with a defect."""

import io
import os
import zipfile

import numpy as np
import pandas as pd

from ._png import png_bytes
from .maintenance import DEFAULT_SEED

IMAGE_CLASSES = ("ok", "scratch", "spot", "crack")
_ZIP_TIME = (2024, 1, 1, 0, 0, 0)  # fixed, so the same seed gives the same zip bytes


def _segment_distance(xx: np.ndarray, yy: np.ndarray, p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
    d = p1 - p0
    t = np.clip(((xx - p0[0]) * d[0] + (yy - p0[1]) * d[1]) / max(float(d @ d), 1e-9), 0.0, 1.0)
    return np.hypot(xx - (p0[0] + t * d[0]), yy - (p0[1] + t * d[1]))


def _draw_part(rng: np.random.Generator, size: int, defect: str) -> np.ndarray:
    s = float(size)
    yy, xx = np.mgrid[0:size, 0:size].astype(float) + 0.5
    cx, cy = s / 2 + rng.uniform(-0.06, 0.06, 2) * s
    dist = np.hypot(xx - cx, yy - cy)
    if rng.random() < 0.5:  # a disc (flange, washer)
        radius = rng.uniform(0.30, 0.42) * s
        outer = dist - radius  # signed distance to the outline, negative inside
        texture = 3.0 * np.sin(dist * rng.uniform(1.5, 2.5))  # turning marks
    else:  # a rotated plate
        theta = rng.uniform(0, np.pi)
        u = (xx - cx) * np.cos(theta) + (yy - cy) * np.sin(theta)
        v = -(xx - cx) * np.sin(theta) + (yy - cy) * np.cos(theta)
        outer = np.maximum(np.abs(u) - rng.uniform(0.30, 0.42) * s, np.abs(v) - rng.uniform(0.22, 0.34) * s)
        texture = 2.0 * np.sin(u * rng.uniform(1.0, 2.0))  # milling marks
    hole_r = rng.uniform(0.08, 0.13) * s
    part = np.clip(0.5 - outer, 0, 1) * (1 - np.clip(0.5 + hole_r - dist, 0, 1))

    light = rng.normal(0, 1, 2)
    light /= np.linalg.norm(light)
    shade = ((xx - cx) * light[0] + (yy - cy) * light[1]) / s * rng.uniform(40, 80)
    metal = rng.uniform(145, 195) + shade + texture - 30 * np.exp(np.minimum(outer, 0) / 1.5)  # darker rim
    background = rng.uniform(25, 60) + (xx / s) * rng.uniform(-10, 10)
    image = background * (1 - part) + metal * part

    # Defects land on solid metal away from the rim and the hole.
    candidates = np.flatnonzero(((outer < -0.08 * s) & (dist > hole_r + 0.06 * s)).ravel())
    k = rng.choice(candidates)
    anchor = np.array([xx.ravel()[k], yy.ravel()[k]])
    mark = np.zeros_like(image)
    if defect == "scratch":  # straight, thin, usually bright (a polished groove catches the light)
        angle = rng.uniform(0, np.pi)
        half = rng.uniform(0.15, 0.3) * s * np.array([np.cos(angle), np.sin(angle)])
        width = max(0.6, s / 48)
        mark = np.clip(1 - _segment_distance(xx, yy, anchor - half, anchor + half) / width, 0, 1)
        mark *= rng.uniform(55, 85) * (1 if rng.random() < 0.7 else -1)
    elif defect == "spot":  # an irregular dark blob (corrosion, burn mark)
        sigma = rng.uniform(1.0, 2.0) * s / 32
        for _ in range(rng.integers(1, 4)):
            c = anchor + rng.normal(0, sigma * 0.8, 2)
            mark = np.maximum(mark, np.exp(-((xx - c[0]) ** 2 + (yy - c[1]) ** 2) / (2 * (sigma * rng.uniform(0.7, 1.3)) ** 2)))
        mark *= -rng.uniform(70, 110)
    elif defect == "crack":  # a jagged dark polyline, sometimes branching
        width = max(0.5, s / 56)
        dist_min = np.full_like(image, np.inf)
        for branch in range(1 + int(rng.random() < 0.4)):
            point = anchor.copy()
            heading = rng.uniform(0, 2 * np.pi)
            for _ in range(rng.integers(5, 10) if branch == 0 else rng.integers(2, 5)):
                heading += rng.normal(0, 0.9)
                step = rng.uniform(0.04, 0.08) * s * np.array([np.cos(heading), np.sin(heading)])
                dist_min = np.minimum(dist_min, _segment_distance(xx, yy, point, point + step))
                point = point + step
        mark = -np.clip(1 - dist_min / width, 0, 1) * rng.uniform(80, 120)
    image = image + mark * part

    contrast = rng.uniform(0.85, 1.15)
    image = (image - 128) * contrast + 128 + rng.normal(0, rng.uniform(3, 7), image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def part_images(
    seed: int = DEFAULT_SEED, *, per_class: int = 60, size: int = 32, classes: tuple[str, ...] = IMAGE_CLASSES
) -> tuple[np.ndarray, np.ndarray]:
    """`per_class` images of each class as a uint8 array (n, size, size) and their labels (str array).

    A part (a disc or a rotated plate with a central hole, shaded by a random light, with turning or
    milling marks) on a dark background, either OK or with one defect: `scratch` (a thin straight
    line, usually bright), `spot` (a dark irregular blob) or `crack` (a dark jagged, sometimes
    branching line). Pixel noise, contrast and position vary. Images are grouped class by class, in
    the order of `classes`; shuffle before training. `size` is the side in pixels (28–64 suits a
    small CNN; 16–256 accepted).
    """
    if not 16 <= size <= 256:
        raise ValueError(f"size must be between 16 and 256 pixels, got {size}")
    unknown = set(classes) - set(IMAGE_CLASSES)
    if unknown:
        raise ValueError(f"unknown image classes: {sorted(unknown)}; choose from {IMAGE_CLASSES}")
    images = np.empty((per_class * len(classes), size, size), dtype=np.uint8)
    for k, name in enumerate(classes):
        rng = np.random.default_rng([seed, 3, IMAGE_CLASSES.index(name)])
        for i in range(per_class):
            images[k * per_class + i] = _draw_part(rng, size, name)
    return images, np.repeat(np.array(classes), per_class)


def write_part_images_zip(
    target: str | os.PathLike | io.IOBase,
    seed: int = DEFAULT_SEED,
    *,
    per_class: int = 60,
    size: int = 32,
    layout: str = "folders",
) -> pd.DataFrame:
    """Write the part images as PNG files into a zip at `target` (a path or a binary file object).

    `layout="folders"` puts each image in a folder named after its class (`ok/ok_0001.png`);
    `layout="labels_csv"` puts all images in `images/` and writes `labels.csv` (columns path,label).
    The zip's bytes depend only on the arguments. Returns the manifest: path, label, width, height.
    """
    if layout not in ("folders", "labels_csv"):
        raise ValueError(f"layout must be 'folders' or 'labels_csv', got {layout!r}")
    images, labels = part_images(seed, per_class=per_class, size=size)
    counters: dict[str, int] = {}
    paths = []
    for label in labels:
        counters[label] = counters.get(label, 0) + 1
        name = f"{label}_{counters[label]:04d}.png"
        paths.append(f"{label}/{name}" if layout == "folders" else f"images/{name}")
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as archive:  # PNG is compressed already
        for path, image in zip(paths, images, strict=True):
            archive.writestr(zipfile.ZipInfo(path, _ZIP_TIME), png_bytes(image))
        if layout == "labels_csv":
            rows = "".join(f"{p},{label}\n" for p, label in zip(paths, labels, strict=True))
            archive.writestr(zipfile.ZipInfo("labels.csv", _ZIP_TIME), "path,label\n" + rows)
    return pd.DataFrame({"path": paths, "label": labels, "width": size, "height": size})
