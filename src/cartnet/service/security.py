"""Passwords, bearer tokens, credential seals and the patient-identity vault.

Passwords are kept as argon2id hashes (RFC 9106) with OWASP's Password Storage Cheat
Sheet profile m=19 MiB, t=2, p=1 (:data:`ARGON2_PROFILE`): one of its equally strong
recommended settings, the one whose memory a bounded number of concurrent checks
(:mod:`cartnet.service.throttle`) keeps small; one lane, because several logins, not
one, use the cores. Hashes made with other parameters still verify (argon2 stores
them in the hash).

A bearer token or portal session is 32 random bytes shown once; the database keeps an
HMAC-SHA256 of it under a key derived from the signing key, which is not in the
database: a token row inserted by hand (with write access but no key) opens nothing.
An account's credentials are sealed the same way (:func:`seal`), so a password hash
or role swapped in the database is refused at login and at signing.
Patient identity is encrypted with Fernet (AES-128-CBC with HMAC-SHA256) under the
configured key; rows hold only the token.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken

TOKEN_BYTES = 32
ARGON2_PROFILE = (2, 19 * 1024, 1)
"""argon2id time cost, memory (KiB), parallelism: OWASP Password Storage Cheat Sheet's
"m=19456 (19 MiB), t=2, p=1"."""
_hasher = PasswordHasher(
    time_cost=ARGON2_PROFILE[0],
    memory_cost=ARGON2_PROFILE[1],
    parallelism=ARGON2_PROFILE[2],
    type=Type.ID,
)


_PRODUCTION_HASHER = _hasher
"""The profile above, kept for the dummy hash even while tests or the demo swap in a
cheap ``_hasher``: an unknown user must cost what a real one costs."""


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against for unknown users; made on first use, not at import
    (an argon2 hash costs tens of milliseconds that every command would pay)."""
    return _PRODUCTION_HASHER.hash("cartnet: no such user")


def hash_password(password: str) -> str:
    """The argon2id hash to store for ``password``."""
    return _hasher.hash(password)


def password_matches(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; an unknown user costs the same time as a known one."""
    try:
        return _hasher.verify(stored_hash or _dummy_hash(), password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    """A new bearer token (URL-safe text, 256 bits).

    Never starting with ``-``: a command line would read such a token as an option
    (``cartnet users enrol -0Xy...``), one token in 64 otherwise.
    """
    while (token := secrets.token_urlsafe(TOKEN_BYTES)).startswith("-"):
        pass
    return token


def derived_key(signing_key: str, purpose: str) -> bytes:
    """A key for one purpose, derived from the signing key (HMAC-SHA256, as in HKDF's
    extract step): a key for tokens says nothing of the key that seals signatures."""
    return hmac.new(signing_key.encode(), f"cartnet {purpose} v1".encode(), hashlib.sha256).digest()


def token_hash(token: str, key: bytes) -> str:
    """What the database keeps of a token: its HMAC-SHA256 under the token key."""
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


def seal(key: bytes, fields: Mapping[str, object]) -> str:
    """HMAC-SHA256 of ``fields`` (canonical JSON) under ``key``."""
    data = json.dumps(dict(fields), sort_keys=True, separators=(",", ":"), default=str)
    return hmac.new(key, data.encode(), hashlib.sha256).hexdigest()


def fingerprint(value: str | None) -> str | None:
    """What the audit trail records of a password hash: a SHA-256 prefix, not the hash
    (the trail is kept for decades and shown to inspectors; a hash could be cracked)."""
    return None if value is None else "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:32]


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
