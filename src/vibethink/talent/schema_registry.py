"""The JSON-schema registry: versioned schemas for JSONB columns, validation, activation, backfill.

`jsonb_schemas` is global (no tenant): the app role may only read it, so `add`, `activate` and
`backfill` run through the CLI on the owner's connection in an explicit admin RLS context.
"""

from __future__ import annotations

import copy
import json
import math
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import Any, Final

import referencing
from jsonschema import Draft202012Validator, SchemaError, ValidationError
from sqlalchemy import func, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from vibethink.core import audit, outbox
from vibethink.core.database import SET_CONTEXT_SQL, RlsContext
from vibethink.core.errors import Conflict, InvalidInput, NotFound, SchemaViolation, ServiceUnavailable
from vibethink.talent.models import Celebrity, JsonbSchema
from vibethink.tenancy import service as tenancy_service

TWIN_CONFIG: Final = "twin_config"
DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
BATCH_SIZE: Final = 500
ADMIN_CONTEXT: Final = RlsContext(is_admin=True, role="PLATFORM_ADMIN")
OWNER_CONTEXT: Final = RlsContext(role="PLATFORM_ADMIN")
# Serialized size past which a JSONB document is refused: configs are settings, not content.
MAX_DOCUMENT_BYTES: Final = 256 * 1024
# Deeper documents are not settings; they would also overflow recursive serializers.
MAX_DOCUMENT_DEPTH: Final = 32
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")
_MAX_REPORTED_ERRORS = 20


@dataclass(frozen=True, slots=True)
class CompiledSchema:
    """One immutable version of a named schema, ready to validate."""

    name: str
    version: int
    validator: Draft202012Validator
    defaults: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    name: str
    version: int
    is_active: bool
    created_at: datetime
    activated_at: datetime | None
    defaults: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason a document does not match its schema: where (a dotted path) and why."""

    field: str
    message: str


@dataclass(slots=True)
class BackfillReport:
    name: str
    version: int
    total: int = 0
    scanned: int = 0
    updated: int = 0
    batches: int = 0
    # Configs that still miss the version (e.g. PENDING_SETUP): defaults applied, version kept.
    not_matching: int = 0
    tenants: set[uuid.UUID] = field(default_factory=set)


Progress = Callable[[int, int], None]


class SchemaCache:
    """Compiled validators per process, keyed by (name, version): a version's document never changes.

    Each use asks the database which version is active (one indexed lookup), so a version activated
    by another process is picked up on the next write; `invalidate` drops compiled versions.
    """

    def __init__(self) -> None:
        self._compiled: dict[tuple[str, int], CompiledSchema] = {}

    def get(self, name: str, version: int) -> CompiledSchema | None:
        return self._compiled.get((name, version))

    def put(self, compiled: CompiledSchema) -> None:
        self._compiled[(compiled.name, compiled.version)] = compiled

    def invalidate(self, name: str | None = None) -> None:
        for key in [k for k in self._compiled if name is None or k[0] == name]:
            del self._compiled[key]


cache = SchemaCache()


def compile_schema(
    name: str, version: int, schema: Mapping[str, Any], defaults: Mapping[str, Any]
) -> CompiledSchema:
    validator = Draft202012Validator(
        dict(schema),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
        # An empty registry: a `$ref` never makes the platform fetch anything over the network.
        registry=referencing.Registry(),
    )
    return CompiledSchema(name=name, version=version, validator=validator, defaults=dict(defaults))


async def active_version(session: AsyncSession, name: str) -> int:
    version = await session.scalar(
        select(JsonbSchema.version).where(JsonbSchema.schema_name == name, JsonbSchema.is_active)
    )
    if version is None:
        raise ServiceUnavailable(f"No version of the '{name}' schema is active.")
    return version


async def compiled(session: AsyncSession, name: str, version: int) -> CompiledSchema:
    """The compiled `version` of `name`, from the process cache or the database."""
    found = cache.get(name, version)
    if found is not None:
        return found
    row = (
        await session.execute(
            select(JsonbSchema.schema, JsonbSchema.defaults).where(
                JsonbSchema.schema_name == name, JsonbSchema.version == version
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"The '{name}' schema has no version {version}.", field="version")
    result = compile_schema(name, version, row.schema, row.defaults)
    cache.put(result)
    return result


async def active_schema(session: AsyncSession, name: str) -> CompiledSchema:
    return await compiled(session, name, await active_version(session, name))


def problems(schema: CompiledSchema, document: Any, *, column: str) -> list[Problem]:
    """Every mismatch of `document` against `schema`, sorted by path; empty when it matches."""
    found: dict[str, Problem] = {}
    for error in schema.validator.iter_errors(document):
        for problem in _describe(error, column):
            found.setdefault(problem.field, problem)
    return sorted(found.values(), key=lambda p: p.field)


def _describe(error: ValidationError, column: str) -> Iterator[Problem]:
    path = [column, *(str(part) for part in error.absolute_path)]
    if error.validator == "required" and isinstance(error.instance, dict):
        # One error per missing property; name the property itself, not its parent.
        required = error.validator_value if isinstance(error.validator_value, list) else []
        for name in required:
            if isinstance(name, str) and name not in error.instance:
                missing = ".".join([*path, name])
                yield Problem(missing, f"{missing} is required.")
        return
    where = ".".join(path)
    message = error.message if len(error.message) <= 200 else error.message[:197] + "..."
    yield Problem(where, f"{where}: {message}")


def check_storable(document: Any, *, column: str) -> None:
    """Refuses what JSONB cannot store (NUL characters, NaN), oversized and too deeply nested documents."""
    stack: list[tuple[Any, str, int]] = [(document, column, 0)]
    while stack:
        value, where, depth = stack.pop()
        if depth > MAX_DOCUMENT_DEPTH:
            raise InvalidInput(f"{column} is nested deeper than {MAX_DOCUMENT_DEPTH} levels.", field=where)
        if isinstance(value, str) and "\x00" in value:
            raise InvalidInput(f"{where} contains a NUL character.", field=where)
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInput(f"{where} is not a finite number.", field=where)
        if isinstance(value, dict):
            for key, item in value.items():
                if "\x00" in key:
                    raise InvalidInput(f"{where} has a key with a NUL character.", field=where)
                stack.append((item, f"{where}.{key}", depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{where}.{index}", depth + 1) for index, item in enumerate(value))
    if len(json.dumps(document, ensure_ascii=False)) > MAX_DOCUMENT_BYTES:
        raise InvalidInput(f"{column} is larger than {MAX_DOCUMENT_BYTES // 1024} KiB.", field=column)


def raise_for(found: Sequence[Problem], *, version: int, name: str) -> None:
    if not found:
        return
    first = found[0]
    raise SchemaViolation(
        first.message,
        field=first.field,
        details={
            "schema": name,
            "version": version,
            "errors": [{"field": p.field, "message": p.message} for p in found[:_MAX_REPORTED_ERRORS]],
        },
    )


async def validate(
    session: AsyncSession, name: str, document: Any, *, column: str | None = None
) -> CompiledSchema:
    """Validates `document` against the active version of `name`; returns that version.

    Raises SchemaViolation naming the first field at fault (e.g. `twin_config.guardrails.maxResponseLength`).
    """
    where = column or name
    check_storable(document, column=where)
    schema = await active_schema(session, name)
    raise_for(problems(schema, document, column=where), version=schema.version, name=name)
    return schema


def merge_missing(document: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """`document` with `defaults` filled in where a key is absent, recursively; never overwrites."""
    merged = dict(document)
    for key, default in defaults.items():
        if key not in merged:
            merged[key] = copy.deepcopy(default)
        elif isinstance(merged[key], dict) and isinstance(default, dict):
            merged[key] = merge_missing(merged[key], default)
    return merged


def defaults_from_annotations(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The top-level properties' `default` annotations, used when no defaults are given explicitly."""
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return {}
    return {
        key: copy.deepcopy(sub["default"])
        for key, sub in properties.items()
        if isinstance(sub, dict) and "default" in sub
    }


def builtin_schema(name: str, label: str) -> dict[str, Any]:
    """A schema shipped with the platform, e.g. ("twin_config", "v2") → talent/schemas/twin_config.v2.json."""
    resource = resources.files("vibethink.talent").joinpath("schemas", f"{name}.{label}.json")
    if not resource.is_file():
        raise NotFound(f"No built-in schema {name} {label}.", field="builtin")
    loaded = json.loads(resource.read_text(encoding="utf-8"))
    if not isinstance(loaded, dict):
        raise InvalidInput(f"The built-in schema {name} {label} is not an object.", field="builtin")
    return loaded


def _check_name(name: str) -> None:
    if not (1 <= len(name) <= 64) or not set(name) <= _NAME_CHARS or not name[0].isalpha():
        raise InvalidInput("A schema name is 1–64 lowercase letters, digits and underscores.", field="name")


def _check_schema_document(schema: Any, defaults: Any) -> None:
    if not isinstance(schema, dict):
        raise InvalidInput("A schema is a JSON object.", field="schema")
    dialect = schema.get("$schema")
    if dialect is not None and (not isinstance(dialect, str) or dialect.rstrip("#") != DIALECT):
        raise InvalidInput(f"Only JSON Schema Draft 2020-12 ({DIALECT}).", field="schema.$schema")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = ".".join(["schema", *(str(p) for p in exc.absolute_path)])
        raise InvalidInput(f"Not a valid JSON Schema at {where}: {exc.message}", field=where) from exc
    for where, ref in _refs(schema, "schema"):
        if not ref.startswith("#"):
            raise InvalidInput(f"Only local references (#...) are allowed, not {ref!r}.", field=where)
    check_storable(schema, column="schema")
    if not isinstance(defaults, dict):
        raise InvalidInput("Defaults are a JSON object.", field="defaults")
    check_storable(defaults, column="defaults")
    # Defaults fill in absent keys, so they must be valid on their own; the root's `required` does not apply.
    partial = compile_schema("defaults", 0, {**schema, "required": []}, {})
    raise_for(problems(partial, defaults, column="defaults"), version=0, name="defaults")


def _refs(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("$ref", "$dynamicRef") and isinstance(item, str):
                yield f"{where}.{key}", item
            else:
                yield from _refs(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _refs(item, f"{where}.{index}")


async def versions(session: AsyncSession, *, name: str | None = None) -> list[SchemaVersion]:
    query = select(JsonbSchema).order_by(JsonbSchema.schema_name, JsonbSchema.version)
    if name is not None:
        query = query.where(JsonbSchema.schema_name == name)
    rows = (await session.scalars(query)).all()
    return [
        SchemaVersion(
            name=row.schema_name,
            version=row.version,
            is_active=row.is_active,
            created_at=row.created_at,
            activated_at=row.activated_at,
            defaults=row.defaults,
        )
        for row in rows
    ]


@asynccontextmanager
async def admin_session(
    engine: AsyncEngine, *, context: RlsContext = OWNER_CONTEXT
) -> AsyncIterator[AsyncSession]:
    """One transaction in an explicit RLS context (the CLI's maintenance commands).

    The default keeps the connecting role's own privileges (the owner writes jsonb_schemas);
    `ADMIN_CONTEXT` switches to the admin role, which reaches every tenant's rows under policy.
    """
    sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
    async with sessions() as session, session.begin():
        # A plain statement, whatever the engine: the owner's connections are not the app's pooled kind.
        await session.execute(SET_CONTEXT_SQL, context.settings_row())
        yield session


async def add(session: AsyncSession, name: str, schema: Any, *, defaults: Any = None) -> SchemaVersion:
    """Stores `schema` as version n+1 of `name`, inactive. Runs as the owner in an admin context."""
    _check_name(name)
    chosen_defaults = defaults
    if defaults is None and isinstance(schema, dict):
        chosen_defaults = defaults_from_annotations(schema)
    _check_schema_document(schema, chosen_defaults)
    # Serializes concurrent adds of the same name, so version numbers never race.
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"jsonb_schemas:{name}"))))
    latest = await session.scalar(
        select(func.max(JsonbSchema.version)).where(JsonbSchema.schema_name == name)
    )
    row = JsonbSchema(
        id=uuid.uuid4(),
        schema_name=name,
        version=(latest or 0) + 1,
        schema=schema,
        defaults=chosen_defaults,
        is_active=False,
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"Version {row.version} of '{name}' was added concurrently; try again.") from exc
    await session.refresh(row, ["created_at"])
    return SchemaVersion(
        name=name,
        version=row.version,
        is_active=False,
        created_at=row.created_at,
        activated_at=None,
        defaults=row.defaults,
    )


async def activate(session: AsyncSession, name: str, version: int, *, actor: str = "cli") -> SchemaVersion:
    """Makes `version` the one active version of `name`, in one transaction; emits CONFIGURATION_CHANGE.

    The session must be in the admin RLS context (`admin_session`): the event belongs to the platform tenant.
    """
    rows = (
        await session.scalars(
            select(JsonbSchema)
            .where(JsonbSchema.schema_name == name)
            .order_by(JsonbSchema.version)
            .with_for_update()
        )
    ).all()
    target = next((row for row in rows if row.version == version), None)
    if target is None:
        raise NotFound(f"The '{name}' schema has no version {version}.", field="version")
    previous = next((row.version for row in rows if row.is_active), None)
    if previous != version:
        # Two statements: the partial unique index on active rows is checked row by row.
        await session.execute(
            update(JsonbSchema)
            .where(JsonbSchema.schema_name == name, JsonbSchema.is_active)
            .values(is_active=False)
        )
        await session.execute(
            update(JsonbSchema)
            .where(JsonbSchema.schema_name == name, JsonbSchema.version == version)
            .values(is_active=True, activated_at=func.now())
        )
        tenant_id = await tenancy_service.platform_tenant_id(session)
        change = {"schema": name, "from_version": previous, "to_version": version}
        await outbox.emit(
            session,
            "CONFIGURATION_CHANGE",
            tenant_id=tenant_id,
            actor_role="PLATFORM_ADMIN",
            subject_type="jsonb_schema",
            subject_id=f"{name}:{version}",
            payload={"change": "schema_activated", **change},
        )
        await audit.record(
            session,
            "SCHEMA_ACTIVATED",
            tenant_id=tenant_id,
            actor_user_id=None,
            actor_role="PLATFORM_ADMIN",
            subject_type="jsonb_schema",
            subject_id=f"{name}:{version}",
            is_admin_context=True,
            reason=f"schemas activate via {actor}",
            details=change,
        )
    cache.invalidate(name)
    await session.flush()
    await session.refresh(target)
    return SchemaVersion(
        name=name,
        version=version,
        is_active=target.is_active,
        created_at=target.created_at,
        activated_at=target.activated_at,
        defaults=target.defaults,
    )


async def backfill(
    engine: AsyncEngine,
    name: str = TWIN_CONFIG,
    *,
    version: int | None = None,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> BackfillReport:
    """Fills `version`'s defaults into every celebrity's config where absent, across all tenants.

    One transaction per batch of `batch_size` rows, keyset-ordered by (tenant_id, id): safe to stop
    and rerun, and a rerun changes nothing already done. Talent-set values are never overwritten.
    """
    if name != TWIN_CONFIG:
        raise InvalidInput(f"Backfill knows how to update '{TWIN_CONFIG}' only.", field="name")
    if not 1 <= batch_size <= 10_000:
        raise InvalidInput("The batch size is between 1 and 10000.", field="batch_size")
    async with admin_session(engine, context=ADMIN_CONTEXT) as session:
        chosen = version if version is not None else await active_version(session, name)
        target = await compiled(session, name, chosen)
        total = await session.scalar(select(func.count()).select_from(Celebrity)) or 0
    report = BackfillReport(name=name, version=target.version, total=total)
    if progress is not None:
        progress(0, total)
    after: tuple[uuid.UUID, uuid.UUID] | None = None
    while True:
        async with admin_session(engine, context=ADMIN_CONTEXT) as session:
            after, scanned = await _backfill_batch(
                session, target, after=after, limit=batch_size, report=report
            )
        if scanned == 0:
            break
        report.batches += 1
        report.scanned += scanned
        if progress is not None:
            progress(report.scanned, max(total, report.scanned))
        if scanned < batch_size:
            break
    return report


async def _backfill_batch(
    session: AsyncSession,
    target: CompiledSchema,
    *,
    after: tuple[uuid.UUID, uuid.UUID] | None,
    limit: int,
    report: BackfillReport,
) -> tuple[tuple[uuid.UUID, uuid.UUID] | None, int]:
    query = (
        select(Celebrity.tenant_id, Celebrity.id, Celebrity.twin_config, Celebrity.twin_config_version)
        .order_by(Celebrity.tenant_id, Celebrity.id)
        .limit(limit)
        # Locks the batch so a concurrent API write is neither lost nor overwritten.
        .with_for_update()
    )
    if after is not None:
        query = query.where(tuple_(Celebrity.tenant_id, Celebrity.id) > tuple_(*after))
    rows = (await session.execute(query)).all()
    if not rows:
        return after, 0
    changes: list[dict[str, Any]] = []
    changed_by_tenant: dict[uuid.UUID, list[str]] = {}
    for row in rows:
        merged = merge_missing(row.twin_config, target.defaults)
        matches = target.validator.is_valid(merged)
        new_version = target.version if matches else row.twin_config_version
        if not matches:
            report.not_matching += 1
        if merged == row.twin_config and new_version == row.twin_config_version:
            continue
        changes.append(
            {
                "tenant_id": row.tenant_id,
                "id": row.id,
                "twin_config": merged,
                "twin_config_version": new_version,
            }
        )
        changed_by_tenant.setdefault(row.tenant_id, []).append(str(row.id))
    if changes:
        # ORM bulk UPDATE by primary key: one executemany round trip for the whole batch.
        await session.execute(update(Celebrity), changes)
        for tenant_id, ids in changed_by_tenant.items():
            await outbox.emit(
                session,
                "CONFIGURATION_CHANGE",
                tenant_id=tenant_id,
                actor_role="PLATFORM_ADMIN",
                subject_type="jsonb_schema",
                subject_id=f"{target.name}:{target.version}",
                payload={
                    "change": "schema_backfill",
                    "schema": target.name,
                    "version": target.version,
                    "defaults_keys": sorted(target.defaults),
                    "celebrity_ids": ids,
                },
            )
            report.tenants.add(tenant_id)
        report.updated += len(changes)
    last = rows[-1]
    return (last.tenant_id, last.id), len(rows)
