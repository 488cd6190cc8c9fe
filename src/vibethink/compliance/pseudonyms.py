"""Pseudonyms for people named in evidence: a per-person secret key that can be destroyed.

Evidence never holds a person's identifier, only `p_` + HMAC(person key, identifier). The person key
lives in `compliance_person_keys` under a keyed hash of the identifier; erasing a person deletes that
row, after which no one can link the pseudonym back to them, and the signed chain stays intact.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import uuid
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.compliance import driver

PREFIX = "p_"


def person_hash(pepper: bytes, tenant_id: uuid.UUID, identifier: str) -> str:
    """Where a person's key is filed: keyed by the platform secret, so the table alone reveals no one."""
    message = f"{tenant_id}:{identifier.strip().lower()}".encode()
    return hmac.new(pepper, message, hashlib.sha256).hexdigest()


def pseudonym(secret: bytes, identifier: str) -> str:
    digest = hmac.new(secret, identifier.strip().lower().encode(), hashlib.sha256).hexdigest()
    return PREFIX + digest[:20]


_RESOLVE = """
    WITH wanted AS (
      SELECT * FROM unnest($2::varchar[], $3::bytea[]) AS w(person_hash, secret)
    ), created AS (
      INSERT INTO compliance_person_keys (tenant_id, person_hash, secret)
      SELECT $1, person_hash, secret FROM wanted
      ON CONFLICT DO NOTHING
      RETURNING person_hash, secret
    )
    SELECT person_hash, secret FROM created
    UNION ALL
    SELECT k.person_hash, k.secret FROM compliance_person_keys k
     WHERE k.tenant_id = $1 AND k.person_hash = ANY($2::varchar[])
    """
_KEYS = (
    "SELECT person_hash, secret FROM compliance_person_keys"
    " WHERE tenant_id = $1 AND person_hash = ANY($2::varchar[])"
)


async def resolve(
    session: AsyncSession | driver.Bound, pepper: bytes, tenant_id: uuid.UUID, identifiers: Iterable[str]
) -> dict[str, str]:
    """Each identifier's pseudonym, creating person keys as needed, in one round trip."""
    wanted = sorted({i for i in identifiers if i})
    if not wanted:
        return {}
    hashes = {i: person_hash(pepper, tenant_id, i) for i in wanted}
    unique_hashes = sorted(set(hashes.values()))
    rows = await driver.fetch(
        session, _RESOLVE, tenant_id, unique_hashes, [os.urandom(32) for _ in unique_hashes]
    )
    secrets = {r[0]: bytes(r[1]) for r in rows}
    missing = [h for h in unique_hashes if h not in secrets]
    if missing:
        # Made at the same moment by a transaction that committed after this statement's snapshot was
        # taken (its insert waited for that one, then did nothing): a new statement sees them.
        rows = await driver.fetch(session, _KEYS, tenant_id, missing)
        secrets |= {r[0]: bytes(r[1]) for r in rows}
    return {i: pseudonym(secrets[h], i) for i, h in hashes.items()}


async def erase(session: AsyncSession, pepper: bytes, tenant_id: uuid.UUID, identifier: str) -> bool:
    """Destroys the person's key: their pseudonyms in evidence can no longer be linked to them."""
    result = await session.execute(
        text("DELETE FROM compliance_person_keys WHERE tenant_id = :t AND person_hash = :h RETURNING 1"),
        {"t": tenant_id, "h": person_hash(pepper, tenant_id, identifier)},
    )
    return result.first() is not None
