"""Ed25519 signing keys for the evidence ledger, held outside the database.

The active private key comes from `VIBETHINK_COMPLIANCE_SIGNING_KEY` (base64 of a 32-byte seed) or
from a key directory (default `var/compliance/keys`): `<key id>.key` (seed, mode 0600), `<key id>.pub`
and `active`. Rotation writes a new key, points `active` at it and deletes the old private key;
every public key stays, so old records keep verifying. A key id is `ed25519:` plus the first 16 hex
digits of the SHA-256 of the raw public key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from vibethink.core.settings import Settings

try:
    from nacl.bindings import crypto_sign as _sodium_sign
    from nacl.bindings import crypto_sign_open as _sodium_open
    from nacl.bindings import crypto_sign_seed_keypair as _sodium_keypair
    from nacl.exceptions import BadSignatureError
except ImportError:  # pragma: no cover - PyNaCl is a dependency; the fallback keeps the verifier portable
    _sodium_open = None  # type: ignore[assignment]
    _sodium_sign = None  # type: ignore[assignment]
    _sodium_keypair = None  # type: ignore[assignment]

    class BadSignatureError(Exception):  # type: ignore[no-redef]
        pass


class KeyError_(ValueError):
    """A key is missing or malformed."""


def key_id_of(public: bytes) -> str:
    return "ed25519:" + hashlib.sha256(public).hexdigest()[:16]


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def verify_signature(public: bytes, signature: bytes, data: bytes) -> bool:
    """Ed25519 verification; libsodium (PyNaCl) when present: the verifier's hot path, ~2.5× faster."""
    if _sodium_open is not None:
        if len(signature) != 64 or len(public) != 32:
            return False
        try:
            _sodium_open(signature + data, public)
        except (BadSignatureError, ValueError, TypeError):
            return False
        return True
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class SigningKey:
    key_id: str
    private: Ed25519PrivateKey
    public: bytes
    # libsodium's expanded secret key (seed || public key) when PyNaCl is there: the writer's hot path.
    sodium_secret: bytes | None = None

    def sign(self, data: bytes) -> bytes:
        """Ed25519 (RFC 8032): deterministic, so libsodium and OpenSSL give the same 64 bytes."""
        if self.sodium_secret is not None:
            return _sodium_sign(data, self.sodium_secret)[:64]
        return self.private.sign(data)


def _from_seed(seed: bytes) -> SigningKey:
    if len(seed) != 32:
        raise KeyError_("an Ed25519 seed is 32 bytes")
    private = Ed25519PrivateKey.from_private_bytes(seed)
    public = raw_public(private)
    sodium_secret = None
    if _sodium_keypair is not None:
        sodium_public, sodium_secret = _sodium_keypair(seed)
        if sodium_public != public:  # pragma: no cover - both implement RFC 8032
            raise KeyError_("libsodium and OpenSSL disagree on the public key of a seed")
    return SigningKey(key_id_of(public), private, public, sodium_secret)


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyError_(f"{what} is not valid base64") from exc


class KeyStore:
    """The active signing key and every public key ever used."""

    def __init__(self, directory: Path, *, env_seed: str | None = None) -> None:
        self.directory = directory
        self.env_seed = env_seed
        self._lock = threading.Lock()
        self._active: SigningKey | None = None
        self._active_stamp: float | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyStore:
        directory = settings.compliance_keys_dir or settings.data_dir / "compliance" / "keys"
        return cls(directory.resolve(), env_seed=settings.compliance_signing_key)

    def _active_file(self) -> Path:
        return self.directory / "active"

    def _stamp(self) -> float | None:
        try:
            return self._active_file().stat().st_mtime
        except FileNotFoundError:
            return None

    def active(self) -> SigningKey:
        """The signing key; created on first use when neither the environment nor the folder has one."""
        if self.env_seed:
            if self._active is None:
                self._active = _from_seed(_b64(self.env_seed, "VIBETHINK_COMPLIANCE_SIGNING_KEY"))
                self._write_public(self._active)
            return self._active
        with self._lock:
            stamp = self._stamp()
            if self._active is not None and stamp == self._active_stamp:
                return self._active
            if stamp is None:
                key = self._generate()
            else:
                key_id = self._active_file().read_text().strip()
                seed_file = self.directory / f"{key_id.replace(':', '_')}.key"
                if not seed_file.exists():
                    raise KeyError_(f"the active key {key_id} has no private key file")
                key = _from_seed(_b64(seed_file.read_text(), str(seed_file)))
                if key.key_id != key_id:
                    raise KeyError_(f"{seed_file} does not hold key {key_id}")
            self._active, self._active_stamp = key, self._stamp()
            return key

    def _write_public(self, key: SigningKey) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        public_file = self.directory / f"{key.key_id.replace(':', '_')}.pub"
        if not public_file.exists():
            public_file.write_text(base64.b64encode(key.public).decode() + "\n")

    def _generate(self) -> SigningKey:
        key = _from_seed(os.urandom(32))
        self.directory.mkdir(parents=True, exist_ok=True)
        self._write_public(key)
        seed = key.private.private_bytes_raw()
        seed_file = self.directory / f"{key.key_id.replace(':', '_')}.key"
        fd = os.open(seed_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(base64.b64encode(seed).decode() + "\n")
        tmp = self.directory / "active.tmp"
        tmp.write_text(key.key_id + "\n")
        tmp.replace(self._active_file())
        return key

    def rotate(self) -> SigningKey:
        """A new active key; the old private key is deleted, its public key kept."""
        if self.env_seed:
            raise KeyError_("the signing key comes from VIBETHINK_COMPLIANCE_SIGNING_KEY: rotate it there")
        with self._lock:
            old = self._active_file().read_text().strip() if self._active_file().exists() else None
            key = self._generate()
            if old and old != key.key_id:
                (self.directory / f"{old.replace(':', '_')}.key").unlink(missing_ok=True)
            self._active, self._active_stamp = key, self._stamp()
            return key

    def public_keys(self) -> dict[str, bytes]:
        """Every public key this platform has signed with, by key id."""
        if self.env_seed:
            self.active()
        found: dict[str, bytes] = {}
        if self.directory.exists():
            for path in sorted(self.directory.glob("*.pub")):
                public = _b64(path.read_text(), str(path))
                found[key_id_of(public)] = public
        return found


_stores: dict[tuple[Path, str | None], KeyStore] = {}
_by_settings: dict[tuple[Path | None, Path, str | None], KeyStore] = {}


def key_store(settings: Settings) -> KeyStore:
    """One store per key folder and seed in this process, so the active key is read once (and the
    folder's path resolved once per setting, not on every request)."""
    wanted = (settings.compliance_keys_dir, settings.data_dir, settings.compliance_signing_key)
    found = _by_settings.get(wanted)
    if found is None:
        store = KeyStore.from_settings(settings)
        found = _by_settings[wanted] = _stores.setdefault((store.directory, store.env_seed), store)
    return found
