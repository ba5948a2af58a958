"""Content-addressed storage: atomic writes, checksums verified on read."""

import hashlib
import io
import os

import pytest

from lepton.storage import BlobNotFound, BlobStorage, CorruptBlob


@pytest.fixture
def store(tmp_path):
    return BlobStorage((tmp_path / "lake").as_uri())


def test_put_and_read_back_by_sha256(store):
    data = b"sensor,temperature\n1,71.5\n" * 1000
    blob = store.put_bytes(data)
    assert blob.sha256 == hashlib.sha256(data).hexdigest() and blob.size == len(data)
    assert store.read_bytes(blob.sha256) == data
    out = io.BytesIO()
    assert store.copy_to(blob.sha256, out) == len(data) and out.getvalue() == data


def test_stream_larger_than_a_chunk_is_stored_in_bounded_pieces(store):
    data = os.urandom(3 * 1024 * 1024 + 17)
    blob = store.put_stream(io.BytesIO(data))
    assert blob.size == len(data)
    path = store.local_copy(blob.sha256)
    try:
        assert open(path, "rb").read() == data
    finally:
        os.unlink(path)


def test_same_content_is_stored_once(store, tmp_path):
    a = store.put_bytes(b"same")
    b = store.put_bytes(b"same")
    assert a == b
    assert len(list((tmp_path / "lake" / "blobs").rglob("*"))) == 2  # one folder, one file


def test_no_temporary_file_is_left_after_a_write_or_a_failed_write(store, tmp_path):
    store.put_bytes(b"x")

    class Exploding(io.BytesIO):
        def read(self, n=-1):
            raise OSError("disk unplugged")

    with pytest.raises(OSError):
        store.put_stream(Exploding())
    assert list((tmp_path / "lake" / "tmp").iterdir()) == []


def test_corrupted_blob_is_refused_on_read(store):
    blob = store.put_bytes(b"good bytes")
    path = store.path(blob.sha256)
    os.chmod(path, 0o644)
    with open(path, "wb") as f:
        f.write(b"evil bytes")
    with pytest.raises(CorruptBlob):
        store.read_bytes(blob.sha256)
    with pytest.raises(CorruptBlob):
        store.copy_to(blob.sha256, io.BytesIO())


def test_missing_blob_and_bad_digest(store):
    with pytest.raises(BlobNotFound):
        store.read_bytes("0" * 64)
    with pytest.raises(ValueError):
        store.path("../../etc/passwd")


def test_unknown_scheme_is_refused():
    with pytest.raises(ValueError, match="not supported"):
        BlobStorage("ftp://example/lake")


def test_check_writes_reads_and_deletes_a_probe(store, tmp_path):
    assert store.check()["ok"] is True
    assert list((tmp_path / "lake" / "blobs").rglob("*.*")) == []


@pytest.fixture
def s3_store():
    """A real S3 API on 127.0.0.1 (moto's server), with a bucket, for the s3:// code path."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    ).create_bucket(Bucket="lake")
    yield BlobStorage("s3://lake/lepton", {"endpoint_url": endpoint, "key": "test", "secret": "test"})
    server.stop()


def test_s3_store_round_trip_and_checksum(s3_store):
    data = os.urandom(2 * 1024 * 1024 + 5)
    blob = s3_store.put_stream(io.BytesIO(data))
    assert s3_store.exists(blob.sha256)
    assert s3_store.path(blob.sha256).startswith("lake/lepton/blobs/")
    assert s3_store.read_bytes(blob.sha256) == data
    assert s3_store.check()["ok"] is True
    s3_store.fs.pipe_file(s3_store.path(blob.sha256), b"tampered")
    s3_store.fs.invalidate_cache()
    with pytest.raises(CorruptBlob):
        s3_store.read_bytes(blob.sha256)
    s3_store.delete(blob.sha256)
    s3_store.fs.invalidate_cache()
    assert not s3_store.exists(blob.sha256)
