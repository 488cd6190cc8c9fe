"""Password hashing, signed session cookies, CSRF tokens and API-key material."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

API_KEY_PREFIX = "vt_live_"
_hasher = PasswordHasher()
# Verified against when an account does not exist, so both paths cost the same time.
_DUMMY_HASH = _hasher.hash("not-a-real-password-" + secrets.token_hex(8))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def account_hash(secret_key: str, email: str) -> str:
    """A keyed hash of an e-mail for throttling records, so they hold no address in the clear."""
    return hmac.new(secret_key.encode(), email.strip().lower().encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class SessionClaims:
    session_id: uuid.UUID
    user_id: uuid.UUID


class SessionSigner:
    def __init__(self, secret_key: str, max_age_seconds: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="vibethink.session")
        self.max_age_seconds = max_age_seconds

    def dumps(self, claims: SessionClaims) -> str:
        return self._serializer.dumps({"sid": str(claims.session_id), "uid": str(claims.user_id)})

    def loads(self, token: str) -> SessionClaims:
        """Raises `SignatureExpired` for an old cookie and `BadSignature` for a forged one."""
        data = self._serializer.loads(token, max_age=self.max_age_seconds)
        try:
            return SessionClaims(session_id=uuid.UUID(data["sid"]), user_id=uuid.UUID(data["uid"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise BadSignature("malformed session") from exc


def csrf_token(secret_key: str, session_id: uuid.UUID | str) -> str:
    """Bound to the session, so a token from another session (or none) is refused."""
    return hmac.new(secret_key.encode(), f"csrf:{session_id}".encode(), hashlib.sha256).hexdigest()


def csrf_matches(secret_key: str, session_id: uuid.UUID | str, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(csrf_token(secret_key, session_id), presented)


@dataclass(frozen=True, slots=True)
class NewApiKey:
    key_id: str
    secret_hash: str
    plaintext: str


def generate_api_key() -> NewApiKey:
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    plaintext = f"{API_KEY_PREFIX}{key_id}_{secret}"
    return NewApiKey(key_id=key_id, secret_hash=api_key_hash(plaintext), plaintext=plaintext)


def api_key_hash(plaintext: str) -> str:
    # The key carries 256 bits of randomness, so a fast hash is enough (unlike passwords).
    return hashlib.sha256(plaintext.encode()).hexdigest()


def parse_api_key(plaintext: str) -> str | None:
    """The key's lookup id, or None if the text is not shaped like one of our keys."""
    if not plaintext.startswith(API_KEY_PREFIX):
        return None
    key_id, sep, secret = plaintext[len(API_KEY_PREFIX) :].partition("_")
    if not sep or len(key_id) != 16 or len(secret) < 32:
        return None
    return key_id


__all__ = [
    "BadSignature",
    "SignatureExpired",
]
