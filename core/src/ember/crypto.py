"""Encryption callbacks for cached topology (OpenVINO's ``CACHE_ENCRYPTION_CALLBACKS``).

With ``config={"CACHE_ENCRYPTION_CALLBACKS": callbacks}`` a device that lists ``ENCRYPTION`` in its
``OPTIMIZATION_CAPABILITIES`` writes the model's topology through ``callbacks.encrypt`` when it
exports, and reads it back through ``callbacks.decrypt``. The callbacks may be given as an
``(encrypt, decrypt)`` pair, a list as in OpenVINO's Python snippets, or an
:class:`EncryptionCallbacks`. OpenVINO's own example is a XOR; :func:`aes_gcm_callbacks` gives
authenticated encryption instead, so that a blob written with another key is refused rather than
decrypted into garbage.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, NamedTuple

from ember.errors import BlobFormatError, PropertyValueError

Transform = Callable[[bytes], bytes]

_NONCE_SIZE = 12
_ASSOCIATED_DATA = b"ember topology v1"


class EncryptionCallbacks(NamedTuple):
    """A pair of bytes-to-bytes functions; ``decrypt(encrypt(data)) == data``."""

    encrypt: Transform
    decrypt: Transform


def as_callbacks(value: Any) -> EncryptionCallbacks:
    """Normalise what a user passed as ``CACHE_ENCRYPTION_CALLBACKS``.

    :raises PropertyValueError: for anything but two callables.
    """
    if isinstance(value, EncryptionCallbacks):
        return value
    if isinstance(value, list | tuple) and len(value) == 2 and all(map(callable, value)):
        return EncryptionCallbacks(value[0], value[1])
    encrypt, decrypt = getattr(value, "encrypt", None), getattr(value, "decrypt", None)
    if callable(encrypt) and callable(decrypt):
        return EncryptionCallbacks(encrypt, decrypt)
    raise PropertyValueError(
        "CACHE_ENCRYPTION_CALLBACKS must be an (encrypt, decrypt) pair of bytes -> bytes "
        f"functions, not {value!r}"
    )


def aes_gcm_callbacks(key: bytes) -> EncryptionCallbacks:
    """Authenticated callbacks (AES-GCM, a fresh random nonce per blob) from a 16, 24 or 32 byte
    key. ``decrypt`` raises :class:`ember.errors.BlobFormatError` for data that was not encrypted
    with this key or was changed since."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if len(key) not in (16, 24, 32):
        raise PropertyValueError(f"an AES key has 16, 24 or 32 bytes, not {len(key)}")
    cipher = AESGCM(key)

    def encrypt(data: bytes) -> bytes:
        nonce = os.urandom(_NONCE_SIZE)
        return nonce + cipher.encrypt(nonce, bytes(data), _ASSOCIATED_DATA)

    def decrypt(data: bytes) -> bytes:
        data = bytes(data)
        try:
            return cipher.decrypt(data[:_NONCE_SIZE], data[_NONCE_SIZE:], _ASSOCIATED_DATA)
        except (InvalidTag, ValueError) as exc:
            raise BlobFormatError("topology does not decrypt with this key") from exc

    return EncryptionCallbacks(encrypt, decrypt)
