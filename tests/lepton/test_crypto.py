"""lepton.crypto: stored credentials are encrypted with rotating Fernet keys."""

import pytest
from cryptography.fernet import Fernet

from lepton.crypto import CredentialError, decrypt, encrypt, rotate

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


@pytest.mark.parametrize("text", ["s3cret", "密码-温度-Ä€", "", "a" * 10_000])
def test_round_trip_keeps_the_text(settings, text):
    settings.LEPTON_ENCRYPTION_KEYS = [NEW_KEY]
    assert decrypt(encrypt(text)) == text


def test_token_does_not_contain_the_plaintext(settings):
    settings.LEPTON_ENCRYPTION_KEYS = [NEW_KEY]
    token = encrypt("hunter2-password")
    assert "hunter2" not in token
    assert token.isascii()
    assert encrypt("hunter2-password") != token  # a fresh IV each time


def test_old_key_second_in_the_list_still_decrypts(settings):
    settings.LEPTON_ENCRYPTION_KEYS = [OLD_KEY]
    old_token = encrypt("before rotation")
    settings.LEPTON_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    assert decrypt(old_token) == "before rotation"


def test_encrypt_uses_the_first_key(settings):
    settings.LEPTON_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    token = encrypt("after rotation")
    assert Fernet(NEW_KEY).decrypt(token.encode()) == b"after rotation"
    settings.LEPTON_ENCRYPTION_KEYS = [NEW_KEY]
    assert decrypt(token) == "after rotation"


def test_rotate_moves_a_token_to_the_first_key(settings):
    settings.LEPTON_ENCRYPTION_KEYS = [OLD_KEY]
    token = encrypt("rotate me")
    settings.LEPTON_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    rotated = rotate(token)
    assert Fernet(NEW_KEY).decrypt(rotated.encode()) == b"rotate me"
    settings.LEPTON_ENCRYPTION_KEYS = [OLD_KEY]
    with pytest.raises(CredentialError):
        rotate(encrypt("x")[:-4] + "AAAA")
    with pytest.raises(CredentialError):
        decrypt(rotated)


def test_token_from_a_removed_key_raises_credential_error(settings):
    settings.LEPTON_ENCRYPTION_KEYS = [OLD_KEY]
    token = encrypt("gone")
    settings.LEPTON_ENCRYPTION_KEYS = [NEW_KEY]
    with pytest.raises(CredentialError, match="LEPTON_ENCRYPTION_KEYS"):
        decrypt(token)


@pytest.mark.parametrize("token", ["not a token", "", "gAAAAA", "密码"])
def test_garbage_token_raises_credential_error(settings, token):
    settings.LEPTON_ENCRYPTION_KEYS = [NEW_KEY]
    with pytest.raises(CredentialError, match="cannot be decrypted"):
        decrypt(token)


def test_without_keys_a_key_is_derived_from_secret_key(settings):
    settings.LEPTON_ENCRYPTION_KEYS = []
    settings.SECRET_KEY = "first-secret-key-for-the-test"
    token = encrypt("derived")
    assert decrypt(token) == "derived"
    settings.LEPTON_ENCRYPTION_KEYS = [NEW_KEY]  # configured keys replace the derived one
    with pytest.raises(CredentialError):
        decrypt(token)


def test_derived_key_differs_for_another_secret_key(settings):
    settings.LEPTON_ENCRYPTION_KEYS = []
    settings.SECRET_KEY = "first-secret-key-for-the-test"
    token = encrypt("derived")
    settings.SECRET_KEY = "second-secret-key-for-the-test"
    with pytest.raises(CredentialError, match="SECRET_KEY changed"):
        decrypt(token)
    settings.SECRET_KEY = "first-secret-key-for-the-test"
    assert decrypt(token) == "derived"


def test_a_key_that_is_not_a_fernet_key_is_named(settings):
    settings.LEPTON_ENCRYPTION_KEYS = [NEW_KEY, "too-short"]
    with pytest.raises(CredentialError, match="entry 2 is not a Fernet key"):
        encrypt("x")


def test_without_the_setting_at_all_the_derived_key_is_used(settings):
    if hasattr(settings, "LEPTON_ENCRYPTION_KEYS"):
        del settings.LEPTON_ENCRYPTION_KEYS
    settings.SECRET_KEY = "first-secret-key-for-the-test"
    assert decrypt(encrypt("no setting")) == "no setting"
