"""Field encryption of personal data at rest, and blind indexes to find it again.

A column holding personal data (an identity number, a phone number) stores the token of
:meth:`FieldCipher.encrypt`: ``v1.<key id>.<base64url(nonce + ciphertext)>``, AES-256-GCM with a
random 96-bit nonce. The key id in the token picks the key on decryption, so keys rotate without
rewriting the table: a new key becomes active for new values, old keys stay in the keyring until
every token made with them is re-encrypted. An optional context (the column name) is bound as
associated data, so a token copied into another column does not decrypt.

Encryption is randomised, so equal values give different tokens; lookups and unique constraints
use a second column with :meth:`FieldCipher.blind_index`, an HMAC-SHA256 under a separate index key.
Callers normalise a value (upper-case ``X``, the 11-digit phone form) before indexing it.

Keys are configured as strings: the keyring ``"k1:<key>,k2:<key>"`` plus the id of the active key,
and the index key, each key 32 random bytes in standard base64 (RFC 4648 section 4, with padding,
as :func:`generate_key` prints it); the URL-safe alphabet (section 5) is accepted too. Production
passes them by settings. The embedded default, without configuration, uses
:func:`development_keys`, generated once into a local file.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "DEVELOPMENT_KEYS_FILE",
    "DEVELOPMENT_KEY_ID",
    "DecryptionError",
    "FieldCipher",
    "KeyringError",
    "decode_key",
    "development_keys",
    "generate_key",
]

TOKEN_VERSION = "v1"
KEY_BYTES = 32
NONCE_BYTES = 12
_TAG_BYTES = 16
# Key ids travel in tokens separated by dots and are bound into the associated data after a NUL
# byte: neither may appear in an id.
_KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}")
_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")
_B64URL_PATTERN = re.compile(r"[A-Za-z0-9_-]*")

DEVELOPMENT_KEYS_FILE = "field-keys.json"
DEVELOPMENT_KEY_ID = "dev"


class KeyringError(ValueError):
    """The keys given to a cipher are missing or malformed (a configuration error)."""


class DecryptionError(ValueError):
    """A token that cannot be decrypted: malformed, tampered with, of another context or key."""


def generate_key() -> str:
    """A fresh random 32-byte key in standard base64, for the keyring or the index key."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def decode_key(encoded: str, *, name: str = "key") -> bytes:
    """The 32 bytes of a key in standard or URL-safe base64 (with padding).

    Raises:
        KeyringError: not base64, or not 32 bytes; the message never contains the key.
    """
    try:
        raw = base64.b64decode(encoded.strip().translate(_URLSAFE_TO_STANDARD), validate=True)
    except (binascii.Error, ValueError):
        raise KeyringError(f"{name} is not valid base64") from None
    if len(raw) != KEY_BYTES:
        raise KeyringError(f"{name} must be {KEY_BYTES} bytes, got {len(raw)}")
    return raw


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    """The bytes of unpadded base64url ``text``; ValueError unless it is the canonical form."""
    # b64decode would take "+" and "/" too, and ignores the unused low bits of the last
    # character: the alphabet check and the round trip keep one token string per ciphertext.
    if not _B64URL_PATTERN.fullmatch(text):
        raise ValueError("not base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64url_encode(data) != text:
        raise ValueError("not canonical base64url")
    return data


class FieldCipher:
    """Encrypts and decrypts field values with a rotating keyring, and computes blind indexes."""

    __slots__ = ("_active_key_id", "_aeads", "_index_key")

    def __init__(self, keys: Mapping[str, bytes], active_key_id: str, index_key: bytes) -> None:
        """A cipher over ``keys`` (key id to 32-byte key), encrypting with ``active_key_id``.

        Raises:
            KeyringError: an id or a key is malformed, or the active key is not in the keyring.
        """
        if not keys:
            raise KeyringError("the keyring is empty")
        for key_id, key in keys.items():
            if not _KEY_ID_PATTERN.fullmatch(key_id):
                raise KeyringError(f"key id {key_id!r} must be 1-32 letters, digits, '_' or '-'")
            if len(key) != KEY_BYTES:
                raise KeyringError(f"key {key_id} must be {KEY_BYTES} bytes, got {len(key)}")
        if active_key_id not in keys:
            raise KeyringError(f"active key {active_key_id!r} is not in the keyring")
        if len(index_key) < KEY_BYTES:
            raise KeyringError(f"the index key must have at least {KEY_BYTES} bytes")
        self._aeads = {key_id: AESGCM(bytes(key)) for key_id, key in keys.items()}
        self._active_key_id = active_key_id
        self._index_key = bytes(index_key)

    @classmethod
    def from_config(cls, encryption_keys: str, active_key_id: str, index_key: str) -> FieldCipher:
        """A cipher from settings: keyring ``"k1:<key>,k2:<key>"``, active key id, index key.

        Keys are 32 bytes in standard base64 with padding (URL-safe base64 is accepted too).

        Raises:
            KeyringError: the keyring string, a key or the index key is malformed.
        """
        keys: dict[str, bytes] = {}
        for position, entry in enumerate(encryption_keys.split(","), start=1):
            key_id, separator, encoded = entry.strip().partition(":")
            key_id = key_id.strip()
            if not separator or not key_id:
                raise KeyringError(f"keyring entry {position} must be written '<key id>:<key>'")
            if key_id in keys:
                raise KeyringError(f"key id {key_id!r} appears twice in the keyring")
            keys[key_id] = decode_key(encoded, name=f"key {key_id}")
        return cls(keys, active_key_id.strip(), decode_key(index_key, name="index key"))

    @classmethod
    def for_development(cls, directory: Path) -> FieldCipher:
        """The cipher of the embedded default, over the keys of :func:`development_keys`."""
        encryption_key, index_key = development_keys(directory)
        return cls(
            {DEVELOPMENT_KEY_ID: decode_key(encryption_key, name="development key")},
            DEVELOPMENT_KEY_ID,
            decode_key(index_key, name="development index key"),
        )

    @property
    def active_key_id(self) -> str:
        """The id of the key new tokens are made with."""
        return self._active_key_id

    def __repr__(self) -> str:
        # Never the key material, which would otherwise end up in logs and tracebacks.
        return f"FieldCipher(key_ids={sorted(self._aeads)}, active_key_id={self._active_key_id!r})"

    @staticmethod
    def _associated_data(key_id: str, context: str) -> bytes:
        # The header is bound too, so a token cannot be relabelled with another version or key.
        return f"{TOKEN_VERSION}\x00{key_id}\x00{context}".encode()

    def encrypt(self, plaintext: str, *, context: str = "") -> str:
        """The token of ``plaintext`` under the active key, bound to ``context`` (e.g. a column).

        Tokens are random: encrypting the same value twice gives two different tokens.
        """
        nonce = secrets.token_bytes(NONCE_BYTES)
        key_id = self._active_key_id
        ciphertext = self._aeads[key_id].encrypt(
            nonce, plaintext.encode("utf-8"), self._associated_data(key_id, context)
        )
        return f"{TOKEN_VERSION}.{key_id}.{_b64url_encode(nonce + ciphertext)}"

    def decrypt(self, token: str, *, context: str = "") -> str:
        """The plaintext of a token made by :meth:`encrypt` with the same ``context``.

        Any key of the keyring is used, so tokens made before a key rotation still decrypt.

        Raises:
            DecryptionError: the token is malformed, its key is unknown, it was tampered with or
                made for another context.
        """
        parts = token.split(".")
        if len(parts) != 3:
            raise DecryptionError("token must have the form v1.<key id>.<payload>")
        version, key_id, payload = parts
        if version != TOKEN_VERSION:
            raise DecryptionError(f"unsupported token version {version!r}")
        aead = self._aeads.get(key_id)
        if aead is None:
            raise DecryptionError(f"unknown key id {key_id!r}")
        try:
            blob = _b64url_decode(payload)
        except (binascii.Error, ValueError):
            raise DecryptionError("token payload is not base64url") from None
        if len(blob) < NONCE_BYTES + _TAG_BYTES:
            raise DecryptionError("token payload is too short")
        nonce, ciphertext = blob[:NONCE_BYTES], blob[NONCE_BYTES:]
        try:
            plaintext = aead.decrypt(nonce, ciphertext, self._associated_data(key_id, context))
        except InvalidTag:
            raise DecryptionError(
                "token failed authentication: tampered with, or of another context"
            ) from None
        try:
            return plaintext.decode("utf-8")
        except UnicodeDecodeError:
            raise DecryptionError("decrypted value is not UTF-8 text") from None

    def blind_index(self, value: str, *, purpose: str) -> str:
        """A deterministic 64-character hex HMAC-SHA256 of ``value`` for exact lookup.

        ``purpose`` (e.g. ``"customer.resident_id"``) separates the indexes of different fields,
        so equal values in two fields do not give equal indexes.

        Raises:
            ValueError: ``purpose`` is empty or contains a NUL byte (the separator).
        """
        if not purpose or "\x00" in purpose:
            raise ValueError("purpose must be non-empty and must not contain a NUL byte")
        message = f"{purpose}\x00{value}".encode()
        return hmac.new(self._index_key, message, hashlib.sha256).hexdigest()


def _read_development_keys(path: Path) -> tuple[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        encryption_key, index_key = data["encryption_key"], data["index_key"]
    except (ValueError, KeyError, TypeError):
        raise KeyringError(f"{path} is not a development keys file; delete it") from None
    if not isinstance(encryption_key, str) or not isinstance(index_key, str):
        raise KeyringError(f"{path} is not a development keys file; delete it")
    decode_key(encryption_key, name=f"encryption key of {path}")
    decode_key(index_key, name=f"index key of {path}")
    return encryption_key, index_key


def development_keys(directory: Path) -> tuple[str, str]:
    """The (encryption key, index key) of the embedded default, in standard base64.

    Generated on first use into ``<directory>/field-keys.json`` (mode 0600) and read from it
    afterwards. Never for production, which passes its keys by settings; losing the file makes
    the values encrypted with it unreadable.

    Raises:
        KeyringError: the file exists but does not hold two valid keys.
    """
    path = directory / DEVELOPMENT_KEYS_FILE
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        content = json.dumps({"encryption_key": generate_key(), "index_key": generate_key()})
        # The services of the embedded default start together: each writes a complete file of
        # its own (mkstemp creates it 0600) and links it into place, which fails if another
        # process won. Nobody reads a half-written file and nobody overwrites keys in use.
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=".field-keys-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    return _read_development_keys(path)
