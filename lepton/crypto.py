"""Encrypt credentials Lepton stores (a database import's password) with Fernet.

    token = encrypt("s3cret")        # stored in DatabaseImport.password_encrypted
    decrypt(token) == "s3cret"

Keys come from `settings.LEPTON_ENCRYPTION_KEYS`, a list of Fernet keys: the first encrypts,
every one decrypts, so a key is rotated by putting the new one first and keeping the old one
until every token has been written again. With an empty list one key is derived from
SECRET_KEY (HKDF-SHA256), so a fresh machine works; changing SECRET_KEY then makes the
stored tokens unreadable, which `CredentialError` says.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

HKDF_INFO = b"lepton credentials"


class CredentialError(Exception):
    """A stored credential cannot be decrypted, or the configured keys are not usable."""


def encrypt(text: str) -> str:
    """A Fernet token (ASCII text) for `text`, made with the first configured key."""
    if not isinstance(text, str):
        raise TypeError(f"encrypt takes text, not {type(text).__name__}.")
    return _fernet().encrypt(text.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    """The text `encrypt` was given; CredentialError when no configured key opens the token."""
    try:
        data = _fernet().decrypt(token.encode("ascii") if isinstance(token, str) else token)
    except (InvalidToken, UnicodeEncodeError, TypeError):
        raise CredentialError(
            "The stored credential cannot be decrypted with the configured keys: the key it was "
            "encrypted with was removed from LEPTON_ENCRYPTION_KEYS, or SECRET_KEY changed. "
            "Enter the password again."
        ) from None
    return data.decode("utf-8")


def rotate(token: str) -> str:
    """`token` encrypted again with the first configured key (same text); CredentialError as decrypt."""
    try:
        return _fernet().rotate(token.encode("ascii") if isinstance(token, str) else token).decode("ascii")
    except (InvalidToken, UnicodeEncodeError, TypeError):
        raise CredentialError(
            "The stored credential cannot be decrypted with the configured keys; enter the password again."
        ) from None


def _fernet() -> MultiFernet:
    # Built on each call (cheap) so that a changed setting, e.g. in a test, takes effect at once.
    keys = list(getattr(settings, "LEPTON_ENCRYPTION_KEYS", []) or [])
    if not keys:
        return MultiFernet([Fernet(_derived_key(settings.SECRET_KEY))])
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key.strip() if isinstance(key, str) else key))
        except (ValueError, TypeError):
            raise CredentialError(
                f"LEPTON_ENCRYPTION_KEYS entry {position} is not a Fernet key (32 url-safe base64-encoded bytes); "
                'make one with: python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
            ) from None
    return MultiFernet(fernets)


def _derived_key(secret: str) -> bytes:
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(secret.encode("utf-8"))
    return base64.urlsafe_b64encode(raw)
