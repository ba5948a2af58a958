"""The image-dataset engine without Django: layouts, names, labels, bad files, bombs, bounded memory."""

from __future__ import annotations

import hashlib
import io
import struct
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from datalake.engine.demo._png import png_bytes
from datalake.engine.demo.images import write_part_images_zip
from datalake.engine.errors import IngestError
from datalake.engine.images import ImageOptions, ingest_images, is_image_archive

FIXED_TIME = (2024, 1, 1, 0, 0, 0)


class Store:
    """A content-addressed store in a dict, recording every call (the platform's storage is outside the engine)."""

    def __init__(self, keep: bool = True):
        self.blobs: dict[str, bytes] = {}
        self.calls: list[str] = []
        self.keep = keep

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        self.calls.append(digest)
        if self.keep:
            self.blobs[digest] = data
        return digest


def image_bytes(mode: str = "L", size: tuple[int, int] = (32, 32), fmt: str = "PNG", seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    if mode in ("L", "P", "1"):
        image = Image.fromarray(rng.integers(0, 256, (size[1], size[0]), dtype=np.uint8), "L").convert(mode)
    elif mode == "I;16":
        image = Image.frombytes("I;16", size, rng.integers(0, 4096, (size[1], size[0])).astype("<u2").tobytes())
    else:
        rgb = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")
        image = rgb.convert(mode)
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def make_zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name, FIXED_TIME), data, compress_type=compression)
    return path


def make_gb18030_zip(path: Path, members: dict[str, bytes]) -> Path:
    """A zip whose names are raw GB18030 bytes without the UTF-8 flag, as Windows' built-in zip writes them.

    zipfile flags every non-ASCII name as UTF-8, so each member is written under an ASCII
    placeholder of the same byte length and the placeholder bytes are replaced afterwards.
    """
    placeholders = {}
    for i, name in enumerate(members):
        raw = name.encode("gb18030")
        placeholder = f"{i}".rjust(len(raw), "~")
        placeholders[placeholder] = raw
    make_zip(path, {p: members[n] for p, n in zip(placeholders, members, strict=True)})
    data = path.read_bytes()
    for placeholder, raw in placeholders.items():
        assert data.count(placeholder.encode()) == 2  # local header and central directory
        data = data.replace(placeholder.encode(), raw)
    path.write_bytes(data)
    return path


def two_classes(extra: dict[str, bytes] | None = None) -> dict[str, bytes]:
    members = {f"ok/{i}.png": image_bytes(seed=i) for i in range(3)}
    members |= {f"ng/{i}.png": image_bytes(seed=10 + i) for i in range(3)}
    return members | (extra or {})


def run(tmp_path: Path, source: Path, store: Store | None = None, **options):
    store = store or Store()
    dest = tmp_path / "out" / "manifest.parquet"
    result = ingest_images(source, dest, store.put, ImageOptions(**options))
    return result, pq.read_table(dest), store


def refused(tmp_path: Path, source: Path, code: str, **options) -> IngestError:
    dest = tmp_path / "out" / "manifest.parquet"
    with pytest.raises(IngestError) as info:
        ingest_images(source, dest, Store().put, ImageOptions(**options))
    assert info.value.code == code, info.value
    assert not dest.exists()
    assert not list((tmp_path / "out").iterdir()) if (tmp_path / "out").exists() else True
    return info.value


def member_digests(source: Path) -> dict[str, str]:
    with zipfile.ZipFile(source) as archive:
        return {i.filename: hashlib.sha256(archive.read(i)).hexdigest() for i in archive.infolist() if not i.is_dir()}


def set_declared_size(source: Path, name: str, size: int) -> None:
    """Rewrite the uncompressed size a zip declares for `name`, in its local header and central directory."""
    data = bytearray(source.read_bytes())
    with zipfile.ZipFile(source) as archive:
        info = archive.getinfo(name)
    struct.pack_into("<I", data, info.header_offset + 22, size)
    central = data.index(b"PK\x01\x02")
    while data[central : central + 4] == b"PK\x01\x02":
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, central + 28)
        if bytes(data[central + 46 : central + 46 + name_len]) == name.encode():
            struct.pack_into("<I", data, central + 24, size)
        central += 46 + name_len + extra_len + comment_len
    source.write_bytes(bytes(data))


# --- layouts ------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["folders", "labels_csv"])
def test_demo_zip_gives_manifest_blobs_and_thumbnails(tmp_path, layout):
    source = tmp_path / "parts.zip"
    expected = write_part_images_zip(source, per_class=6, size=32, layout=layout)
    result, table, store = run(tmp_path, source)

    assert result.layout == layout and result.format == "images"
    assert result.rows == 24 == table.num_rows
    assert result.classes == {"crack": 6, "ok": 6, "scratch": 6, "spot": 6}
    assert result.sizes == {"32x32": 24} and result.modes == {"L": 24} and result.formats == {"PNG": 24}
    assert table.column_names == ["path", "label", "width", "height", "mode", "format", "bytes", "checksum", "thumbnail"]
    assert [c.name for c in result.columns] == table.column_names == [c.identifier for c in result.columns]
    assert {c.name: c.type for c in result.columns}["width"] == "int32"
    assert {c.name: c.logical for c in result.columns}["bytes"] == "int"
    assert table.schema.field("checksum").metadata[b"lepton.name"] == b"checksum"
    manifest = tmp_path / "out" / "manifest.parquet"
    assert pq.ParquetFile(manifest).metadata.row_group(0).column(0).compression == "ZSTD"
    assert result.sha256 == hashlib.sha256(manifest.read_bytes()).hexdigest() and result.bytes == manifest.stat().st_size

    rows = table.to_pylist()
    assert [(r["label"], r["path"]) for r in rows] == sorted((r["label"], r["path"]) for r in rows)
    assert sorted(r["path"] for r in rows) == sorted(expected["path"])
    digests = member_digests(source)
    for row in rows:
        assert row["checksum"] == digests[row["path"]]
        assert store.blobs[row["checksum"]] == zipfile.ZipFile(source).read(row["path"])
        assert row["bytes"] == len(store.blobs[row["checksum"]])
        assert (row["width"], row["height"], row["mode"], row["format"]) == (32, 32, "L", "PNG")
        thumb = Image.open(io.BytesIO(store.blobs[row["thumbnail"]]))
        assert thumb.format == "PNG" and thumb.mode == "L" and max(thumb.size) <= 96
    assert sorted(result.blobs) == sorted(store.blobs) and len(store.calls) == len(set(store.calls))
    assert result.blob_bytes == sum(len(b) for b in store.blobs.values())
    assert result.skipped == [] and result.skipped_count == 0


def test_thumbnail_shrinks_to_longest_side_and_keeps_aspect(tmp_path):
    source = make_zip(tmp_path / "a.zip", two_classes({"ok/wide.png": image_bytes(size=(64, 32), seed=99)}))
    result, table, store = run(tmp_path, source, thumbnail_px=16)
    row = next(r for r in table.to_pylist() if r["path"] == "ok/wide.png")
    thumb = Image.open(io.BytesIO(store.blobs[row["thumbnail"]]))
    assert thumb.size == (16, 8) and thumb.mode == "L"
    assert result.sizes == {"32x32": 6, "64x32": 1}


def test_colour_jpeg_bmp_png_and_odd_modes(tmp_path):
    members = {
        "ok/colour.jpg": image_bytes("RGB", (40, 30), "JPEG"),
        "ok/cmyk.jpeg": image_bytes("CMYK", (20, 20), "JPEG"),
        "ok/plain.BMP": image_bytes("RGB", (24, 24), "BMP"),
        "ng/alpha.png": image_bytes("RGBA", (32, 32), "PNG"),
        "ng/palette.png": image_bytes("P", (200, 100), "PNG"),
        "ng/deep.png": image_bytes("I;16", (200, 200), "PNG"),
    }
    result, table, store = run(tmp_path, make_zip(tmp_path / "mix.zip", members))
    assert result.formats == {"BMP": 1, "JPEG": 2, "PNG": 3}
    assert result.modes == {"CMYK": 1, "I;16": 1, "P": 1, "RGB": 2, "RGBA": 1}
    thumbs = {r["path"]: Image.open(io.BytesIO(store.blobs[r["thumbnail"]])) for r in table.to_pylist()}
    assert {p: t.mode for p, t in thumbs.items()} == {
        "ok/colour.jpg": "RGB",
        "ok/cmyk.jpeg": "RGB",
        "ok/plain.BMP": "RGB",
        "ng/alpha.png": "RGBA",
        "ng/palette.png": "RGB",
        "ng/deep.png": "L",
    }
    assert thumbs["ng/palette.png"].size == (96, 48)
    deep = np.asarray(thumbs["ng/deep.png"])
    assert deep.max() > 200  # 12-bit data stretched to be visible, not shifted to near black
    for thumb in thumbs.values():
        thumb.load()


def test_common_top_folder_is_stripped(tmp_path):
    members = {f"parts/{k}": v for k, v in two_classes().items()}
    result, table, _ = run(tmp_path, make_zip(tmp_path / "top.zip", members))
    assert result.classes == {"ng": 3, "ok": 3}
    assert table.column("path").to_pylist()[0] == "parts/ng/0.png"
    assert "Everything is inside 'parts/'; the class is the folder below it." in result.warnings


def test_deeper_nesting_uses_first_folder_and_warns(tmp_path):
    members = two_classes({"ok/batch1/7.png": image_bytes(seed=7), "ok/batch2/8.png": image_bytes(seed=8)})
    result, _, _ = run(tmp_path, make_zip(tmp_path / "deep.zip", members))
    assert result.classes == {"ng": 3, "ok": 5}
    assert any("2 images are in subfolders of their class folder" in w for w in result.warnings)


def test_chinese_folders_with_utf8_flag(tmp_path):
    members = {"合格/1.png": image_bytes(seed=1), "合格/2.png": image_bytes(seed=2), "划痕/3.png": image_bytes(seed=3)}
    source = make_zip(tmp_path / "utf8.zip", members)
    assert all(i.flag_bits & 0x800 for i in zipfile.ZipFile(source).infolist())
    result, table, _ = run(tmp_path, source)
    assert result.classes == {"划痕": 1, "合格": 2}
    assert set(table.column("path").to_pylist()) == set(members)


def test_chinese_folders_gb18030_without_utf8_flag(tmp_path):
    members = {"合格/1.png": image_bytes(seed=1), "合格/2.png": image_bytes(seed=2), "划痕/3.png": image_bytes(seed=3)}
    source = make_gb18030_zip(tmp_path / "gbk.zip", members)
    infos = zipfile.ZipFile(source).infolist()
    assert not any(i.flag_bits & 0x800 for i in infos)
    assert "合格/1.png" not in [i.filename for i in infos]  # zipfile alone reads them as cp437 mojibake
    result, table, _ = run(tmp_path, source)
    assert result.classes == {"划痕": 1, "合格": 2}
    assert set(table.column("path").to_pylist()) == set(members)


def test_labels_csv_in_gbk_with_chinese_headers_and_basenames(tmp_path):
    csv_text = "文件名,标签\n图片/a.png,合格\n图片/b.png,合格\nc.png,划痕\n"
    members = {
        "图片/a.png": image_bytes(seed=1),
        "图片/b.png": image_bytes(seed=2),
        "图片/c.png": image_bytes(seed=3),
        "labels.csv": csv_text.encode("gb18030"),
    }
    result, table, _ = run(tmp_path, make_zip(tmp_path / "l.zip", members))
    assert result.layout == "labels_csv"
    assert result.classes == {"划痕": 1, "合格": 2}
    assert dict(zip(table.column("path").to_pylist(), table.column("label").to_pylist(), strict=True)) == {
        "图片/a.png": "合格",
        "图片/b.png": "合格",
        "图片/c.png": "划痕",
    }
    assert any("matched by file name" in w for w in result.warnings)


def test_labels_csv_utf8_bom_semicolons_and_backslashes_under_top_folder(tmp_path):
    csv_text = "\ufeffFile;Class\nimgs\\1.png;good\nimgs\\2.png;bad\n"
    members = {
        "set/imgs/1.png": image_bytes(seed=1),
        "set/imgs/2.png": image_bytes(seed=2),
        "set/annotations.csv": csv_text.encode("utf-8"),
    }
    result, table, _ = run(tmp_path, make_zip(tmp_path / "b.zip", members))
    assert result.layout == "labels_csv" and result.classes == {"bad": 1, "good": 1}
    assert table.column("path").to_pylist() == ["set/imgs/2.png", "set/imgs/1.png"]


def test_labels_file_option_picks_one_of_several_csvs(tmp_path):
    members = {
        "a.png": image_bytes(seed=1),
        "b.png": image_bytes(seed=2),
        "train.csv": b"path,label\na.png,x\nb.png,y\n",
        "notes.csv": b"when,who\n2024,me\n",
    }
    source = make_zip(tmp_path / "s.zip", members)
    error = refused(tmp_path, source, IngestError.BAD_LABELS)
    assert "several CSV files" in error.message and "train.csv" in error.message
    result, _, _ = run(tmp_path, source, labels_file="train.csv", skip_bad_files=True)
    assert result.classes == {"x": 1, "y": 1}
    assert result.skipped == [{"path": "notes.csv", "reason": "not an image (PNG, JPEG or BMP)"}]


def test_unrelated_csv_beside_class_folders_is_ignored_with_warning(tmp_path):
    members = two_classes({"summary.csv": b"when,who\n2024,me\n"})
    result, _, _ = run(tmp_path, make_zip(tmp_path / "f.zip", members))
    assert result.layout == "folders" and result.classes == {"ng": 3, "ok": 3}
    assert any("'summary.csv' has no path and label columns" in w for w in result.warnings)


def test_mac_and_windows_clutter_is_ignored(tmp_path):
    members = two_classes(
        {"__MACOSX/ok/._0.png": b"junk", "ok/.DS_Store": b"junk", "ng/Thumbs.db": b"junk", "desktop.ini": b"junk"}
    )
    result, _, _ = run(tmp_path, make_zip(tmp_path / "mac.zip", members))
    assert result.rows == 6 and result.skipped_count == 0


def test_identical_images_are_stored_once(tmp_path):
    same = image_bytes(seed=5)
    members = two_classes({"ok/copy.png": same, "ng/copy.png": same})
    result, table, store = run(tmp_path, make_zip(tmp_path / "d.zip", members), thumbnail_px=16)
    assert result.rows == 8
    assert len(set(table.column("checksum").to_pylist())) == 7
    assert len(store.calls) == len(set(store.calls)) == len(result.blobs) == 14


def test_same_zip_gives_same_manifest(tmp_path):
    source = tmp_path / "parts.zip"
    write_part_images_zip(source, per_class=5, size=24)
    first, _, _ = run(tmp_path, source)
    second, _, _ = run(tmp_path, source)
    assert first.sha256 == second.sha256 and first.blobs == second.blobs


def test_progress_reaches_total(tmp_path):
    seen = []
    run(tmp_path, make_zip(tmp_path / "p.zip", two_classes()), progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1] == (6, 6)


def test_sizes_keep_fifty_most_common_then_other(tmp_path):
    members = {f"{'ok' if w % 2 else 'ng'}/{w}.png": image_bytes(size=(w, 8), seed=w) for w in range(8, 60)}
    members |= {"ok/again.png": image_bytes(size=(9, 8), seed=1000)}
    result, _, _ = run(tmp_path, make_zip(tmp_path / "s.zip", members))
    assert len(result.sizes) == 51 and result.sizes["other"] == 2
    assert next(iter(result.sizes)) == "9x8" and result.sizes["9x8"] == 2


def test_put_blob_returning_another_digest_is_an_error(tmp_path):
    source = make_zip(tmp_path / "a.zip", two_classes())
    with pytest.raises(RuntimeError, match="put_blob returned"):
        ingest_images(source, tmp_path / "m.parquet", lambda data: "0" * 64)
    assert not (tmp_path / "m.parquet").exists()


def test_is_image_archive(tmp_path):
    write_part_images_zip(tmp_path / "f.zip", per_class=2, layout="folders")
    write_part_images_zip(tmp_path / "l.zip", per_class=2, layout="labels_csv")
    assert is_image_archive(tmp_path / "f.zip") and is_image_archive(tmp_path / "l.zip")
    assert is_image_archive(make_zip(tmp_path / "upper.zip", {"A/X.PNG": b"", "B/Y.JPEG": b"", "__MACOSX/a": b""}))
    assert not is_image_archive(make_zip(tmp_path / "csv.zip", {"data.csv": b"a,b\n1,2\n"}))
    assert not is_image_archive(make_zip(tmp_path / "mixed.zip", {"a.png": b"", "b.txt": b"", "c.xml": b""}))
    assert not is_image_archive(make_zip(tmp_path / "book.zip", {"xl/workbook.xml": b"", "xl/media/image1.png": b""}))
    (tmp_path / "t.csv").write_text("a,b\n")
    assert not is_image_archive(tmp_path / "t.csv")
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really")
    assert not is_image_archive(tmp_path / "broken.zip")


# --- bad input ----------------------------------------------------------------------------


def test_not_a_zip_is_refused(tmp_path):
    source = tmp_path / "a.zip"
    source.write_bytes(b"path,label\n")
    error = refused(tmp_path, source, IngestError.ARCHIVE)
    assert "not a zip archive" in error.message


def test_damaged_zip_is_refused(tmp_path):
    source = make_zip(tmp_path / "a.zip", two_classes())
    source.write_bytes(source.read_bytes()[:-40])  # the end of the central directory is gone
    error = refused(tmp_path, source, IngestError.ARCHIVE)
    assert "damaged" in error.message


def test_zip_without_images_is_refused(tmp_path):
    source = make_zip(tmp_path / "a.zip", {"readme.txt": b"hello", "x/y.gif": image_bytes(fmt="GIF")})
    error = refused(tmp_path, source, IngestError.NO_IMAGES)
    assert error.message == "The zip holds no PNG, JPEG or BMP images (it has .gif files; convert them)."


def test_bad_files_refuse_the_upload_listing_them(tmp_path):
    jpeg = image_bytes("RGB", (64, 64), "JPEG")
    members = two_classes({"readme.txt": b"see below", "ok/fake.png": b"just text", "ng/cut.jpg": jpeg[: len(jpeg) // 2]})
    error = refused(tmp_path, make_zip(tmp_path / "bad.zip", members), IngestError.BAD_IMAGES)
    assert error.details["count"] == 3
    reasons = {f["path"]: f["reason"] for f in error.details["files"]}
    assert reasons["ok/fake.png"] == "not an image (PNG, JPEG or BMP)"
    assert reasons["readme.txt"] == "not an image (PNG, JPEG or BMP)"
    assert reasons["ng/cut.jpg"].startswith("damaged or truncated image") and "truncated" in reasons["ng/cut.jpg"]
    assert error.message.startswith("3 files in the zip cannot be used: ng/cut.jpg (damaged or truncated image")
    assert error.message.endswith("Fix or remove them, or choose to skip bad files.")


def test_png_with_bad_checksum_is_a_bad_file(tmp_path):
    data = bytearray(image_bytes(seed=3))
    data[-13] ^= 0xFF  # the IDAT chunk's CRC (IEND's 12 bytes follow): the pixels decode, only verify() notices
    error = refused(tmp_path, make_zip(tmp_path / "crc.zip", two_classes({"ok/crc.png": bytes(data)})), IngestError.BAD_IMAGES)
    assert error.details["files"][0]["path"] == "ok/crc.png"


def test_skip_bad_files_reports_them(tmp_path):
    members = two_classes({"readme.txt": b"see below", "ok/fake.png": b"just text", "ng/anim.gif": image_bytes(fmt="GIF")})
    result, table, store = run(tmp_path, make_zip(tmp_path / "bad.zip", members), skip_bad_files=True)
    assert result.rows == 6 == table.num_rows
    assert result.skipped_count == 3
    assert {s["path"]: s["reason"] for s in result.skipped} == {
        "ng/anim.gif": "unsupported format GIF",
        "ok/fake.png": "not an image (PNG, JPEG or BMP)",
        "readme.txt": "not an image (PNG, JPEG or BMP)",
    }
    assert "3 bad files were skipped." in result.warnings
    assert "1 GIF images were found; only PNG, JPEG and BMP are accepted." in result.warnings
    rows = table.to_pylist()
    assert set(store.blobs) == {r["checksum"] for r in rows} | {r["thumbnail"] for r in rows}


def test_refusal_stops_storing_after_first_bad_file(tmp_path):
    members = two_classes({"aaa/0.png": b"not an image"})  # sorted first: label 'aaa'
    store = Store()
    with pytest.raises(IngestError):
        ingest_images(make_zip(tmp_path / "b.zip", members), tmp_path / "m.parquet", store.put)
    assert store.calls == []


def test_single_class_is_refused(tmp_path):
    members = {f"ok/{i}.png": image_bytes(seed=i) for i in range(3)}
    error = refused(tmp_path, make_zip(tmp_path / "one.zip", members), IngestError.SINGLE_CLASS)
    assert "Every image has the class 'ok'; a classifier needs two or more classes" in error.message


def test_one_folder_of_images_is_a_single_class(tmp_path):
    members = {f"images/{i}.png": image_bytes(seed=i) for i in range(3)}
    error = refused(tmp_path, make_zip(tmp_path / "one.zip", members), IngestError.SINGLE_CLASS)
    assert "'images'" in error.message and "own folder" in error.message


def test_skipping_that_leaves_one_class_is_refused(tmp_path):
    members = {f"ok/{i}.png": image_bytes(seed=i) for i in range(3)} | {"ng/0.png": b"broken", "ng/1.png": b"broken"}
    source = make_zip(tmp_path / "one.zip", members)
    error = refused(tmp_path, source, IngestError.SINGLE_CLASS, skip_bad_files=True)
    assert "'ok'" in error.message
    assert refused(tmp_path, source, IngestError.BAD_IMAGES).details["count"] == 2


def test_flat_zip_without_labels_is_refused(tmp_path):
    members = {f"{i}.png": image_bytes(seed=i) for i in range(3)}
    error = refused(tmp_path, make_zip(tmp_path / "flat.zip", members), IngestError.NO_LABELS)
    assert "not sorted into class folders" in error.message and "labels.csv" in error.message


def test_labels_csv_without_usable_columns_is_refused(tmp_path):
    members = {"a.png": image_bytes(seed=1), "b.png": image_bytes(seed=2), "labels.csv": b"name,kind\na.png,x\nb.png,y\n"}
    error = refused(tmp_path, make_zip(tmp_path / "l.zip", members), IngestError.BAD_LABELS)
    assert "'labels.csv' needs a column naming the image" in error.message
    assert error.message.endswith("its header is: name, kind.")


def test_labels_csv_in_unknown_encoding_is_refused(tmp_path):
    members = {"a.png": image_bytes(seed=1), "b.png": image_bytes(seed=2), "labels.csv": b"path,label\na.png,\xff\xff\n"}
    error = refused(tmp_path, make_zip(tmp_path / "l.zip", members), IngestError.BAD_LABELS)
    assert "neither UTF-8 nor GB18030" in error.message


def test_labels_csv_mismatches_are_bad_files(tmp_path):
    csv_text = "path,label\na.png,x\nb.png,y\ngone.png,x\nc.png,\nd.png,x\nd.png,y\n"
    members = {n: image_bytes(seed=i) for i, n in enumerate(["a.png", "b.png", "c.png", "d.png", "extra.png"])}
    source = make_zip(tmp_path / "l.zip", members | {"labels.csv": csv_text.encode()})
    error = refused(tmp_path, source, IngestError.BAD_IMAGES)
    assert {f["path"]: f["reason"] for f in error.details["files"]} == {
        "gone.png": "listed in labels.csv (line 4) but not in the zip",
        "c.png": "has no label in labels.csv (line 5)",
        "d.png": "has two labels in labels.csv ('x' and 'y')",
        "extra.png": "not listed in labels.csv",
    }
    result, table, _ = run(tmp_path, source, skip_bad_files=True)
    assert result.classes == {"x": 1, "y": 1} and result.skipped_count == 4


def test_image_outside_class_folders_is_a_bad_file(tmp_path):
    error = refused(tmp_path, make_zip(tmp_path / "a.zip", two_classes({"loose.png": image_bytes()})), IngestError.BAD_IMAGES)
    assert error.details["files"] == [{"path": "loose.png", "reason": "not in a class folder"}]


def test_declared_sizes_over_the_limit_are_refused(tmp_path):
    error = refused(tmp_path, make_zip(tmp_path / "a.zip", two_classes()), IngestError.TOO_LARGE, max_decompressed_bytes=1000)
    assert "more than 1,000 bytes" in error.message


def test_member_inflating_past_its_declared_size_is_refused(tmp_path):
    source = make_zip(tmp_path / "bomb.zip", two_classes({"ok/bomb.png": bytes(5 * 1024 * 1024)}), zipfile.ZIP_DEFLATED)
    set_declared_size(source, "ok/bomb.png", 1000)
    assert zipfile.ZipFile(source).getinfo("ok/bomb.png").file_size == 1000
    error = refused(tmp_path, source, IngestError.TOO_LARGE)
    assert "'ok/bomb.png' expands beyond the 1,000 bytes the zip declares" in error.message


def test_image_over_max_image_bytes_is_a_bad_file(tmp_path):
    members = two_classes({"ok/big.png": image_bytes(size=(200, 200))})
    error = refused(tmp_path, make_zip(tmp_path / "a.zip", members), IngestError.BAD_IMAGES, max_image_bytes=20_000)
    assert error.details["files"][0]["path"] == "ok/big.png"
    assert error.details["files"][0]["reason"].endswith("bytes, more than the limit of 20,000")


def png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")


def test_decompression_bomb_images_are_bad_files(tmp_path):
    members = two_classes({"ok/huge.png": png_header_only(100_000, 100_000), "ng/large.png": png_header_only(10_000, 5_000)})
    source = make_zip(tmp_path / "bomb.zip", members)
    assert source.stat().st_size < 10_000
    error = refused(tmp_path, source, IngestError.BAD_IMAGES)
    reasons = {f["path"]: f["reason"] for f in error.details["files"]}
    assert reasons["ok/huge.png"] == "more pixels than the limit of 40,000,000 (a decompression bomb)"
    assert reasons["ng/large.png"] == "10000x5000 is 50,000,000 pixels, more than the limit of 40,000,000"


def test_max_pixels_option(tmp_path):
    members = two_classes({"ok/wide.png": image_bytes(size=(100, 11))})
    error = refused(tmp_path, make_zip(tmp_path / "a.zip", members), IngestError.BAD_IMAGES, max_pixels=1024)
    assert error.details["files"] == [{"path": "ok/wide.png", "reason": "100x11 is 1,100 pixels, more than the limit of 1,024"}]


def test_too_many_files_is_refused(tmp_path):
    error = refused(tmp_path, make_zip(tmp_path / "a.zip", two_classes()), IngestError.TOO_MANY_FILES, max_files=5)
    assert error.message == "The zip holds 6 files; at most 5 are allowed in one upload. Split it."


def test_password_protected_zip_is_refused(tmp_path):
    source = make_zip(tmp_path / "a.zip", two_classes())
    data = bytearray(source.read_bytes())
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<H", data, central + 8, 0x1)  # general purpose flag: encrypted
    source.write_bytes(bytes(data))
    error = refused(tmp_path, source, IngestError.ARCHIVE)
    assert "password" in error.message


# --- bounded memory -----------------------------------------------------------------------


def test_three_thousand_images_in_bounded_memory(tmp_path):
    rng = np.random.default_rng(0)
    source = tmp_path / "many.zip"
    with zipfile.ZipFile(source, "w") as archive:
        for i in range(3000):
            noise = rng.integers(0, 256, (96, 96), np.uint8)  # incompressible: each PNG is about 9 KB
            archive.writestr(zipfile.ZipInfo(f"c{i % 3}/{i:05d}.png", FIXED_TIME), png_bytes(noise))
    assert source.stat().st_size > 25_000_000
    store = Store(keep=False)
    tracemalloc.start()
    try:
        result = ingest_images(source, tmp_path / "m.parquet", store.put, ImageOptions(thumbnail_px=32))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.rows == 3000 and result.classes == {"c0": 1000, "c1": 1000, "c2": 1000}
    # About 6 MB here, nearly all of it per-file metadata (zipfile's directory, manifest rows,
    # blob digests); holding the zip or its images would need more than 25 MB.
    assert peak < 10_000_000, peak
