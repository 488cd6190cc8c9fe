"""Fan identities: signed tokens for anonymous fans, the user id for signed-in ones.

A fan token binds a random fan key to one tenant and one deployment; only its signature is checked,
so a request that carries one needs no database round trip to know who and where the fan is.
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from vibethink.core.errors import InvalidFanToken

TOKEN_PREFIX: Final = "vt_fan_"  # noqa: S105 - a prefix, not a secret
# Its own salt: a session cookie or CSRF token can never pass as a fan token, nor the reverse.
SALT: Final = "vibethink.fan-token.v1"
ANON: Final = "anon:"
USER: Final = "user:"
# Tokens already verified, kept until they expire: a fan sends the same one with every message.
VERIFIED_CAPACITY: Final = 20_000


@dataclass(frozen=True, slots=True)
class Fan:
    """Who is chatting: `anon:<random>` from a fan token or `user:<uuid>` from a signed-in session."""

    fan_key: str
    tenant_id: uuid.UUID | None = None
    deployment_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    # An embed's token is bound to the host page's origin and lives minutes, not days.
    origin: str | None = None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    fan_key: str
    expires_at: datetime


class FanTokens:
    def __init__(self, secret_key: str, max_age_seconds: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt=SALT)
        self.max_age_seconds = max_age_seconds
        self._verified: dict[str, tuple[Fan, float]] = {}

    def issue(
        self,
        *,
        tenant_id: uuid.UUID,
        deployment_id: uuid.UUID,
        fan_key: str | None = None,
        origin: str | None = None,
        max_age_seconds: int | None = None,
    ) -> IssuedToken:
        key = fan_key or ANON + secrets.token_urlsafe(18)
        payload: dict[str, str | int] = {"f": key, "t": str(tenant_id), "d": str(deployment_id)}
        lifetime = min(max_age_seconds or self.max_age_seconds, self.max_age_seconds)
        expires_at = datetime.now(UTC) + timedelta(seconds=lifetime)
        if origin is not None:
            payload["o"] = origin
        if lifetime < self.max_age_seconds:
            payload["x"] = int(expires_at.timestamp())
        token = TOKEN_PREFIX + self._serializer.dumps(payload)
        return IssuedToken(token=token, fan_key=key, expires_at=expires_at)

    def read(self, token: str) -> Fan:
        """The fan a token names; InvalidFanToken when it is forged, malformed or expired."""
        known = self._verified.get(token)
        if known is not None:
            if time.time() < known[1]:
                return known[0]
            del self._verified[token]
        fan, expires_at = self._verify(token)
        if len(self._verified) >= VERIFIED_CAPACITY:
            self._verified.clear()
        self._verified[token] = (fan, expires_at)
        return fan

    def _verify(self, token: str) -> tuple[Fan, float]:
        """The fan and the moment (epoch seconds) its token stops being valid."""
        if not token.startswith(TOKEN_PREFIX):
            raise InvalidFanToken()
        try:
            payload, signed_at = self._serializer.loads(
                token[len(TOKEN_PREFIX) :], max_age=self.max_age_seconds, return_timestamp=True
            )
        except SignatureExpired as exc:
            raise InvalidFanToken("The fan token has expired; start a new chat session.") from exc
        except BadSignature as exc:
            raise InvalidFanToken() from exc
        try:
            fan_key = str(payload["f"])
            tenant_id = uuid.UUID(payload["t"])
            deployment_id = uuid.UUID(payload["d"])
            user_id = uuid.UUID(fan_key[len(USER) :]) if fan_key.startswith(USER) else None
            origin = str(payload["o"]) if "o" in payload else None
            expires = int(payload["x"]) if "x" in payload else None
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidFanToken() from exc
        expires_at = signed_at.timestamp() + self.max_age_seconds
        if expires is not None:
            if time.time() >= expires:
                raise InvalidFanToken("The fan token has expired; start a new chat session.")
            expires_at = min(expires_at, float(expires))
        fan = Fan(
            fan_key=fan_key, tenant_id=tenant_id, deployment_id=deployment_id, user_id=user_id, origin=origin
        )
        return fan, expires_at


def user_fan(user_id: uuid.UUID) -> Fan:
    return Fan(fan_key=f"{USER}{user_id}", user_id=user_id)
