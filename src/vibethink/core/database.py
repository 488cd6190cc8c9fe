"""Database URLs, the embedded PostgreSQL, engines, and tenant-scoped transactions.

Two connections exist: the *owner* (runs migrations, owns every table) and the *app* role (owns
nothing, lacks BYPASSRLS). Requests only ever use the app role; every transaction sets the RLS
context transaction-locally (`SET LOCAL` with its BEGIN, or `set_config(..., true)`) before its
first query.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import asyncpg
import orjson
from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from vibethink.core.settings import Settings

log = logging.getLogger(__name__)

APP_ROLE_DEFAULT = "vibethink_app"
DEFINER_ROLE = "vibethink_definer"
ADMIN_ROLE = "vibethink_admin"


def to_async_url(url: str | URL) -> URL:
    """Any standard `postgresql://` URL, as an asyncpg SQLAlchemy URL."""
    parsed = make_url(url) if isinstance(url, str) else url
    return parsed.set(drivername="postgresql+asyncpg")


def _start_embedded(settings: Settings) -> URL:
    import pgserver

    if _EMBEDDED:
        return make_url(_EMBEDDED[0].get_uri()).set(database=settings.database_name)

    data_dir = settings.pg_data_dir
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(str(data_dir), cleanup_mode="stop")  # type: ignore[attr-defined]
    uri = make_url(server.get_uri())
    _EMBEDDED.append(server)
    _size_embedded_buffers(uri.set(database="postgres"))
    return uri.set(database=settings.database_name)


def embedded_shared_buffers_mb() -> int:
    """Shared buffers for the embedded server: a quarter of the memory, between 128 MB
    (PostgreSQL's default) and 1 GB — enough to keep a big twin's HNSW index in memory."""
    try:
        memory_mb = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // (1024 * 1024)
    except (ValueError, OSError):
        return 128
    return max(128, min(1024, memory_mb // 4))


def _size_embedded_buffers(url: URL) -> None:
    """Gives the embedded server its shared buffers once (PostgreSQL's 128 MB default is sized for
    the smallest machines); it takes effect when the server next starts, so a server other processes
    are using is never restarted under them. A setting already made (by us or by hand) stays."""

    async def run() -> None:
        conn = await asyncpg.connect(**_asyncpg_args(url))
        try:
            made = await conn.fetchval(
                "SELECT count(*) FROM pg_file_settings WHERE name = 'shared_buffers'"
                " AND sourcefile LIKE '%postgresql.auto.conf'"
            )
            if not made:
                await conn.execute(f"ALTER SYSTEM SET shared_buffers = '{embedded_shared_buffers_mb()}MB'")
        finally:
            await conn.close()

    asyncio.run(run()) if not _loop_running() else _run_in_thread(run)


_EMBEDDED: list[Any] = []


def stop_embedded() -> None:
    """Stops the embedded server if this process started it (no-op otherwise)."""
    while _EMBEDDED:
        server = _EMBEDDED.pop()
        try:
            server.cleanup()
        except Exception:  # pragma: no cover - best effort on shutdown
            log.exception("embedded PostgreSQL did not stop cleanly")


def owner_url(settings: Settings) -> URL:
    """The owner's URL; starts the embedded server and creates the database when needed."""
    url = (
        make_url(settings.database_url).set(drivername="postgresql")
        if settings.database_url
        else _start_embedded(settings)
    )
    ensure_database(url)
    return url


def ensure_database(url: URL, *, recreate: bool = False) -> None:
    """Creates `url`'s database through the server's maintenance database if it does not exist."""

    async def run() -> None:
        import asyncpg

        name = url.database or "postgres"
        conn = await asyncpg.connect(**_asyncpg_args(url.set(database="postgres")))
        try:
            if recreate:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(run()) if not _loop_running() else _run_in_thread(run)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _run_in_thread(factory: Any) -> None:
    import threading

    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(factory())
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def _asyncpg_args(url: URL) -> dict[str, Any]:
    host = url.query.get("host") or url.host
    return {
        "user": url.username,
        "password": url.password,
        "host": host if isinstance(host, str) else None,
        "port": url.port,
        "database": url.database,
    }


def asyncpg_connect_args(url: URL) -> dict[str, Any]:
    """Keyword arguments for `asyncpg.connect` from a SQLAlchemy URL (TCP or Unix socket)."""
    return _asyncpg_args(url)


def app_url_for(settings: Settings, owner: URL) -> URL:
    if settings.app_database_url:
        return make_url(settings.app_database_url).set(drivername="postgresql")
    return owner.set(username=settings.app_db_role, password=settings.app_db_password)


@dataclass(frozen=True, slots=True)
class RlsContext:
    """What PostgreSQL's policies see for one transaction."""

    tenant_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    role: str | None = None
    is_admin: bool = False

    def settings_row(self) -> dict[str, str]:
        return {
            "tenant": str(self.tenant_id) if self.tenant_id else "",
            "user": str(self.user_id) if self.user_id else "",
            "role": self.role or "",
            "db_role": ADMIN_ROLE if self.is_admin else "none",
        }


# The admin context is a transaction-local switch to the admin role (the app role never inherits it);
# every other transaction explicitly stays the app role, whose policies are tenant-only.
SET_CONTEXT_SQL = text(
    "SELECT set_config('app.tenant_id', :tenant, true), set_config('app.user_id', :user, true),"
    " set_config('app.role', :role, true), set_config('role', :db_role, true)"
)


def sql_literal(value: str) -> str:
    """A SQL string literal that means `value` whatever `standard_conforming_strings` says."""
    if "\x00" in value:
        raise ValueError("an RLS setting cannot contain a NUL character")
    escaped = value.replace("'", "''")
    if "\\" in value:
        return "E'" + escaped.replace("\\", "\\\\") + "'"
    return f"'{escaped}'"


def array_literal(values: Iterable[object]) -> str:
    """A PostgreSQL array literal (`{"a","b"}`) of `values`' text, each element quoted: one text value
    to send or inline, where a list would make the driver check every element on every call."""
    quoted = ('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return "{" + ",".join(quoted) + "}"


def context_statement(context: RlsContext) -> str | None:
    """The settings to send with BEGIN, values inlined; None when there is nothing to set.

    `SET LOCAL` is a utility statement: no plan, no executor, no row sent back, unlike
    `SELECT set_config(...)`, whose parse, plan and result row cost more than the policy check itself
    (`bench/RESULTS.md`, RLS). A transaction starts with every `app.*` setting unset and the login
    role, so only the values that differ from that are sent.
    """
    row = context.settings_row()
    names = (("app.tenant_id", "tenant"), ("app.user_id", "user"), ("app.role", "role"))
    statements = [f"SET LOCAL {name} = {sql_literal(row[key])}" for name, key in names if row[key]]
    if context.is_admin:
        statements.append(f"SET LOCAL ROLE {ADMIN_ROLE}")
    return "; ".join(statements) if statements else None


class TenantConnection(asyncpg.Connection):
    """An asyncpg connection that sends a deferred RLS context in the same message as its BEGIN.

    `apply_context` on a transaction that has not reached the server yet only records the context;
    the driver's BEGIN then goes out as `BEGIN; SET LOCAL ...` (one round trip, not two).
    A recorded context is dropped at commit, rollback and check-in, so it never outlives its transaction.
    """

    _deferred_context: str | None = None

    def defer_context(self, statement: str | None) -> None:
        self._deferred_context = statement

    def forget_context(self) -> None:
        self._deferred_context = None

    async def execute(
        self,
        query: str,
        *args: object,
        timeout: float | None = None,  # noqa: ASYNC109 - asyncpg's own signature
    ) -> str:
        statement = self._deferred_context
        if statement is None or args or not query.lstrip().upper().startswith("BEGIN"):
            return await super().execute(query, *args, timeout=timeout)
        self._deferred_context = None
        try:
            return await super().execute(f"{query.rstrip().rstrip(';')}; {statement}", timeout=timeout)
        except BaseException:
            # BEGIN may have succeeded: never hand back a connection stuck in an aborted transaction.
            if not self.is_closed() and self.is_in_transaction():
                await super().execute("ROLLBACK")
            raise


def _forget_context(driver_connection: object) -> None:
    # `type(...) is`: asyncpg's metaclass makes isinstance() true for every asyncpg connection.
    if type(driver_connection) is TenantConnection:
        driver_connection.forget_context()


def _install_context_hooks(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "commit")
    @event.listens_for(engine.sync_engine, "rollback")
    def _on_end(conn: Connection) -> None:
        if not conn.invalidated and not conn.closed:
            _forget_context(conn.connection.driver_connection)

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def _on_checkin(dbapi_connection: object, record: ConnectionPoolEntry | None) -> None:
        if record is not None:
            _forget_context(record.driver_connection)


async def apply_context(conn: AsyncSession | AsyncConnection, context: RlsContext) -> None:
    """Sets the transaction-local RLS settings; never `SET` at session level (pools would leak it).

    On the platform's engine, before the transaction's first statement, the settings ride with BEGIN.
    """
    connection = await conn.connection() if isinstance(conn, AsyncSession) else conn
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    if (
        type(driver) is TenantConnection
        and connection.in_transaction()
        and not driver.is_in_transaction()
        and not getattr(raw.dbapi_connection, "autocommit", False)
    ):
        driver.defer_context(context_statement(context))
        return
    await conn.execute(SET_CONTEXT_SQL, context.settings_row())


JSONB_VERSION = b"\x01"  # the first byte of jsonb's binary form
# orjson reads an integer past 64 bits as a float and refuses one past a double's range: a value with
# such a run of digits (rare: ids are strings) is read by the standard library, exactly as before.
# The run is found with every digit mapped to "0" and one substring search: a regex `\d{19}` tries
# a match at every digit and cost ~100 µs on a turn's 4 KB of passages, twenty times orjson's read.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGIT_RUN = b"0" * 19


def _json_bytes(value: Any) -> bytes:
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        # An integer past 64 bits (or a type neither library knows: the standard library says so).
        return json.dumps(value).encode()


def _json_value(data: bytes) -> Any:
    if _LONG_DIGIT_RUN not in data.translate(_DIGITS_AS_ZERO):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # a number past a double's range: the standard library reads it
    return json.loads(data)


def _jsonb_bytes(value: Any) -> bytes:
    return JSONB_VERSION + _json_bytes(value)


def _jsonb_value(data: bytes) -> Any:
    return _json_value(data[1:])


async def _json_codecs(conn: asyncpg.Connection) -> None:
    """JSON and JSONB in their binary forms through orjson: a turn's messages, event and passages
    are encoded and decoded without the text round trip and without the standard library's
    (several times slower) encoder. Values decode as the standard library decodes them; a
    non-finite float is written as null (PostgreSQL's JSON has no NaN or Infinity)."""
    await conn.set_type_codec(
        "json", encoder=_json_bytes, decoder=_json_value, schema="pg_catalog", format="binary"
    )
    await conn.set_type_codec(
        "jsonb", encoder=_jsonb_bytes, decoder=_jsonb_value, schema="pg_catalog", format="binary"
    )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Nothing to reset on release: the driver pool's calls change no session state (their RLS
    settings are transaction-local), so the default reset round trip (RESET ALL, UNLISTEN *, …)
    is skipped. An open transaction is still rolled back by the pool before this runs."""


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity, not every core of the host)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


class Database:
    """Engines for one process: the app role's pool, and the owner's for maintenance."""

    def __init__(self, settings: Settings, *, owner: URL | None = None) -> None:
        self.settings = settings
        self.owner_url = owner if owner is not None else owner_url(settings)
        self.app_url = app_url_for(settings, self.owner_url)
        self.engine: AsyncEngine = create_async_engine(
            to_async_url(self.app_url),
            pool_size=settings.pool_size,
            max_overflow=settings.pool_max_overflow,
            pool_pre_ping=False,
            connect_args={
                "server_settings": {"application_name": "vibethink"},
                "connection_class": TenantConnection,
            },
        )
        _install_context_hooks(self.engine)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self._owner_engine: AsyncEngine | None = None
        self._driver_pool: asyncpg.Pool | None = None
        self._driver_pool_lock = asyncio.Lock()
        self._chat_pool: asyncpg.Pool | None = None

    @property
    def owner_engine(self) -> AsyncEngine:
        if self._owner_engine is None:
            self._owner_engine = create_async_engine(
                to_async_url(self.owner_url), pool_size=2, max_overflow=2
            )
        return self._owner_engine

    @asynccontextmanager
    async def transaction(self, context: RlsContext) -> AsyncIterator[AsyncSession]:
        """One unit of work on the app role: context set first, committed once at the end."""
        async with self.sessions() as session, session.begin():
            await apply_context(session, context)
            yield session

    async def driver_pool(self) -> asyncpg.Pool:
        """The app role's plain asyncpg pool, for the few hot calls that are one function each.

        Those functions set the RLS context themselves as their first step (see `chat/store.py`),
        so nothing here is tenant-specific; JSON and JSONB come back decoded.
        """
        if self._driver_pool is None:
            async with self._driver_pool_lock:
                if self._driver_pool is None:
                    self._driver_pool = await self._plain_pool(self.settings.pool_size)
        return self._driver_pool

    async def chat_pool(self) -> asyncpg.Pool:
        """A pool like `driver_pool` for the chat turn's read and write alone, sized to the cores.

        Those calls are CPU-bound in PostgreSQL: with more of them running at once than the cores
        can run, the backends contend for locks and caches (8 fans on 2 cores: ~8 % fewer turns a
        second with 20 connections than with 4). A turn waits for a connection instead, and the
        outbox's work on `driver_pool` never delays a fan.
        """
        if self._chat_pool is None:
            async with self._driver_pool_lock:
                if self._chat_pool is None:
                    size = self.settings.chat_pool_size or 2 * usable_cores()
                    self._chat_pool = await self._plain_pool(size)
        return self._chat_pool

    async def _plain_pool(self, size: int) -> asyncpg.Pool:
        return await asyncpg.create_pool(
            **asyncpg_connect_args(self.app_url),
            min_size=1,
            max_size=size,
            server_settings={"application_name": "vibethink"},
            init=_json_codecs,
            reset=_keep_session,
        )

    @asynccontextmanager
    async def driver_transaction(self, context: RlsContext) -> AsyncIterator[asyncpg.Connection]:
        """A transaction on a plain asyncpg connection of `driver_pool`, its RLS context sent with BEGIN
        (one round trip); committed when the block ends (unless its last statement did: `…; COMMIT`
        in one simple-query message), rolled back if it raises."""
        pool = await self.driver_pool()
        async with pool.acquire() as proxy:
            conn = cast(asyncpg.Connection, proxy)  # the pool's proxy forwards every connection method
            statement = context_statement(context)
            try:
                await conn.execute(f"BEGIN; {statement}" if statement else "BEGIN")
                yield conn
            except BaseException:
                # The pool resets nothing on release: never hand back a connection inside a transaction.
                if not conn.is_closed() and conn.is_in_transaction():
                    try:
                        await conn.execute("ROLLBACK")
                    except BaseException:
                        conn.terminate()
                        raise
                raise
            if conn.is_in_transaction():
                await conn.execute("COMMIT")

    async def dispose(self) -> None:
        for pool in (self._driver_pool, self._chat_pool):
            if pool is not None:
                await pool.close()
        self._driver_pool = self._chat_pool = None
        await self.engine.dispose()
        if self._owner_engine is not None:
            await self._owner_engine.dispose()


async def wait_for_database(engine: AsyncEngine, *, attempts: int = 30) -> None:
    for attempt in range(attempts):
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return
        except OSError:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.5)
