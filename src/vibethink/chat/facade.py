"""OpenAI-compatible `POST /v1/chat/completions`: other tools drive a twin through the full chat turn.

`model` names a deployment (its id, or `deployment:<id>`); the last user message is the fan's turn and
earlier user/assistant messages are its history (caller system messages are not instructions to the
twin). Authenticated by a tenant API key with the `chat:completions` scope. Requests, replies, stream
chunks and errors follow OpenAI's wire format, so the official clients work unchanged.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.chat import service as chat_service
from vibethink.chat.models import Conversation
from vibethink.chat.schemas import MAX_CONTENT, FacadeMessage, FacadeRequest
from vibethink.chat.tokens import Fan
from vibethink.chat.turn import TURN_MESSAGES, Turn, TurnResult, prepare
from vibethink.core.database import RlsContext
from vibethink.core.errors import InvalidInput, ModelNotFound, ModelUnavailable, NotFound, PlatformError
from vibethink.core.http import EventStreamResponse
from vibethink.core.settings import Settings
from vibethink.tenancy.access import Principal, current_principal, database, settings_of
from vibethink.tenancy.permissions import Permission
from vibethink.twin.context import HistoryTurn

router = APIRouter(tags=["openai-compatible"])

MODEL_PREFIX: Final = "deployment:"
_ERROR_TYPES: Final = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    429: "rate_limit_error",
}


def openai_error(status: int, message: str, *, code: str | None, param: str | None = None) -> JSONResponse:
    status = 400 if status == 422 else status
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status)


def _from_platform(exc: PlatformError) -> JSONResponse:
    response = openai_error(exc.status_code, exc.message, code=exc.code, param=exc.field)
    response.headers.update(exc.headers)
    return response


def _text(message: FacadeMessage) -> str:
    if isinstance(message.content, str):
        return message.content
    parts = message.content or []
    return "".join(str(p.get("text", "")) for p in parts if isinstance(p, dict) and p.get("type") == "text")


def _turn_of(body: FacadeRequest, settings: Settings) -> tuple[str, tuple[HistoryTurn, ...]]:
    """(the fan's message, the history before it) from an OpenAI `messages` list."""
    last = body.messages[-1]
    if last.role != "user":
        raise InvalidInput("The last message must come from the user.", field="messages")
    content = _text(last)
    if not content.strip() or len(content) > MAX_CONTENT:
        raise InvalidInput(
            f"The last user message must have 1 to {MAX_CONTENT} characters.", field="messages"
        )
    if "\x00" in content or any("\ud800" <= c <= "\udfff" for c in content):
        raise InvalidInput(
            "The last user message contains characters that cannot be stored.", field="messages"
        )
    earlier = [
        HistoryTurn("fan" if m.role == "user" else "twin", _text(m))
        for m in body.messages[:-1]
        if m.role in ("user", "assistant") and _text(m).strip()
    ]
    keep = 2 * settings.chat_history_turns
    return content, tuple(earlier[-keep:] if keep else ())


def _deployment_id(model: str) -> uuid.UUID:
    try:
        return uuid.UUID(model.removeprefix(MODEL_PREFIX))
    except ValueError as exc:
        raise ModelNotFound(
            f"The model '{model[:100]}' does not exist; use a deployment id.", field="model"
        ) from exc


def _fan_key(principal: Principal, user: str | None) -> str:
    """One fan per API key, or per end user the caller names (hashed: it may be an e-mail)."""
    key = f"api:{(principal.api_key_id or principal.user_id or principal.tenant_id).hex}"
    if user:
        key += ":" + hashlib.sha256(user.encode()).hexdigest()[:24]
    return key


async def _conversation(
    session: AsyncSession, settings: Settings, fan: Fan, deployment_id: uuid.UUID
) -> uuid.UUID:
    """The caller's latest conversation with room for another turn, or a new one."""
    found = await session.scalar(
        select(Conversation.id)
        .where(
            Conversation.tenant_id == fan.tenant_id,
            Conversation.fan_key == fan.fan_key,
            Conversation.deployment_id == deployment_id,
            Conversation.message_count <= settings.chat_max_messages - TURN_MESSAGES,
        )
        .order_by(Conversation.created_at.desc())
        .limit(1)
    )
    if found is not None:
        return found
    return (await chat_service.create_conversation(session, fan, deployment_id)).id


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def _usage(result: TurnResult) -> dict[str, int]:
    i, o = result.usage.input_tokens, result.usage.output_tokens
    return {"prompt_tokens": i, "completion_tokens": o, "total_tokens": i + o}


def _finish_reason(result: TurnResult) -> str:
    return result.finish_reason if result.finish_reason in ("stop", "length", "content_filter") else "stop"


def _chunk(
    completion_id: str, created: int, model: str, delta: dict[str, Any], finish: str | None, usage: bool
) -> bytes:
    body: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if usage:
        body["usage"] = None
    return b"data: " + json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


async def _stream(turn: Turn, request: Request, model: str, include_usage: bool) -> AsyncIterator[bytes]:
    completion_id, created = _completion_id(), int(time.time())
    yield _chunk(completion_id, created, model, {"role": "assistant", "content": ""}, None, include_usage)
    try:
        async for delta in turn.deltas():
            yield _chunk(completion_id, created, model, {"content": delta}, None, include_usage)
        result = await turn.finish_shielded(database(request))
    except PlatformError as exc:
        error = {"message": exc.message, "type": "invalid_request_error", "param": None, "code": exc.code}
        yield b"data: " + json.dumps({"error": error}).encode() + b"\n\n"
        yield b"data: [DONE]\n\n"
        return
    if result.error_code is not None:
        error = {"message": result.text, "type": "server_error", "param": None, "code": result.error_code}
        yield b"data: " + json.dumps({"error": error}, ensure_ascii=False).encode() + b"\n\n"
        yield b"data: [DONE]\n\n"
        return
    yield _chunk(completion_id, created, model, {}, _finish_reason(result), include_usage)
    if include_usage:
        final = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": None,
            "choices": [],
            "usage": _usage(result),
        }
        yield b"data: " + json.dumps(final).encode() + b"\n\n"
    yield b"data: [DONE]\n\n"


def _completion(result: TurnResult, model: str) -> dict[str, Any]:
    return {
        "id": _completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.text, "refusal": None},
                "logprobs": None,
                "finish_reason": _finish_reason(result),
            }
        ],
        "usage": _usage(result),
    }


async def _request_body(request: Request) -> FacadeRequest:
    try:
        raw = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput("The request body is not valid JSON.") from exc
    try:
        return FacadeRequest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ()))
        raise InvalidInput(
            f"{field}: {first.get('msg')}" if field else str(first.get("msg")), field=field or None
        ) from exc


@router.post(
    "/v1/chat/completions",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": FacadeRequest.model_json_schema()}},
        }
    },
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def chat_completions(request: Request) -> Response:
    """An OpenAI Chat Completions call answered by a deployed twin, guardrails and all."""
    settings = settings_of(request)
    db = database(request)
    try:
        async with db.transaction(RlsContext()) as session:
            principal = await current_principal(request, session)
            principal.require(Permission.CHAT_COMPLETIONS)
        body = await _request_body(request)
        content, history = _turn_of(body, settings)
        deployment_id = _deployment_id(body.model)
        async with db.transaction(
            RlsContext(tenant_id=principal.tenant_id, role=chat_service.FAN_ROLE)
        ) as session:
            try:
                twin = chat_service.require_live(
                    await chat_service.deployed_twin(session, deployment_id, tenant_id=principal.tenant_id)
                )
            except NotFound as exc:
                raise ModelNotFound(f"The model '{body.model[:100]}' does not exist.", field="model") from exc
            fan = Fan(
                fan_key=_fan_key(principal, body.user),
                tenant_id=principal.tenant_id,
                deployment_id=twin.deployment_id,
                user_id=principal.user_id,
            )
            conversation_id = await _conversation(session, settings, fan, twin.deployment_id)
        prepared = await prepare(db, settings, fan, conversation_id, content=content, history=history)
        turn = Turn(settings, prepared)
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return EventStreamResponse(_stream(turn, request, body.model, include_usage))
        async for _ in turn.deltas():
            pass
        result = await turn.finish(db)
        if result.error_code is not None:
            raise ModelUnavailable(result.text)
        return JSONResponse(_completion(result, body.model))
    except PlatformError as exc:
        return _from_platform(exc)
