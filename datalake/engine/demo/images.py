"""Quality demo data: procedurally drawn grayscale part images, OK or with a defect.

The defects are drawn to be seen: at the demo's 48 px a scratch, a spot and a crack each differ
from the part's own edges, hole, turning marks and dust in brightness or in shape, so the demo's
small CNN (models_repo/demo.py, DEFECT_CNN_SPEC) can learn them from a few hundred images; the
earlier faint, small defects at 32 px left it near chance.
"""

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


def _polyline_distance(xx: np.ndarray, yy: np.ndarray, points: list[np.ndarray]) -> np.ndarray:
    dist = np.full_like(xx, np.inf)
    for p0, p1 in zip(points, points[1:], strict=False):
        dist = np.minimum(dist, _segment_distance(xx, yy, p0, p1))
    return dist


def _jagged(rng: np.random.Generator, start: np.ndarray, heading: float, steps: int, step: float) -> list[np.ndarray]:
    """The points of a jagged line: `steps` segments of about `step` pixels, kinking around `heading`."""
    points = [start]
    for _ in range(steps):
        angle = heading + rng.normal(0, 0.55)
        points.append(points[-1] + rng.uniform(0.6, 1.4) * step * np.array([np.cos(angle), np.sin(angle)]))
    return points


def _blob(xx: np.ndarray, yy: np.ndarray, centre: np.ndarray, radius: float, squash: float, angle: float) -> np.ndarray:
    """0..1: an ellipse with a soft edge, fullest in its middle."""
    u = (xx - centre[0]) * np.cos(angle) + (yy - centre[1]) * np.sin(angle)
    v = (-(xx - centre[0]) * np.sin(angle) + (yy - centre[1]) * np.cos(angle)) / squash
    return np.clip(1.3 * (1 - (np.hypot(u, v) / radius) ** 2), 0, 1)


def _defect_cover(
    rng: np.random.Generator, xx: np.ndarray, yy: np.ndarray, anchor: np.ndarray, inward: float, s: float, defect: str
):
    """How much the defect covers each pixel (0..1), and whether it shows bright (True) or dark.

    `inward` is the angle from `anchor` to the part's centre.
    """
    unit = s / 32  # the defects keep their proportions at any image size
    if defect == "scratch":  # long, straight and thin: a polished groove that catches the light
        angle = rng.uniform(0, np.pi)
        half = rng.uniform(0.15, 0.35) * s * np.array([np.cos(angle), np.sin(angle)])
        width = rng.uniform(0.7, 1.0) * unit
        return np.clip(1.2 - _segment_distance(xx, yy, anchor - half, anchor + half) / width, 0, 1), True
    if defect == "spot":  # a roundish blob (corrosion, a burn mark), mottled, sometimes with a smaller one beside
        radius = rng.uniform(0.07, 0.11) * s
        cover = _blob(xx, yy, anchor, radius, rng.uniform(0.7, 1.0), rng.uniform(0, np.pi))
        if rng.random() < 0.3:
            angle = rng.uniform(0, 2 * np.pi)
            beside = anchor + 1.3 * radius * np.array([np.cos(angle), np.sin(angle)])
            cover = np.maximum(cover, _blob(xx, yy, beside, radius * rng.uniform(0.4, 0.6), 1.0, 0.0))
        return cover * rng.uniform(0.75, 1.0, cover.shape), False
    # crack: a thin line that kinks as it goes, often with a branch or two. It runs across or
    # around the part rather than straight off its edge, where it would be cut short.
    heading = inward + rng.choice([-1, 1]) * rng.uniform(0.3, 2.0)
    trunk = _jagged(rng, anchor, heading, int(rng.integers(5, 9)), 0.07 * s)
    lines = [trunk]
    for _ in range(int(rng.integers(0, 3))):
        fork = trunk[int(rng.integers(1, len(trunk) - 1))]
        lines.append(_jagged(rng, fork, heading + rng.choice([-1, 1]) * rng.uniform(0.6, 1.2), int(rng.integers(2, 4)), 0.05 * s))
    dist = np.minimum.reduce([_polyline_distance(xx, yy, line) for line in lines])
    return np.clip(1.2 - dist / (rng.uniform(0.6, 0.85) * unit), 0, 1), False


def _draw_part(rng: np.random.Generator, size: int, defect: str) -> np.ndarray:
    s = float(size)
    yy, xx = np.mgrid[0:size, 0:size].astype(float) + 0.5
    cx, cy = s / 2 + rng.uniform(-0.06, 0.06, 2) * s
    dist = np.hypot(xx - cx, yy - cy)
    if rng.random() < 0.5:  # a disc (flange, washer)
        radius = rng.uniform(0.32, 0.42) * s
        outer = dist - radius  # signed distance to the outline, negative inside
        texture = 3.0 * np.sin(dist * rng.uniform(1.5, 2.5))  # turning marks
    else:  # a rotated plate
        theta = rng.uniform(0, np.pi)
        u = (xx - cx) * np.cos(theta) + (yy - cy) * np.sin(theta)
        v = -(xx - cx) * np.sin(theta) + (yy - cy) * np.cos(theta)
        outer = np.maximum(np.abs(u) - rng.uniform(0.30, 0.40) * s, np.abs(v) - rng.uniform(0.24, 0.33) * s)
        texture = 2.0 * np.sin(u * rng.uniform(1.0, 2.0))  # milling marks
    hole_r = rng.uniform(0.08, 0.12) * s
    part = np.clip(0.5 - outer, 0, 1) * (1 - np.clip(0.5 + hole_r - dist, 0, 1))

    # A mid-grey conveyor belt shows around the part and through its hole: darker than the metal,
    # lighter than a spot or a crack, so the hole does not look like a defect.
    belt = rng.uniform(85, 115) + (xx / s) * rng.uniform(-10, 10) + 2.0 * np.sin(yy * rng.uniform(2.0, 3.0))
    light = rng.normal(0, 1, 2)
    light /= np.linalg.norm(light)
    shade = ((xx - cx) * light[0] + (yy - cy) * light[1]) / s * rng.uniform(30, 60)
    metal = rng.uniform(155, 190) + shade + texture - 25 * np.exp(np.minimum(outer, 0) / 1.5)  # darker rim
    inside = np.flatnonzero((outer < -0.03 * s).ravel())
    for k in rng.choice(inside, int(rng.integers(0, 4))):  # specks of dust on any part, defective or not
        speck = np.exp(-((xx - xx.ravel()[k]) ** 2 + (yy - yy.ravel()[k]) ** 2) / (2 * (0.4 * s / 32) ** 2))
        metal = metal + speck * rng.uniform(10, 25) * rng.choice([-1, 1])

    # Defects land on solid metal away from the rim and the hole. A bright one is lighter than the
    # metal around it; a dark one (the gap of a crack, a pit) is darker than the belt.
    candidates = np.flatnonzero(((outer < -0.07 * s) & (dist > hole_r + 0.08 * s)).ravel())
    k = rng.choice(candidates)
    anchor = np.array([xx.ravel()[k], yy.ravel()[k]])
    if defect != "ok":
        cover, bright = _defect_cover(rng, xx, yy, anchor, np.arctan2(cy - anchor[1], cx - anchor[0]), s, defect)
        target = metal + rng.uniform(50, 80) if bright else rng.uniform(30, 65)
        metal = metal * (1 - cover) + target * cover
    image = belt * (1 - part) + metal * part

    contrast = rng.uniform(0.85, 1.15)
    image = (image - 128) * contrast + 128 + rng.normal(0, rng.uniform(3, 7), image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def part_images(
    seed: int = DEFAULT_SEED, *, per_class: int = 100, size: int = 48, classes: tuple[str, ...] = IMAGE_CLASSES
) -> tuple[np.ndarray, np.ndarray]:
    """`per_class` images of each class as a uint8 array (n, size, size) and their labels (str array).

    A part (a disc or a rotated plate with a central hole, shaded by a random light, with turning or
    milling marks and a few specks of dust) on a mid-grey conveyor belt, either OK or with one
    defect: `scratch` (a long, thin, straight line, brighter than the metal), `spot` (a roundish
    dark mottled blob, sometimes with a smaller one beside it) or `crack` (a thin dark line that
    kinks as it goes, often branching). Position, orientation and size of part and defect, light,
    contrast and pixel noise vary. Images are grouped class by class, in the order of `classes`;
    shuffle before training. `size` is the side in pixels (the defects keep their proportions;
    48–64 suits a small CNN; 16–256 accepted).
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
    per_class: int = 100,
    size: int = 48,
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
