"""Turn an uploaded zip of labelled part images into a manifest Parquet and content-addressed blobs.

    result = ingest_images("parts.zip", "manifest.parquet", storage.put, ImageOptions())

Each usable image is handed to `put_blob` twice: its original bytes (the manifest's `checksum`
is their sha256) and a PNG thumbnail (`thumbnail`). The manifest has one row per image, ordered
by label then path, and reads like any other table of the data lake (field metadata
`lepton.name`, as datalake/engine/ingest.py writes), so profile, preview and SQL need nothing new.

Decisions (tests/datalake/test_images.py pins them):
- Layout. A labels CSV at the top of the zip (the root, or the one folder everything is in),
  or the one named by `labels_file`, makes the layout `labels_csv`; otherwise it is `folders`
  and the class is the first folder below the common top folders (`parts/ok/1.png` → `ok`),
  which are stripped as long as a folder remains below them. A detected CSV without path and
  label columns is ignored with a warning when class folders work; otherwise it is refused.
- Members are read one at a time and each image is decoded alone, so memory follows the
  largest image, not the zip. The manifest is written in row groups of WRITE_ROWS rows.
- Zip bombs: the declared sizes must add up to at most `max_decompressed_bytes`, and each
  member is inflated up to one byte past its declared size; a member that yields that byte is
  refused (`decompressed_too_large`). An image declared over `max_image_bytes` is never read.
- A bad file (not an image, damaged or truncated, an unsupported format, too large, too many
  pixels, not in a class folder, not in the labels CSV, ...) refuses the upload (`bad_images`,
  listing them) unless `skip_bad_files`. After the first bad file of a refused upload nothing
  more goes to `put_blob`; blobs stored before it belong to no version, and purge treats
  them as any unreferenced blob.
- Pixels are checked from the header before decoding; Pillow's own bomb limit
  (Image.MAX_IMAGE_PIXELS, a process-wide setting we leave alone) also applies, the stricter wins.
- Thumbnails are for people: grayscale stays L, palette becomes RGB(A), CMYK and other colour
  spaces become RGB, 16-bit and float images are stretched min..max to 8-bit L. EXIF
  orientation is not applied, so the thumbnail shows the pixels the trainer reads.
- Names without the zip's UTF-8 flag are tried as UTF-8, then GB18030 (Windows zips of Chinese
  folder names), then cp437; names are NFC-normalised and use '/'.
- Same zip, same options → the same manifest bytes (sorted rows, fixed row groups).
- The manifest is written to a temporary name beside `manifest_path` and renamed into place;
  on any error nothing is left at `manifest_path`.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import os
import unicodedata
import uuid
import warnings
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, UnidentifiedImageError

from . import sniff
from .errors import IngestError, gettext_noop, joined, ngettext, phrase
from .ingest import _sha256, _too_large
from .types import GB, MB, ColumnInfo

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
# Readable by Pillow but not accepted: they count as images for finding class folders, and are
# reported as "unsupported format" (the trainer reads PNG, JPEG and BMP only).
OTHER_IMAGE_EXTENSIONS = (".gif", ".tif", ".tiff", ".webp")
ACCEPTED_FORMATS = ("PNG", "JPEG", "BMP")
IGNORED_NAMES = {".ds_store", "thumbs.db", "desktop.ini"}
PATH_COLUMNS = ("path", "file", "filename", "file_name", "image", "image_path", "img", "路径", "文件名", "文件", "图片", "图像")
LABEL_COLUMNS = ("label", "class", "category", "标签", "类别", "分类", "类")
MAX_LABELS_BYTES = 64 * MB
FILES_IN_ERROR = 50
FILES_IN_RESULT = 200
FILES_IN_MESSAGE = 5
MAX_SIZES = 50
WRITE_ROWS = 16_384
UTF8_FLAG = 0x800
ENCRYPTED_FLAG = 0x1

# (column, Arrow type, logical type); the order is the manifest's column order.
MANIFEST_COLUMNS = (
    ("path", pa.string(), "string"),
    ("label", pa.string(), "string"),
    ("width", pa.int32(), "int"),
    ("height", pa.int32(), "int"),
    ("mode", pa.string(), "string"),
    ("format", pa.string(), "string"),
    ("bytes", pa.int64(), "int"),
    ("checksum", pa.string(), "string"),
    ("thumbnail", pa.string(), "string"),
)


@dataclass(frozen=True)
class ImageOptions:
    """What the uploader chose, and the limits that keep one upload from exhausting the worker."""

    skip_bad_files: bool = False  # False: refuse the upload listing bad files; True: skip and report them
    labels_file: str | None = None  # member name of the labels CSV; None: detect it
    max_files: int = 200_000
    max_image_bytes: int = 50 * MB
    max_pixels: int = 40_000_000  # per image
    max_decompressed_bytes: int = 20 * GB
    thumbnail_px: int = 96  # longest side of the stored PNG thumbnail
    # Called with (members done, members total) about a hundred times per upload.
    progress: Callable[[int, int], None] | None = None


@dataclass(frozen=True)
class ImageIngestResult:
    columns: list[ColumnInfo]
    rows: int
    bytes: int  # size of the written manifest
    sha256: str  # of the written manifest
    source_bytes: int
    layout: str  # "folders" or "labels_csv"
    format: str = "images"
    classes: dict[str, int] = field(default_factory=dict)  # label -> images, sorted by label
    sizes: dict[str, int] = field(default_factory=dict)  # "WxH" -> images, 50 most common, then "other"
    modes: dict[str, int] = field(default_factory=dict)  # Pillow mode -> images
    formats: dict[str, int] = field(default_factory=dict)  # "PNG", "JPEG", "BMP" -> images
    blobs: list[str] = field(default_factory=list)  # every distinct sha256 handed to put_blob
    blob_bytes: int = 0  # total size of those blobs
    skipped: list[dict] = field(default_factory=list)  # [{"path", "reason"}], the first 200
    skipped_count: int = 0
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Member:
    info: zipfile.ZipInfo
    path: str  # normalised: NFC, '/', no leading '/' or './'
    parts: tuple[str, ...]
    label: str | None = None
    problem: str | None = None  # why it cannot be used whatever its pixels (set while planning)

    @property
    def ext(self) -> str:
        return os.path.splitext(self.path)[1].lower()


@dataclass
class _Plan:
    layout: str
    members: list[_Member]  # everything to read (the labels CSV excluded)
    missing: list[dict]  # labels CSV rows naming files the zip lacks
    warnings: list[str]


def is_image_archive(path: str | os.PathLike) -> bool:
    """True when `path` is a zip whose members are (apart from ignorable files and one CSV) mostly
    images, judged by names (.png .jpg .jpeg .bmp, case-insensitive): reads only the central directory."""
    try:
        with open(path, "rb") as f:
            if f.read(2) != b"PK":
                return False
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (OSError, ValueError, zipfile.BadZipFile):
        return False
    images = csvs = others = 0
    for info in infos:
        name = _member_name(info)
        if info.is_dir() or name.endswith("/"):
            continue
        path_, _ = _normalise(name)
        if _ignored(path_):
            continue
        ext = os.path.splitext(path_)[1].lower()
        if ext in IMAGE_EXTENSIONS:
            images += 1
        elif ext == ".csv":
            csvs += 1
        else:
            others += 1
    return images > others + max(csvs - 1, 0)


def ingest_images(
    zip_path: str | os.PathLike,
    manifest_path: str | os.PathLike,
    put_blob: Callable[[bytes], str],
    options: ImageOptions | None = None,
) -> ImageIngestResult:
    """Store the images of `zip_path` through `put_blob` and write their manifest at `manifest_path`.

    `put_blob(data)` stores bytes content-addressed and returns their sha256 hex. Raises
    IngestError for bad input; then nothing exists at `manifest_path` that was not there before.
    """
    options = options or ImageOptions()
    zip_path, manifest_path = os.fspath(zip_path), os.fspath(manifest_path)
    dest_dir = os.path.dirname(os.path.abspath(manifest_path))
    os.makedirs(dest_dir, exist_ok=True)
    source_bytes = os.path.getsize(zip_path)
    with _open_zip(zip_path) as archive:
        plan = _plan(archive, _list_members(archive, options), options)
        tmp = os.path.join(dest_dir, f".{os.path.basename(manifest_path)}.{uuid.uuid4().hex}.tmp")
        try:
            result = _ingest(archive, plan, tmp, put_blob, options)
            digest, size = _sha256(tmp)
            os.replace(tmp, manifest_path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return ImageIngestResult(bytes=size, sha256=digest, source_bytes=source_bytes, layout=plan.layout, **result)


# --- the zip and its names ----------------------------------------------------------------


def _open_zip(path: str) -> zipfile.ZipFile:
    with open(path, "rb") as f:
        head = f.read(4)
    if not head.startswith(b"PK"):
        raise IngestError(IngestError.ARCHIVE, gettext_noop("The file is not a zip archive; upload the images as one .zip file."))
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise IngestError(
            IngestError.ARCHIVE, phrase(gettext_noop("The zip file is damaged and cannot be opened (%(error)s)."), error=str(e))
        ) from None


def _member_name(info: zipfile.ZipInfo) -> str:
    """The member's name as its author wrote it (zipfile reads unflagged names as cp437)."""
    if info.flag_bits & UTF8_FLAG:
        return info.orig_filename
    raw = info.orig_filename.encode("cp437")  # cp437 maps every byte, so this gives back the raw name
    for encoding in ("utf-8", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return info.orig_filename


def _normalise(name: str) -> tuple[str, bool]:
    """(path with '/', no empty or '.' parts, NFC; whether it climbs out with '..')."""
    parts = [p for p in unicodedata.normalize("NFC", name).replace("\\", "/").split("/") if p not in ("", ".")]
    return "/".join(parts), ".." in parts


def _ignored(path: str) -> bool:
    parts = path.split("/")
    name = parts[-1].lower()
    return "__MACOSX" in parts or name in IGNORED_NAMES or name.startswith("._")


def _list_members(archive: zipfile.ZipFile, options: ImageOptions) -> list[_Member]:
    members: list[_Member] = []
    seen: set[str] = set()
    declared = 0
    for info in archive.infolist():
        name = _member_name(info)
        if info.is_dir() or name.endswith(("/", "\\")):
            continue
        path, unsafe = _normalise(name)
        if not path or _ignored(path):
            continue
        if info.flag_bits & ENCRYPTED_FLAG:
            raise IngestError(IngestError.ARCHIVE, gettext_noop("The zip is password-protected; upload it without a password."))
        declared += info.file_size
        member = _Member(info=info, path=path, parts=tuple(path.split("/")))
        if unsafe:
            member.problem = gettext_noop("its path climbs out of the zip with '..'")
        elif path in seen:
            member.problem = gettext_noop("appears twice in the zip")
        seen.add(path)
        members.append(member)
    if declared > options.max_decompressed_bytes:
        raise _too_large(options.max_decompressed_bytes)
    return members


def _read_member(archive: zipfile.ZipFile, member: _Member) -> bytes | str:
    """The member's bytes, or why it cannot be read; a member inflating past its declared size is refused."""
    declared = member.info.file_size
    probe = copy.copy(member.info)
    # zipfile stops inflating at the declared size (and then fails on the CRC, which hides the
    # cause); with room beyond it, reading one byte more than declared shows a lying header.
    # Each read inflates at most what it asks for (or 4 KB), so the room is never filled.
    probe.file_size = declared + MB
    try:
        with archive.open(probe) as f:
            data = f.read(declared + 1)
    except NotImplementedError as e:
        return phrase(gettext_noop("compressed with a method that is not supported (%(error)s)"), error=str(e))
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as e:
        return phrase(gettext_noop("damaged inside the zip (%(error)s)"), error=str(e))
    if len(data) > declared:
        raise IngestError(
            IngestError.TOO_LARGE,
            phrase(
                gettext_noop(
                    "'%(path)s' expands beyond the %(declared)s bytes the zip declares for it; the archive is damaged "
                    "or built to exhaust memory (a zip bomb)."
                ),
                path=member.path,
                declared=f"{declared:,}",
            ),
            {"path": member.path, "declared": declared},
        )
    return data


# --- layout and labels --------------------------------------------------------------------


def _plan(archive: zipfile.ZipFile, members: list[_Member], options: ImageOptions) -> _Plan:
    if not any(m.ext in IMAGE_EXTENSIONS for m in members):
        others = sorted({m.ext for m in members if m.ext in OTHER_IMAGE_EXTENSIONS})
        if others:
            message = phrase(
                gettext_noop("The zip holds no PNG, JPEG or BMP images (it has %(kinds)s files; convert them)."),
                kinds=", ".join(others),
            )
        else:
            message = gettext_noop("The zip holds no PNG, JPEG or BMP images.")
        raise IngestError(IngestError.NO_IMAGES, message)
    labels_member = _labels_member(members, options)
    readable = [m for m in members if m is not labels_member]
    if len(readable) > options.max_files:
        raise IngestError(
            IngestError.TOO_MANY_FILES,
            phrase(
                gettext_noop("The zip holds %(files)s files; at most %(limit)s are allowed in one upload. Split it."),
                files=f"{len(readable):,}",
                limit=f"{options.max_files:,}",
            ),
            {"files": len(readable), "limit": options.max_files},
        )
    warnings_: list = []
    if labels_member is None:
        _folder_labels(readable, warnings_, strict=True)
        plan = _Plan("folders", readable, [], warnings_)
    else:
        try:
            missing = _csv_labels(archive, labels_member, readable, warnings_)
            plan = _Plan("labels_csv", readable, missing, warnings_)
        except _NoColumns as refusal:
            if options.labels_file is not None:
                raise refusal.error from None
            _folder_labels(readable, warnings_, strict=False)
            if len({m.label for m in readable if m.label is not None}) < 2:
                raise refusal.error from None
            warnings_.insert(
                0,
                phrase(
                    gettext_noop(
                        "'%(file)s' has no path and label columns, so it was ignored; the class folders give the labels."
                    ),
                    file=labels_member.path,
                ),
            )
            plan = _Plan("folders", readable, [], warnings_)
    labels = sorted({m.label for m in plan.members if m.label is not None and m.problem is None})
    if len(labels) == 1:
        raise _single_class(labels[0], plan.layout)
    return plan


def _labels_member(members: list[_Member], options: ImageOptions) -> _Member | None:
    csvs = [m for m in members if m.ext == ".csv" and m.problem is None]
    if options.labels_file is not None:
        wanted, _ = _normalise(options.labels_file)
        found = [m for m in csvs if m.path == wanted] or [m for m in csvs if m.parts[-1] == wanted]
        if len(found) != 1:
            listed = ", ".join(m.path for m in csvs[:10]) or gettext_noop("none")
            raise IngestError(
                IngestError.BAD_LABELS,
                phrase(
                    gettext_noop("The zip has no single labels file '%(file)s'; its CSV files are: %(files)s."),
                    file=options.labels_file,
                    files=listed,
                ),
                {"csv_files": [m.path for m in csvs]},
            )
        return found[0]
    firsts = {m.parts[0] for m in members}
    common = next(iter(firsts)) if len(firsts) == 1 and all(len(m.parts) > 1 for m in members) else None
    top = [m for m in csvs if len(m.parts) == 1 or (len(m.parts) == 2 and m.parts[0] == common)]
    named = [m for m in top if m.parts[-1].lower() == "labels.csv"]
    if len(named) == 1:
        return named[0]
    if len(top) > 1:
        raise IngestError(
            IngestError.BAD_LABELS,
            phrase(
                gettext_noop(
                    "The zip has several CSV files at the top (%(files)s); name the labels file, or keep only labels.csv."
                ),
                files=", ".join(m.path for m in top[:10]),
            ),
            {"csv_files": [m.path for m in top]},
        )
    return top[0] if top else None


def _common_root(paths: list[tuple[str, ...]]) -> tuple[str, ...]:
    """Leading folders shared by every path, kept only while a class folder and a file remain below."""
    root: tuple[str, ...] = ()
    while paths and all(len(p) >= len(root) + 3 for p in paths):
        firsts = {p[len(root)] for p in paths}
        if len(firsts) != 1:
            break
        root += (firsts.pop(),)
    return root


def _folder_labels(members: list[_Member], warnings_: list[str], strict: bool) -> None:
    image_like = IMAGE_EXTENSIONS + OTHER_IMAGE_EXTENSIONS
    root = _common_root([m.parts for m in members if m.ext in image_like])
    nested = 0
    for m in members:
        rel = m.parts[len(root) :] if m.parts[: len(root)] == root else ()
        if len(rel) < 2:
            m.problem = m.problem or gettext_noop("not in a class folder")
            continue
        m.label = rel[0]
        nested += len(rel) > 2 and m.ext in image_like
    if strict and not any(m.label is not None for m in members if m.ext in image_like):
        raise IngestError(
            IngestError.NO_LABELS,
            gettext_noop(
                "The images are not sorted into class folders and the zip has no labels file. Put each class in its own "
                "folder (ok/1.png, scratch/2.png, ...) or add labels.csv with the columns path,label."
            ),
        )
    if root:
        warnings_.append(
            phrase(gettext_noop("Everything is inside '%(folder)s/'; the class is the folder below it."), folder="/".join(root))
        )
    if nested:
        warnings_.append(
            phrase(
                gettext_noop(
                    "%(count)s images are in subfolders of their class folder; the class is the first folder "
                    "below the top (e.g. '%(example)s' is class 'ok')."
                ),
                count=f"{nested:,}",
                example="/".join(root + ("ok", "batch1", "1.png")),
            )
        )


class _NoColumns(Exception):
    def __init__(self, error: IngestError):
        self.error = error


def _decode_labels(data: bytes, name: str) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise IngestError(
        IngestError.BAD_LABELS,
        phrase(gettext_noop("'%(file)s' is neither UTF-8 nor GB18030 (GBK) text; save it as UTF-8 CSV."), file=name),
    )


def _find_column(header: list[str], names: tuple[str, ...]) -> int | None:
    cleaned = [h.strip().lower() for h in header]
    for wanted in names:
        if wanted in cleaned:
            return cleaned.index(wanted)
    return None


def _csv_labels(archive: zipfile.ZipFile, labels: _Member, members: list[_Member], warnings_: list[str]) -> list[dict]:
    """Label `members` from the labels CSV; return its rows naming files the zip lacks (as bad files)."""
    name = labels.path
    if labels.info.file_size > MAX_LABELS_BYTES:
        raise IngestError(
            IngestError.BAD_LABELS,
            phrase(gettext_noop("'%(file)s' is larger than %(limit)s bytes."), file=name, limit=f"{MAX_LABELS_BYTES:,}"),
        )
    data = _read_member(archive, labels)
    if isinstance(data, str):
        raise IngestError(
            IngestError.BAD_LABELS, phrase(gettext_noop("'%(file)s' cannot be read: %(reason)s."), file=name, reason=data)
        )
    text = _decode_labels(data, name)
    del data
    try:
        reader = csv.reader(io.StringIO(text), delimiter=sniff.sniff_delimiter(text[:65536]))
        header = next(reader, None) or []
        path_col, label_col = _find_column(header, PATH_COLUMNS), _find_column(header, LABEL_COLUMNS)
        if path_col is None or label_col is None:
            raise _NoColumns(
                IngestError(
                    IngestError.BAD_LABELS,
                    phrase(
                        gettext_noop(
                            "'%(file)s' needs a column naming the image (path, file, filename, image, 文件名, 路径) and one "
                            "naming its class (label, class, 标签, 类别); its header is: %(header)s."
                        ),
                        file=name,
                        header=", ".join(header) or gettext_noop("(empty)"),
                    ),
                    {"header": header},
                )
            )
        by_path = {m.path: m for m in members if m.problem is None}
        folder = "/".join(labels.parts[:-1])
        by_basename: dict[str, list[_Member]] | None = None
        missing: list[dict] = []
        by_name = 0
        for line, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue
            raw = row[path_col].strip() if path_col < len(row) else ""
            label = row[label_col].strip() if label_col < len(row) else ""
            key, _ = _normalise(raw)
            if not key:
                missing.append(
                    {
                        "path": phrase(gettext_noop("%(file)s line %(line)s"), file=name, line=line),
                        "reason": gettext_noop("the row names no file"),
                    }
                )
                continue
            member = by_path.get(key) or (by_path.get(f"{folder}/{key}") if folder else None)
            if member is None:
                if by_basename is None:
                    by_basename = {}
                    for m in by_path.values():
                        by_basename.setdefault(m.parts[-1], []).append(m)
                found = by_basename.get(key.split("/")[-1], [])
                if len(found) == 1:
                    member, by_name = found[0], by_name + 1
            if member is None:
                reason = phrase(gettext_noop("listed in %(file)s (line %(line)s) but not in the zip"), file=name, line=line)
                missing.append({"path": key, "reason": reason})
            elif not label:
                member.problem = phrase(gettext_noop("has no label in %(file)s (line %(line)s)"), file=name, line=line)
            elif member.label is not None and member.label != label:
                member.problem = phrase(
                    gettext_noop("has two labels in %(file)s ('%(first)s' and '%(second)s')"),
                    file=name,
                    first=member.label,
                    second=label,
                )
            else:
                member.label = label
    except csv.Error as e:
        raise IngestError(
            IngestError.BAD_LABELS, phrase(gettext_noop("'%(file)s' cannot be read as CSV (%(error)s)."), file=name, error=str(e))
        ) from None
    for m in members:
        if m.label is None and m.problem is None:
            m.problem = phrase(gettext_noop("not listed in %(file)s"), file=name)
    if by_name:
        warnings_.append(
            phrase(
                gettext_noop("%(count)s rows of %(file)s name a file without its folder; they were matched by file name."),
                count=f"{by_name:,}",
                file=name,
            )
        )
    return missing


def _single_class(label: str, layout: str) -> IngestError:
    how = (
        gettext_noop("put each class in its own folder (ok/..., scratch/...)")
        if layout == "folders"
        else gettext_noop("give the images their classes in the labels file")
    )
    return IngestError(
        IngestError.SINGLE_CLASS,
        phrase(
            gettext_noop("Every image has the class '%(label)s'; a classifier needs two or more classes: %(how)s."),
            label=label,
            how=how,
        ),
        {"label": label},
    )


# --- images -------------------------------------------------------------------------------


def _decode(data: bytes, options: ImageOptions) -> Image.Image | str:
    """The fully loaded image, or why it cannot be used."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                if probe.format not in ACCEPTED_FORMATS:
                    return phrase(gettext_noop("unsupported format %(format)s"), format=probe.format)
                width, height = probe.size
                if width * height > options.max_pixels:
                    return phrase(
                        gettext_noop("%(size)s is %(pixels)s pixels, more than the limit of %(limit)s"),
                        size=f"{width}x{height}",
                        pixels=f"{width * height:,}",
                        limit=f"{options.max_pixels:,}",
                    )
                probe.verify()  # PNG chunk checksums; does not decode, so load() below catches truncation
            image = Image.open(io.BytesIO(data))
            image.load()
            return image
    except Image.DecompressionBombError:
        return phrase(
            gettext_noop("more pixels than the limit of %(limit)s (a decompression bomb)"), limit=f"{options.max_pixels:,}"
        )
    except UnidentifiedImageError:
        return gettext_noop("not an image (PNG, JPEG or BMP)")
    except MemoryError:
        raise
    except Exception as e:  # Pillow raises many types on damaged data (OSError, SyntaxError, ValueError, ...)
        return phrase(gettext_noop("damaged or truncated image (%(error)s)"), error=str(e))


def _displayable(image: Image.Image, px: int) -> Image.Image:
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return image
    if mode == "1":
        return image.convert("L")
    if mode in ("P", "PA"):
        return image.convert("RGBA" if mode == "PA" or "transparency" in image.info else "RGB")
    if mode.startswith("I") or mode == "F":
        pixels = np.asarray(image)
        step = max(1, max(pixels.shape[:2]) // (4 * px))  # subsample first: a float copy of 40 Mpx is 160 MB
        pixels = pixels[::step, ::step].astype(np.float32)
        low, high = float(pixels.min()), float(pixels.max())
        scaled = (pixels - low) * (255.0 / (high - low)) if high > low else np.zeros_like(pixels)
        return Image.fromarray(np.rint(scaled).astype(np.uint8), "L")
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX, ...


def _thumbnail(image: Image.Image, px: int) -> bytes:
    """A PNG of at most px × px; shrinks `image` itself when its mode is shown as is."""
    shown = _displayable(image, px)
    shown.thumbnail((px, px), Image.Resampling.LANCZOS)  # keeps the aspect ratio, never enlarges
    out = io.BytesIO()
    shown.save(out, "PNG")
    return out.getvalue()


def _schema() -> pa.Schema:
    fields = [pa.field(name, t, metadata={"lepton.name": name}) for name, t, _ in MANIFEST_COLUMNS]
    meta = {
        "lepton.columns": json.dumps([{"name": n, "identifier": n} for n, _, _ in MANIFEST_COLUMNS]),
        "lepton.format": "images",
    }
    return pa.schema(fields, metadata=meta)


def _ingest(archive: zipfile.ZipFile, plan: _Plan, tmp: str, put_blob: Callable[[bytes], str], options: ImageOptions) -> dict:
    """Read every member in manifest order, store the good ones, write the manifest at `tmp`."""
    skip = options.skip_bad_files
    order = sorted(plan.members, key=lambda m: (m.label is None or m.problem is not None, m.label or "", m.path))
    schema = _schema()
    columns: dict[str, list] = {name: [] for name, _, _ in MANIFEST_COLUMNS}
    bad: list[dict] = list(plan.missing[:FILES_IN_RESULT])
    bad_count = len(plan.missing)
    unsupported: Counter[str] = Counter()
    classes: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    modes: Counter[str] = Counter()
    formats: Counter[str] = Counter()
    blobs: list[str] = []
    stored: set[str] = set()
    blob_bytes = 0
    rows = 0

    def put(data: bytes) -> str:
        nonlocal blob_bytes
        digest = hashlib.sha256(data).hexdigest()
        if digest not in stored:
            returned = put_blob(data)
            if returned != digest:
                raise RuntimeError(f"put_blob returned {returned!r} for bytes whose sha256 is {digest}")
            stored.add(digest)
            blobs.append(digest)
            blob_bytes += len(data)
        return digest

    total, step = len(order), max(1, len(order) // 100)
    writer = pq.ParquetWriter(tmp, schema, compression="zstd", compression_level=3, use_dictionary=["label", "mode", "format"])
    try:
        for done, member in enumerate(order, start=1):
            if options.progress and (done % step == 0 or done == total):
                options.progress(done, total)
            reason: str | None = None
            image: Image.Image | None = None
            if member.info.file_size > options.max_image_bytes:
                reason = phrase(
                    gettext_noop("%(size)s bytes, more than the limit of %(limit)s"),
                    size=f"{member.info.file_size:,}",
                    limit=f"{options.max_image_bytes:,}",
                )
            else:
                data = _read_member(archive, member)
                decoded = data if isinstance(data, str) else _decode(data, options)
                if isinstance(decoded, str):
                    reason = decoded
                    if getattr(decoded, "template", None) == "unsupported format %(format)s":
                        unsupported[decoded.params["format"]] += 1
                else:
                    image = decoded
                    reason = member.problem
            if reason is not None:
                bad_count += 1
                if len(bad) < FILES_IN_RESULT:
                    bad.append({"path": member.path, "reason": reason})
                if image is not None:
                    image.close()
                continue
            if bad_count and not skip:
                image.close()
                continue  # the upload will be refused: check the rest, store nothing more
            with image:
                (width, height), mode, fmt = image.size, image.mode, image.format  # before _thumbnail shrinks it in place
                thumbnail = _thumbnail(image, options.thumbnail_px)
            row = (member.path, member.label, width, height, mode, fmt, len(data), put(data), put(thumbnail))
            for name, value in zip(columns, row, strict=True):
                columns[name].append(value)
            rows += 1
            classes[member.label] += 1
            sizes[f"{width}x{height}"] += 1
            modes[mode] += 1
            formats[fmt] += 1
            if len(columns["path"]) >= WRITE_ROWS:
                writer.write_table(pa.table(columns, schema=schema))
                columns = {name: [] for name in columns}
        if columns["path"]:
            writer.write_table(pa.table(columns, schema=schema))
    finally:
        writer.close()

    if bad_count and not skip:
        named = joined(
            [phrase(gettext_noop("%(path)s (%(reason)s)"), path=b["path"], reason=b["reason"]) for b in bad[:FILES_IN_MESSAGE]]
        )
        if bad_count > FILES_IN_MESSAGE:
            named = phrase(gettext_noop("%(files)s and %(more)s more"), files=named, more=f"{bad_count - FILES_IN_MESSAGE:,}")
        raise IngestError(
            IngestError.BAD_IMAGES,
            ngettext(
                "%(count)s file in the zip cannot be used: %(files)s. Fix or remove it, or choose to skip bad files.",
                "%(count)s files in the zip cannot be used: %(files)s. Fix or remove them, or choose to skip bad files.",
                bad_count,
                count=f"{bad_count:,}",
                files=named,
            ),
            {"files": bad[:FILES_IN_ERROR], "count": bad_count},
        )
    if rows == 0:
        raise IngestError(
            IngestError.NO_IMAGES,
            phrase(gettext_noop("None of the %(count)s files in the zip is a usable, labelled image."), count=f"{bad_count:,}"),
        )
    if len(classes) < 2:
        raise _single_class(next(iter(classes)), plan.layout)

    warnings_ = list(plan.warnings)
    if unsupported:
        kinds = ", ".join(sorted(unsupported))
        warnings_.append(
            phrase(
                gettext_noop("%(count)s %(kinds)s images were found; only PNG, JPEG and BMP are accepted."),
                count=f"{sum(unsupported.values()):,}",
                kinds=kinds,
            )
        )
    if bad_count:
        warnings_.append(
            ngettext("%(count)s bad file was skipped.", "%(count)s bad files were skipped.", bad_count, count=f"{bad_count:,}")
        )
    common = sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))
    size_counts = dict(common[:MAX_SIZES])
    if len(common) > MAX_SIZES:
        size_counts["other"] = sum(n for _, n in common[MAX_SIZES:])
    return {
        "columns": [ColumnInfo(name=n, identifier=n, type=str(t), logical=lg) for n, t, lg in MANIFEST_COLUMNS],
        "rows": rows,
        "classes": dict(sorted(classes.items())),
        "sizes": size_counts,
        "modes": dict(sorted(modes.items())),
        "formats": dict(sorted(formats.items())),
        "blobs": blobs,
        "blob_bytes": blob_bytes,
        "skipped": bad,
        "skipped_count": bad_count,
        "warnings": warnings_,
    }


__all__ = ["ImageIngestResult", "ImageOptions", "ingest_images", "is_image_archive"]
