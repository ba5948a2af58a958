"""Sensitive columns in Parquet: encryption at rest and masking on read (no Django here).

Encryption is Parquet modular encryption (pyarrow.parquet.encryption): the classified columns
and the footer are encrypted with random data keys that pyarrow makes per file; those keys are
wrapped by `_RingKms`, an in-process "KMS" that encrypts them with AES-GCM under the master data
key. Each wrapped key starts with the id of the master key that wrapped it, so a file written
under an older key opens as long as that key is in the ring (rotation: `KeyRing.previous`).
Without the key a stored file cannot even be opened (the footer is encrypted).

Masking rewrites a readable copy: `hide` drops the column, `hash` replaces each value by the
first 16 hex digits of HMAC-SHA256(mask key, value as text), so equal values stay equal
(joins and counts work) but cannot be read back.

    ring = KeyRing.from_text(current="…base64…", previous=[])
    encrypt_file("plain.parquet", "stored.parquet", ["email"], ring)
    rewrite("stored.parquet", "readable.parquet", ring, hide={"phone"}, hashed={"email"})
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import hmac
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import Phrase, gettext_noop, phrase

KEY_SIZES = (16, 24, 32)
MASTER_KEY_ID = "lepton"  # the one master key identifier pyarrow asks the KMS for
HASH_HEX_DIGITS = 16
BATCH_ROWS = 65_536


class DataKeyError(Exception):
    """The data key is missing, malformed, or not the one a stored file was encrypted with."""

    def __init__(self, message: Phrase, code: str = "data_key"):
        super().__init__(message)
        self.message, self.code = message, code


def parse_key(text: str, name: str = "LEPTON_DATA_KEY") -> bytes:
    """The key bytes of a hex or base64 text of 16, 24 or 32 bytes; DataKeyError saying what is wrong."""
    value = (text or "").strip()
    if not value:
        raise DataKeyError(phrase(gettext_noop("%(name)s is not set."), name=name), code="data_key_missing")
    raw = None
    if len(value) in (32, 48, 64) and all(c in "0123456789abcdefABCDEF" for c in value):
        raw = bytes.fromhex(value)
    else:
        try:
            raw = base64.b64decode(value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4), validate=True)
        except (binascii.Error, ValueError):
            raw = None
    if raw is None or len(raw) not in KEY_SIZES:
        raise DataKeyError(
            phrase(
                gettext_noop("%(name)s must be 16, 24 or 32 random bytes written as hex or base64; make one with: %(command)s"),
                name=name,
                command='python -c "import secrets, base64; print(base64.b64encode(secrets.token_bytes(32)).decode())"',
            ),
            code="data_key_malformed",
        )
    return raw


def key_id(key: bytes) -> str:
    """A check value that names a key without revealing it (stored with each encrypted version)."""
    return hmac.new(key, b"lepton data key check", hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True)
class KeyRing:
    """The current data key (encrypts, and keys the masking hash) and older ones (decrypt only)."""

    current: bytes
    previous: tuple[bytes, ...] = field(default_factory=tuple)

    @classmethod
    def from_text(cls, current: str, previous: Iterable[str] = ()) -> KeyRing:
        old = tuple(parse_key(p, "LEPTON_DATA_KEY_PREVIOUS") for p in previous if p and p.strip())
        return cls(parse_key(current), old)

    @property
    def current_id(self) -> str:
        return key_id(self.current)

    def by_id(self) -> dict[str, bytes]:
        return {key_id(k): k for k in (*self.previous, self.current)}

    def mask_key(self) -> bytes:
        return hmac.new(self.current, b"lepton column mask", hashlib.sha256).digest()


def _aesgcm(key: bytes):
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


def _kms_class():
    import pyarrow.parquet.encryption as pe

    class _RingKms(pe.KmsClient):
        """Wraps pyarrow's data keys with AES-GCM under the ring's keys: `<key id>:<base64 nonce+ciphertext>`."""

        def __init__(self, ring: KeyRing):
            super().__init__()
            self.ring = ring

        def wrap_key(self, key_bytes, master_key_identifier):
            nonce = os.urandom(12)
            sealed = _aesgcm(self.ring.current).encrypt(nonce, bytes(key_bytes), master_key_identifier.encode())
            return f"{self.ring.current_id}:{base64.b64encode(nonce + sealed).decode()}"

        def unwrap_key(self, wrapped_key, master_key_identifier):
            from cryptography.exceptions import InvalidTag

            kid, _, body = str(wrapped_key).partition(":")
            key = self.ring.by_id().get(kid)
            if key is None:
                raise DataKeyError(
                    phrase(gettext_noop("the file was encrypted with data key %(key)s, which is not configured"), key=kid),
                    "data_key_wrong",
                )
            data = base64.b64decode(body)
            try:
                return _aesgcm(key).decrypt(data[:12], data[12:], master_key_identifier.encode())
            except InvalidTag:
                raise DataKeyError(
                    phrase(gettext_noop("data key %(key)s does not open this file"), key=kid), "data_key_wrong"
                ) from None

    return _RingKms


def _factory(ring: KeyRing):
    # A new factory per file: pyarrow caches unwrapped keys per factory, and a rotated ring
    # must not be answered from a cache built with the old one.
    import pyarrow.parquet.encryption as pe

    kms = _kms_class()
    return pe.CryptoFactory(lambda _config: kms(ring)), pe.KmsConnectionConfig()


def encryption_properties(columns: Iterable[str], ring: KeyRing):
    """File encryption properties: `columns` and the footer encrypted with the ring's current key."""
    import pyarrow.parquet.encryption as pe

    factory, config = _factory(ring)
    return factory.file_encryption_properties(
        config,
        pe.EncryptionConfiguration(
            footer_key=MASTER_KEY_ID,
            column_keys={MASTER_KEY_ID: sorted(columns)},
            plaintext_footer=False,
            double_wrapping=False,
            cache_lifetime=datetime.timedelta(minutes=5),
        ),
    )


def decryption_properties(ring: KeyRing):
    import pyarrow.parquet.encryption as pe

    factory, config = _factory(ring)
    return factory.file_decryption_properties(config, pe.DecryptionConfiguration(cache_lifetime=datetime.timedelta(minutes=5)))


def open_parquet(path: str, ring: KeyRing | None, *, encrypted: bool) -> pq.ParquetFile:
    """The stored file, decrypted with the ring when it is encrypted; DataKeyError when that fails."""
    if not encrypted:
        return pq.ParquetFile(path)
    if ring is None:
        raise DataKeyError(phrase(gettext_noop("%(name)s is not set."), name="LEPTON_DATA_KEY"), code="data_key_missing")
    try:
        return pq.ParquetFile(path, decryption_properties=decryption_properties(ring))
    except DataKeyError:
        raise
    except (OSError, pa.ArrowException) as exc:
        raise DataKeyError(
            phrase(gettext_noop("the file cannot be decrypted with the configured data keys (%(error)s)"), error=str(exc)),
            "data_key_wrong",
        ) from None


def encrypt_file(
    source: str, target: str, columns: Iterable[str], ring: KeyRing, *, source_ring: KeyRing | None = None, encrypted=False
) -> None:
    """Write `source` again to `target` with `columns` (stored names) encrypted under the ring's current key.

    `encrypted` says whether `source` is itself encrypted (then opened with `source_ring`, or `ring`).
    """
    reader = open_parquet(source, source_ring or ring, encrypted=encrypted)
    present = [c for c in columns if c in reader.schema_arrow.names]
    properties = encryption_properties(present, ring)
    with pq.ParquetWriter(target, reader.schema_arrow, compression="zstd", encryption_properties=properties) as writer:
        for batch in reader.iter_batches(batch_size=BATCH_ROWS):
            writer.write_table(pa.Table.from_batches([batch], schema=reader.schema_arrow))


def hash_values(array: pa.Array | pa.ChunkedArray, mask_key: bytes) -> pa.Array:
    """Keyed, truncated HMAC-SHA256 of each value as text; nulls stay null."""
    import pyarrow.compute as pc

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    try:
        text = pc.cast(array, pa.string())
    except pa.ArrowException:
        text = pa.array([None if v is None else str(v) for v in array.to_pylist()], type=pa.string())
    out = []
    for value in text.to_pylist():
        if value is None:
            out.append(None)
        else:
            out.append(hmac.new(mask_key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:HASH_HEX_DIGITS])
    return pa.array(out, type=pa.string())


def rewrite(
    source: str,
    target: str,
    ring: KeyRing | None,
    *,
    encrypted: bool,
    hide: Iterable[str] = (),
    hashed: Iterable[str] = (),
) -> list[str]:
    """A plain Parquet copy of `source` with `hide` columns dropped and `hashed` columns hashed.

    Returns the stored column names of the copy. The mask key comes from the ring's current key,
    so a ring is needed whenever something is hashed.
    """
    reader = open_parquet(source, ring, encrypted=encrypted)
    hide, hashed = set(hide), set(hashed)
    if hashed and ring is None:
        raise DataKeyError(phrase(gettext_noop("%(name)s is not set."), name="LEPTON_DATA_KEY"), code="data_key_missing")
    mask_key = ring.mask_key() if hashed else b""
    fields = []
    for f in reader.schema_arrow:
        if f.name in hide:
            continue
        fields.append(pa.field(f.name, pa.string()) if f.name in hashed else f)
    schema = pa.schema(fields, metadata=reader.schema_arrow.metadata)
    kept = [f.name for f in fields]
    with pq.ParquetWriter(target, schema, compression="zstd") as writer:
        for batch in reader.iter_batches(batch_size=BATCH_ROWS):
            columns = [hash_values(batch.column(name), mask_key) if name in hashed else batch.column(name) for name in kept]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))
    return kept
