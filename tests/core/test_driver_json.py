"""The driver pool's JSON and JSONB codecs (orjson, binary form) against the real database."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import URL

from vibethink.core.database import Database, usable_cores
from vibethink.core.settings import Settings

VALUES: list[Any] = [
    {"content": "¿Quién ganó? Pelé 🏆", "n": 3, "score": 0.125, "ok": True, "none": None},
    [["FAN", "hola"], ["TWIN", 'line\nbreak "quoted" \\ back']],
    {"big": 2**70, "negative": -(2**65), "nested": {"list": [1, 2.5, "x"]}},
    "a JSON string",
    12345678901234567890123,
    {"edge": -9999999999999999999, "u64": 18446744073709551615, "i64": -(2**63)},
    {"passage": "Messi 2022 " * 400, "n": 9999999999999999999},
    [],
    {},
]


@pytest.mark.parametrize("kind", ["jsonb", "json"])
@pytest.mark.parametrize("value", VALUES)
async def test_values_go_in_and_come_back_unchanged(db: Database, kind: str, value: Any) -> None:
    pool = await db.driver_pool()
    async with pool.acquire() as conn:
        assert await conn.fetchval(f"SELECT $1::{kind}", value) == value


async def test_what_postgresql_writes_reads_as_the_standard_library_reads_it(db: Database) -> None:
    pool = await db.driver_pool()
    async with pool.acquire() as conn:
        # Integers past 64 bits stay exact; a number past a double's range is still read.
        assert await conn.fetchval("SELECT '{\"id\": 123456789012345678901234567890}'::jsonb") == {
            "id": 123456789012345678901234567890
        }
        assert await conn.fetchval("SELECT '[1e400]'::json") == [float("inf")]
        assert await conn.fetchval("SELECT jsonb_build_object('a', 1, 'b', 'é')") == {"a": 1, "b": "é"}


async def test_keys_that_are_not_strings_are_written_as_strings(db: Database) -> None:
    pool = await db.driver_pool()
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT $1::jsonb", {1: "one", 2: "two"}) == {"1": "one", "2": "two"}


async def test_a_value_json_cannot_hold_is_refused(db: Database) -> None:
    pool = await db.driver_pool()
    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.DataError, match="not JSON serializable"):
            await conn.fetchval("SELECT $1::jsonb", {"x": object()})


@pytest.mark.parametrize(("configured", "expected"), [(0, 2 * usable_cores()), (3, 3)])
async def test_the_chat_pool_is_sized_to_the_cores_unless_configured(
    test_settings: Settings, test_owner_url: URL, configured: int, expected: int
) -> None:
    database = Database(test_settings.model_copy(update={"chat_pool_size": configured}), owner=test_owner_url)
    try:
        chat, driver = await database.chat_pool(), await database.driver_pool()
        assert chat is not driver
        assert chat.get_max_size() == expected
        async with chat.acquire() as conn:
            # Decoded like the driver pool's, and as the app role: no row of any tenant without a context.
            assert await conn.fetchval("SELECT $1::jsonb", {"n": 1}) == {"n": 1}
            assert await conn.fetchval("SELECT current_user") == test_settings.app_db_role
            assert await conn.fetchval("SELECT count(*) FROM conversations") == 0
    finally:
        await database.dispose()
