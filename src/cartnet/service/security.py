"""Passwords, bearer tokens and the patient-identity vault.

Passwords are kept as argon2id hashes (``argon2-cffi``'s defaults, RFC 9106). A
bearer token is 32 random bytes shown once; the database keeps its SHA-256, so a
copy of the tokens table opens no session. Patient identity is encrypted with Fernet
(AES-128-CBC with HMAC-SHA256) under the configured key; rows hold only the token.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken

TOKEN_BYTES = 32
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("cartnet: no such user")


def hash_password(password: str) -> str:
    """The argon2id hash to store for ``password``."""
    return _hasher.hash(password)


def password_matches(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; an unknown user costs the same time as a known one."""
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    """A new bearer token (URL-safe text, 256 bits)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """What the database keeps of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


class PatientVault:
    """Encrypts and decrypts patient identity records (JSON objects of text)."""

    def __init__(self, key: str) -> None:
        self._fernet = Fernet(key.encode())

    def seal(self, identity: Mapping[str, str | None]) -> str:
        data = json.dumps(dict(identity), sort_keys=True, separators=(",", ":")).encode()
        return self._fernet.encrypt(data).decode()

    def open(self, token: str) -> dict[str, str | None]:
        """The identity in ``token``; ``ValueError`` if the key does not open it."""
        try:
            data = self._fernet.decrypt(token.encode())
        except InvalidToken:
            raise ValueError(
                "the patient identity cannot be decrypted with the configured key"
            ) from None
        value = json.loads(data)
        if not isinstance(value, dict):
            raise ValueError("the decrypted patient identity is not a record")
        return value
