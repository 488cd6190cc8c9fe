"""The embedded server's shared buffers: set once for its next start, never over a setting made."""

from __future__ import annotations

import asyncpg
from sqlalchemy.engine import URL

from vibethink.core.database import _asyncpg_args, _size_embedded_buffers, embedded_shared_buffers_mb

MADE = (
    "SELECT setting FROM pg_file_settings WHERE name = 'shared_buffers'"
    " AND sourcefile LIKE '%postgresql.auto.conf'"
)


def test_a_quarter_of_the_memory_between_the_default_and_a_gigabyte() -> None:
    assert 128 <= embedded_shared_buffers_mb() <= 1024


async def test_it_is_set_once_and_a_setting_made_by_hand_stays(test_owner_url: URL) -> None:
    url = test_owner_url.set(database="postgres")
    conn = await asyncpg.connect(**_asyncpg_args(url))
    try:
        before = await conn.fetchval(MADE)
        try:
            await conn.execute("ALTER SYSTEM RESET shared_buffers")
            assert await conn.fetchval(MADE) is None
            # Called from a thread of its own by the code that starts the server; here inside a loop.
            _size_embedded_buffers(url)
            assert await conn.fetchval(MADE) == f"{embedded_shared_buffers_mb()}MB"
            await conn.execute("ALTER SYSTEM SET shared_buffers = '256MB'")
            _size_embedded_buffers(url)
            assert await conn.fetchval(MADE) == "256MB"
        finally:
            if before is None:
                await conn.execute("ALTER SYSTEM RESET shared_buffers")
            else:
                await conn.execute(f"ALTER SYSTEM SET shared_buffers = '{before}'")
    finally:
        await conn.close()
