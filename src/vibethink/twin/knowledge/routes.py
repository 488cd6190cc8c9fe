"""Knowledge API: a twin's sources (JSON or file upload), their indexing progress, re-index and search."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from vibethink.core.errors import DocumentTooLarge, InvalidInput
from vibethink.core.pagination import MAX_PAGE, Page
from vibethink.tenancy.access import DbSession, Principal, require, settings_of
from vibethink.tenancy.permissions import Permission
from vibethink.twin.knowledge import ingest, service
from vibethink.twin.knowledge.embeddings import embedder_from_settings
from vibethink.twin.knowledge.schemas import (
    KnowledgeSourceCreate,
    KnowledgeSourceRead,
    KnowledgeSourceUploadFields,
    PassageRead,
    ReindexRead,
)
from vibethink.twin.knowledge.search import MAX_K, search
from vibethink.twin.models import SourceKind, SourceStatus

router = APIRouter(tags=["knowledge"])

KnowledgeReader = Annotated[Principal, Depends(require(Permission.KNOWLEDGE_READ))]
KnowledgeWriter = Annotated[Principal, Depends(require(Permission.KNOWLEDGE_WRITE))]

_SOURCE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": KnowledgeSourceCreate.model_json_schema(ref_template="#/components/schemas/{model}")
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "At most 10 MB."},
                        "kind": {"type": "string", "enum": [k.value for k in SourceKind]},
                        "title": {"type": "string", "maxLength": service.MAX_TITLE},
                        "url": {"type": "string", "maxLength": service.MAX_URL},
                        "last_updated_at": {"type": "string", "format": "date-time"},
                    },
                }
            },
        },
    }
}
_SOURCE_BODY["requestBody"]["content"]["application/json"]["schema"].pop("$defs", None)


@dataclass(frozen=True, slots=True)
class SourceInput:
    kind: SourceKind
    title: str
    content: str | bytes | list[dict[str, Any]] | dict[str, Any]
    url: str | None
    file_name: str | None
    last_updated_at: datetime | None


def _invalid(exc: ValidationError, prefix: tuple[str, ...]) -> RequestValidationError:
    errors = [{**e, "loc": (*prefix, *e.get("loc", ()))} for e in exc.errors(include_url=False)]
    return RequestValidationError(errors)


def _validated(model: type[BaseModel], raw: Any, *, json: bool) -> Any:
    try:
        return model.model_validate_json(raw) if json else model.model_validate(raw)
    except ValidationError as exc:
        raise _invalid(exc, ("body",)) from exc


async def _source_input(request: Request) -> SourceInput:
    """The source from a JSON body or a multipart upload (`file` plus form fields)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "application/json":
        body = await request.body()
        if len(body) > ingest.MAX_UPLOAD_BYTES * 2:
            raise DocumentTooLarge("The request body is too large.")
        data: KnowledgeSourceCreate = _validated(KnowledgeSourceCreate, body, json=True)
        return SourceInput(
            data.kind, data.title, data.content, data.url, data.file_name, data.last_updated_at
        )
    if media_type == "multipart/form-data":
        return await _upload_input(request)
    raise HTTPException(415, "Send the source as application/json or as a multipart/form-data upload.")


async def _upload_input(request: Request) -> SourceInput:
    async with request.form(max_files=1, max_fields=10) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("Attach the document as the form field 'file'.", field="file")
        fields = {k: v for k, v in form.multi_items() if k != "file" and isinstance(v, str) and v.strip()}
        meta: KnowledgeSourceUploadFields = _validated(KnowledgeSourceUploadFields, fields, json=False)
        data = await upload.read(ingest.MAX_UPLOAD_BYTES + 1)
        file_name = (upload.filename or "").strip() or None
        media_type = upload.content_type
    if len(data) > ingest.MAX_UPLOAD_BYTES:
        raise DocumentTooLarge(f"The file is larger than {ingest.MAX_UPLOAD_BYTES // (1024 * 1024)} MB.")
    kind = meta.kind or ingest.kind_of_file(file_name, media_type, data)
    if kind is None:
        raise InvalidInput("Say which kind of source this file is.", field="kind")
    title = meta.title or file_name
    if not title:
        raise InvalidInput("Give the source a title.", field="title")
    return SourceInput(kind, title, data, meta.url, file_name, meta.last_updated_at)


@router.post(
    "/celebrities/{celebrity_id}/knowledge/sources",
    status_code=201,
    openapi_extra=_SOURCE_BODY,
    summary="Add a knowledge source (JSON, or a multipart file upload)",
)
async def add_source(
    celebrity_id: uuid.UUID, request: Request, principal: KnowledgeWriter, session: DbSession
) -> KnowledgeSourceRead:
    given = await _source_input(request)
    source = await service.add_source(
        session,
        principal,
        celebrity_id,
        kind=given.kind,
        title=given.title,
        content=given.content,
        url=given.url,
        file_name=given.file_name,
        last_updated_at=given.last_updated_at,
    )
    return KnowledgeSourceRead.model_validate(source)


@router.get("/celebrities/{celebrity_id}/knowledge/sources")
async def list_sources(
    celebrity_id: uuid.UUID,
    principal: KnowledgeReader,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = service.DEFAULT_PAGE,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    status: SourceStatus | None = None,
) -> Page[KnowledgeSourceRead]:
    found = await service.page(session, principal, celebrity_id, status=status, limit=limit, cursor=cursor)
    return Page[KnowledgeSourceRead](
        items=[KnowledgeSourceRead.model_validate(s) for s in found.items], next_cursor=found.next_cursor
    )


@router.get("/celebrities/{celebrity_id}/knowledge/sources/{source_id}")
async def get_source(
    celebrity_id: uuid.UUID, source_id: uuid.UUID, principal: KnowledgeReader, session: DbSession
) -> KnowledgeSourceRead:
    return KnowledgeSourceRead.model_validate(
        await service.get_source(session, principal, celebrity_id, source_id)
    )


@router.put(
    "/celebrities/{celebrity_id}/knowledge/sources/{source_id}",
    openapi_extra=_SOURCE_BODY,
    summary="Replace a knowledge source's content; it is indexed again",
)
async def replace_source(
    celebrity_id: uuid.UUID,
    source_id: uuid.UUID,
    request: Request,
    principal: KnowledgeWriter,
    session: DbSession,
) -> KnowledgeSourceRead:
    given = await _source_input(request)
    source = await service.replace_source(
        session,
        principal,
        celebrity_id,
        source_id,
        kind=given.kind,
        title=given.title,
        content=given.content,
        url=given.url,
        file_name=given.file_name,
        last_updated_at=given.last_updated_at,
    )
    return KnowledgeSourceRead.model_validate(source)


@router.delete("/celebrities/{celebrity_id}/knowledge/sources/{source_id}", status_code=204)
async def delete_source(
    celebrity_id: uuid.UUID, source_id: uuid.UUID, principal: KnowledgeWriter, session: DbSession
) -> Response:
    await service.delete_source(session, principal, celebrity_id, source_id)
    return Response(status_code=204)


@router.post("/celebrities/{celebrity_id}/knowledge/reindex", status_code=202)
async def reindex(celebrity_id: uuid.UUID, principal: KnowledgeWriter, session: DbSession) -> ReindexRead:
    result = await service.reindex(session, principal, celebrity_id)
    return ReindexRead(sources=result.sources, chunks=result.chunks, ready=result.ready)


@router.get(
    "/celebrities/{celebrity_id}/knowledge/search", summary="What the twin would retrieve for a question"
)
async def search_knowledge(
    celebrity_id: uuid.UUID,
    request: Request,
    principal: KnowledgeReader,
    session: DbSession,
    q: Annotated[str, Query(max_length=2000, description="The fan's question.")],
    k: Annotated[int, Query(ge=1, le=MAX_K)] = 5,
) -> list[PassageRead]:
    language = await service.twin_search_language(session, principal, celebrity_id)
    embedder = embedder_from_settings(settings_of(request))
    passages = await search(
        session, celebrity_id=celebrity_id, query=q, language=language, k=k, embedder=embedder
    )
    return [
        PassageRead(
            chunk_id=p.chunk_id, source_id=p.source_id, title=p.title, url=p.url, text=p.text, score=p.score
        )
        for p in passages
    ]
