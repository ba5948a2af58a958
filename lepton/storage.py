"""Content-addressed blob storage on a filesystem or an S3-compatible store, through fsspec.

A blob is named by the SHA-256 of its bytes (`blobs/ab/cdef…`). Writes are atomic: the
bytes go to a temporary name (file://) or are hashed before one single PUT (s3://), so a
reader never sees half a blob. Reads verify the checksum; a mismatch raises
`CorruptBlob` instead of handing out wrong bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import BinaryIO
from urllib.parse import urlparse

import fsspec
from django.conf import settings

CHUNK = 1024 * 1024


class CorruptBlob(Exception):
    """The stored bytes do not match their checksum."""


class BlobNotFound(FileNotFoundError):
    pass


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    size: int


def _check_digest(sha256: str) -> str:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return sha256


class BlobStorage:
    """One interface for file:// and s3:// stores."""

    def __init__(self, url: str, options: dict | None = None):
        parsed = urlparse(url)
        self.url = url
        self.scheme = parsed.scheme or "file"
        if self.scheme == "file":
            self.root = parsed.path.rstrip("/") or "/"
            self.fs = fsspec.filesystem("file")
        elif self.scheme == "s3":
            opts = {k: v for k, v in (options or {}).items() if v}
            client_kwargs = {"endpoint_url": opts.pop("endpoint_url")} if "endpoint_url" in opts else {}
            self.fs = fsspec.filesystem("s3", client_kwargs=client_kwargs, **opts)
            self.root = (parsed.netloc + parsed.path).rstrip("/")
        else:
            raise ValueError(f"LEPTON_STORAGE_URL scheme '{self.scheme}' is not supported (use file:// or s3://).")

    def path(self, sha256: str) -> str:
        _check_digest(sha256)
        return f"{self.root}/blobs/{sha256[:2]}/{sha256[2:]}"

    def exists(self, sha256: str) -> bool:
        return self.fs.exists(self.path(sha256))

    def put_bytes(self, data: bytes) -> StoredBlob:
        import io

        return self.put_stream(io.BytesIO(data))

    def put_stream(self, stream: BinaryIO) -> StoredBlob:
        """Store a stream in bounded memory; returns its digest and size. Idempotent per content."""
        digest = hashlib.sha256()
        size = 0
        tmp_dir = os.path.join(self.root, "tmp") if self.scheme == "file" else None
        if tmp_dir:
            os.makedirs(tmp_dir, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=tmp_dir, delete=False, prefix="upload-") as tmp:
            try:
                while chunk := stream.read(CHUNK):
                    digest.update(chunk)
                    tmp.write(chunk)
                    size += len(chunk)
                tmp.flush()
                os.fsync(tmp.fileno())
            except BaseException:
                # close() flushes what is still buffered, which fails again on a full disk: the
                # half-written file must go all the same (tests/faults/test_storage_full.py).
                with contextlib.suppress(OSError):
                    tmp.close()
                os.unlink(tmp.name)
                raise
        sha = digest.hexdigest()
        target = self.path(sha)
        try:
            if self.exists(sha):
                return StoredBlob(sha, size)
            if self.scheme == "file":
                os.makedirs(os.path.dirname(target), exist_ok=True)
                os.chmod(tmp.name, 0o444)
                os.replace(tmp.name, target)  # atomic on one filesystem
            else:
                self.fs.put_file(tmp.name, target)  # one PUT: visible whole or not at all
        finally:
            if os.path.exists(tmp.name):
                os.unlink(tmp.name)
        return StoredBlob(sha, size)

    def read_bytes(self, sha256: str) -> bytes:
        try:
            data = self.fs.cat_file(self.path(sha256))
        except FileNotFoundError:
            raise BlobNotFound(sha256) from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise CorruptBlob(f"blob {sha256} does not match its checksum")
        return data

    def copy_to(self, sha256: str, destination: BinaryIO) -> int:
        """Stream a blob into `destination`, verifying the checksum at the end."""
        digest = hashlib.sha256()
        size = 0
        try:
            with self.fs.open(self.path(sha256), "rb") as src:
                while chunk := src.read(CHUNK):
                    digest.update(chunk)
                    destination.write(chunk)
                    size += len(chunk)
        except FileNotFoundError:
            raise BlobNotFound(sha256) from None
        if digest.hexdigest() != sha256:
            raise CorruptBlob(f"blob {sha256} does not match its checksum")
        return size

    def local_copy(self, sha256: str, directory: str | None = None) -> str:
        """A verified local file with the blob's bytes (for readers that need a path)."""
        fd, path = tempfile.mkstemp(dir=directory, prefix=f"{sha256[:12]}-")
        try:
            with os.fdopen(fd, "wb") as out:
                self.copy_to(sha256, out)
        except BaseException:
            os.unlink(path)
            raise
        return path

    def verified_local_path(self, sha256: str) -> str:
        """A local file path with the blob's bytes, checksum verified once per process (file://)
        or once per cached download (s3://): for readers like duckdb that scan files many times."""
        if self.scheme == "file":
            path = self.path(sha256)
            if sha256 not in _VERIFIED:
                digest = hashlib.sha256()
                try:
                    with open(path, "rb") as src:
                        while chunk := src.read(CHUNK):
                            digest.update(chunk)
                except FileNotFoundError:
                    raise BlobNotFound(sha256) from None
                if digest.hexdigest() != sha256:
                    raise CorruptBlob(f"blob {sha256} does not match its checksum")
                _VERIFIED.add(sha256)
            return path
        cache = os.path.join(str(settings.VAR_DIR), "blobcache")
        os.makedirs(cache, exist_ok=True)
        target = os.path.join(cache, sha256)
        if not os.path.exists(target):
            tmp = self.local_copy(sha256, directory=cache)  # verified while copying
            os.replace(tmp, target)
        return target

    def digests(self) -> set[str]:
        """The sha256 of every stored blob (a listing of `blobs/`, on either scheme; for checks and tests)."""
        root = f"{self.root}/blobs"
        self.fs.invalidate_cache(root)  # s3fs caches listings; a listing must show the store as it is now
        try:
            paths = self.fs.find(root)
        except FileNotFoundError:
            return set()
        return {"".join(p.rstrip("/").split("/")[-2:]) for p in paths}

    def delete(self, sha256: str) -> None:
        _VERIFIED.discard(sha256)
        try:
            self.fs.rm_file(self.path(sha256))
        except FileNotFoundError:
            pass

    def check(self) -> dict:
        """Write, read back and delete a small probe (for /healthz and the self-check)."""
        probe = f"lepton-probe-{uuid.uuid4()}".encode()
        blob = self.put_bytes(probe)
        ok = self.read_bytes(blob.sha256) == probe
        self.delete(blob.sha256)
        return {"ok": ok, "url": self.public_url()}

    def public_url(self) -> str:
        return f"{self.scheme}://{self.root}" if self.scheme == "s3" else f"file://{self.root}"

    def clear(self) -> None:
        """Remove everything (tests only)."""
        if self.scheme == "file":
            shutil.rmtree(self.root, ignore_errors=True)


# Blobs whose checksum this process has verified (they are immutable, so once is enough).
_VERIFIED: set[str] = set()


@lru_cache(maxsize=4)
def _storage_for(url: str) -> BlobStorage:
    return BlobStorage(url, settings.LEPTON_STORAGE_OPTIONS)


def get_storage() -> BlobStorage:
    return _storage_for(settings.LEPTON_STORAGE_URL)
