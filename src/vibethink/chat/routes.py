"""Chat API for fans (sessions, conversations, messages over SSE, memory) and moderation for talent teams."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any, Final

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.chat import memory, moderation
from vibethink.chat import service as chat_service
from vibethink.chat.models import FlagStatus, Message, MessageRole
from vibethink.chat.schemas import (
    CitationRead,
    ConversationCreate,
    ConversationRead,
    FlagAction,
    FlagPageRead,
    FlagRead,
    MemoriesDeleted,
    MemoryList,
    MemoryRead,
    MessageCreate,
    MessagePageRead,
    MessageRead,
    ReplyRead,
    SessionCreate,
    SessionRead,
    UsageRead,
)
from vibethink.chat.tokens import TOKEN_PREFIX, Fan, user_fan
from vibethink.chat.turn import Turn, TurnResult, prepare
from vibethink.core.database import RlsContext, apply_context
from vibethink.core.errors import InvalidInput, ModelUnavailable, NotAuthenticated, PlatformError
from vibethink.core.http import EVENT_STREAM_HEADERS, EventStreamResponse
from vibethink.deployments import widget
from vibethink.deployments.models import DeploymentType
from vibethink.tenancy.access import DbSession, Principal, database, require, session_user, settings_of
from vibethink.tenancy.permissions import Permission

log = logging.getLogger(__name__)

router = APIRouter(tags=["chat"])
moderation_router = APIRouter(tags=["moderation"])

ModerationReader = Annotated[Principal, Depends(require(Permission.MODERATION_READ))]
ModerationWriter = Annotated[Principal, Depends(require(Permission.MODERATION_WRITE))]


def presented_fan_token(request: Request) -> str | None:
    token = request.headers.get("x-fan-token")
    if token:
        return token.strip()
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip().startswith(TOKEN_PREFIX):
        return value.strip()
    return None


async def current_fan(request: Request) -> Fan:
    """The fan behind a request: a fan token (no database needed) or a signed-in session cookie."""
    token = presented_fan_token(request)
    if token is not None:
        fan = chat_service.fan_tokens(settings_of(request)).read(token)
        # An embed's token works only from its own site (or the platform's iframe); CORS echoes it.
        request.state.cors_origin = widget.check_fan_origin(
            fan, request.headers.get("origin"), request.headers.get("host")
        )
        return fan
    async with database(request).transaction(RlsContext()) as session:
        found = await session_user(request, session)
    if found is None:
        raise NotAuthenticated("Start a chat session (POST /api/v1/chat/sessions) or sign in.")
    return user_fan(found[1])


CurrentFan = Annotated[Fan, Depends(current_fan)]


def fan_context(fan: Fan) -> RlsContext:
    """The RLS context a fan's transaction starts with: the token's tenant, or only the user."""
    if fan.tenant_id is not None:
        return chat_service.fan_rls(fan, fan.tenant_id)
    return RlsContext(user_id=fan.user_id, role=chat_service.FAN_ROLE)


async def _as_fan(session: AsyncSession, fan: Fan) -> None:
    await apply_context(session, fan_context(fan))


def _conversation_read(conversation: Any) -> ConversationRead:
    read = ConversationRead.model_validate(conversation)
    kind = conversation.context.get("deploymentType") if isinstance(conversation.context, dict) else None
    return read.model_copy(update={"deployment_type": DeploymentType(kind) if kind else None})


@router.post("/chat/sessions", status_code=201)
async def start_session(body: SessionCreate, request: Request, session: DbSession) -> SessionRead:
    """A fan token for a deployment: anonymous (`anon:…`), or the signed-in user (`user:…`)."""
    found = (
        await session_user(request, session)
        if request.cookies.get(settings_of(request).session_cookie_name)
        else None
    )
    issued = await chat_service.start_session(
        session, settings_of(request), body.deployment_id, user_id=found[1] if found else None
    )
    return SessionRead(token=issued.token, fan_key=issued.fan_key, expires_at=issued.expires_at)


@router.post("/chat/conversations", status_code=201)
async def create_conversation(
    body: ConversationCreate, fan: CurrentFan, session: DbSession
) -> ConversationRead:
    await _as_fan(session, fan)
    conversation = await chat_service.create_conversation(session, fan, body.deployment_id)
    return _conversation_read(conversation)


@router.get("/chat/conversations/{conversation_id}")
async def get_conversation(
    conversation_id: uuid.UUID, fan: CurrentFan, session: DbSession
) -> ConversationRead:
    await _as_fan(session, fan)
    return _conversation_read(await chat_service.get_conversation(session, fan, conversation_id))


def _message_read(message: Message) -> MessageRead:
    citations = message.details.get("citations") if message.role is MessageRole.TWIN else None
    return MessageRead(
        id=message.id,
        role=message.role,
        content=message.content,
        status=message.status,
        created_at=message.created_at,
        citations=[CitationRead(n=c["n"], title=c["title"], url=c.get("url")) for c in citations or []],
    )


@router.get("/chat/conversations/{conversation_id}/messages")
async def list_messages(
    conversation_id: uuid.UUID,
    fan: CurrentFan,
    session: DbSession,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=chat_service.MAX_HISTORY_PAGE)] = chat_service.MAX_HISTORY_PAGE,
) -> MessagePageRead:
    """The conversation's messages, at most 50 a page, newest last; `next_cursor` pages back in time."""
    await _as_fan(session, fan)
    page = await chat_service.history_page(session, fan, conversation_id, limit=limit, cursor=cursor)
    return MessagePageRead(items=[_message_read(m) for m in page.items], next_cursor=page.next_cursor)


def sse(event: str | None, data: dict[str, Any] | str) -> bytes:
    body = data.encode() if isinstance(data, str) else orjson.dumps(data)
    head = b"event: " + event.encode() + b"\n" if event else b""
    return head + b"data: " + body + b"\n\n"


def _failure_event(result: TurnResult) -> dict[str, Any]:
    return {
        "code": ModelUnavailable.code,
        "message": result.text,
        "message_id": str(result.message_id),
        "fan_message_id": str(result.fan_message_id),
    }


async def _event_stream(turn: Turn, request: Request) -> AsyncIterator[bytes]:
    db = database(request)
    end = sse(None, "[DONE]")
    # The last event and the end marker go out in one write.
    try:
        async for delta in turn.deltas():
            yield sse("delta", {"text": delta})
        result = await turn.finish_shielded(db)
        if result.error_code is not None:
            yield sse("error", _failure_event(result)) + end
        else:
            yield sse("done", result.done_event()) + end
    except PlatformError as exc:
        yield sse("error", {"code": exc.code, "message": exc.message}) + end
    except Exception:
        log.exception("chat turn failed while streaming")
        yield sse("error", {"code": "internal_error", "message": "Something went wrong on our side."}) + end


def _reply(result: TurnResult) -> ReplyRead:
    return ReplyRead(
        message_id=result.message_id,
        fan_message_id=result.fan_message_id,
        content=result.text,
        status=result.status,
        citations=[CitationRead(**c) for c in result.citations],
        guardrails=result.guardrails,
        usage=UsageRead(input_tokens=result.usage.input_tokens, output_tokens=result.usage.output_tokens),
        disclosure=result.disclosure,
    )


async def send_message(
    conversation_id: uuid.UUID, body: MessageCreate, fan: CurrentFan, request: Request
) -> Response:
    """Sends the fan's message; the reply streams as server-sent events (`delta`…, `done`, `[DONE]`)
    or, with `stream: false`, comes back whole."""
    settings = settings_of(request)
    # The read is one call of its own: no connection is held while the model streams.
    prepared = await prepare(database(request), settings, fan, conversation_id, content=body.content)
    turn = Turn(settings, prepared)
    streaming = (
        body.stream if body.stream is not None else "text/event-stream" in request.headers.get("accept", "")
    )
    if streaming:
        events = _event_stream(turn, request)
        if getattr(turn.provider, "composes_at_once", False):
            # A reply composed whole in process: the same events, written at once rather than as
            # chunks that are all ready at the same moment (one write instead of one per event).
            written = b"".join([event async for event in events])
            return Response(written, media_type=EventStreamResponse.media_type, headers=EVENT_STREAM_HEADERS)
        return EventStreamResponse(events)
    async for _ in turn.deltas():
        pass
    result = await turn.finish(database(request))
    if result.error_code is not None:
        raise ModelUnavailable(
            result.text,
            details={"message_id": str(result.message_id), "fan_message_id": str(result.fan_message_id)},
        )
    return JSONResponse(_reply(result).model_dump(mode="json"))


def _is_json(content_type: str) -> bool:
    kind = content_type.partition(";")[0].strip().lower()
    return kind.startswith("application/") and (kind == "application/json" or kind.endswith("+json"))


_NO_BODY: Final = object()
MISSING_BODY: Final = {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}


async def _json_body(request: Request) -> Any:
    """The request's body as FastAPI reads a JSON body: decoded when the content type is JSON, the
    raw bytes otherwise, `_NO_BODY` when empty; bad JSON is a 422, an unreadable body a 400."""
    try:
        raw = await request.body()
        if not raw:
            return _NO_BODY
        if not _is_json(request.headers.get("content-type", "")):
            return raw
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        error = {
            "type": "json_invalid",
            "loc": ("body", exc.pos),
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": exc.msg},
        }
        raise RequestValidationError([error], body=exc.doc) from exc
    except Exception as exc:
        raise HTTPException(status_code=400, detail="There was an error parsing the body") from exc


class LeanTurnRoute(APIRoute):
    """The fan's message route with its parameters resolved directly, not by FastAPI's general
    dependency solver (which costs more than any other step of a turn's request handling).

    Same contract, same order, same errors: the body is read and decoded first (bad JSON is a 422
    `invalid_json` before anything else), then the fan is authenticated (`current_fan`), then the
    path and the body are validated by the route's own fields, every failure in one 422. The
    OpenAPI description is the endpoint's signature, as for any route.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        path_field = self.dependant.path_params[0]
        body_field = self.body_field
        if body_field is None:
            raise TypeError("the turn route takes a body")

        async def handle(request: Request) -> Response:
            payload = await _json_body(request)
            fan = await current_fan(request)
            conversation_id, errors = path_field.validate(
                request.path_params.get(path_field.alias), loc=("path", path_field.alias)
            )
            if payload is _NO_BODY:
                raise RequestValidationError([*errors, MISSING_BODY], body=None)
            body, body_errors = body_field.validate(payload, loc=("body",))
            if errors or body_errors:
                raise RequestValidationError([*errors, *body_errors], body=payload)
            return await send_message(conversation_id, body, fan, request)

        return handle


router.add_api_route(
    "/chat/conversations/{conversation_id}/messages",
    send_message,
    methods=["POST"],
    response_model=ReplyRead,
    responses={200: {"content": {"text/event-stream": {}}}},
    route_class_override=LeanTurnRoute,
)
# Routes are matched in order and a fan's message is by far the most frequent request: first.
router.routes.sort(key=lambda route: getattr(route, "endpoint", None) is not send_message)


async def _fan_twin(
    session: AsyncSession, fan: Fan, deployment_id: uuid.UUID | None
) -> tuple[uuid.UUID, uuid.UUID]:
    """(tenant, celebrity) of the deployment a memory request names, or of the fan token's deployment."""
    chosen = deployment_id or fan.deployment_id
    if chosen is None:
        raise InvalidInput("Name the deployment whose twin's memories you mean.", field="deployment_id")
    twin = await chat_service.deployed_twin(session, chosen, tenant_id=fan.tenant_id)
    await apply_context(session, chat_service.fan_rls(fan, twin.tenant_id))
    return twin.tenant_id, twin.celebrity_id


@router.get("/chat/memory")
async def list_memory(
    fan: CurrentFan, session: DbSession, deployment_id: uuid.UUID | None = None
) -> MemoryList:
    """What the twin remembers about this fan (name, team, goals)."""
    tenant_id, celebrity_id = await _fan_twin(session, fan, deployment_id)
    found = await memory.listed(session, tenant_id=tenant_id, celebrity_id=celebrity_id, fan_key=fan.fan_key)
    return MemoryList(items=[MemoryRead.model_validate(m) for m in found])


@router.delete("/chat/memory/{memory_id}")
async def delete_memory(
    memory_id: uuid.UUID, fan: CurrentFan, session: DbSession, deployment_id: uuid.UUID | None = None
) -> MemoriesDeleted:
    tenant_id, celebrity_id = await _fan_twin(session, fan, deployment_id)
    removed = await memory.forget(
        session, tenant_id=tenant_id, celebrity_id=celebrity_id, fan_key=fan.fan_key, memory_id=memory_id
    )
    return MemoriesDeleted(deleted=removed)


@router.delete("/chat/memory")
async def delete_all_memory(
    fan: CurrentFan, session: DbSession, deployment_id: uuid.UUID | None = None
) -> MemoriesDeleted:
    tenant_id, celebrity_id = await _fan_twin(session, fan, deployment_id)
    removed = await memory.forget(
        session, tenant_id=tenant_id, celebrity_id=celebrity_id, fan_key=fan.fan_key
    )
    return MemoriesDeleted(deleted=removed)


@moderation_router.get("/moderation/flags")
async def list_flags(
    principal: ModerationReader,
    session: DbSession,
    celebrity_id: uuid.UUID,
    status: FlagStatus | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=moderation.MAX_PAGE)] = 50,
) -> FlagPageRead:
    page = await moderation.page(
        session, principal, celebrity_id=celebrity_id, status=status, limit=limit, cursor=cursor
    )
    return FlagPageRead(items=[FlagRead.model_validate(f) for f in page.items], next_cursor=page.next_cursor)


@moderation_router.post("/moderation/flags/{flag_id}/resolve")
async def resolve_flag(
    flag_id: uuid.UUID, principal: ModerationWriter, session: DbSession, body: FlagAction | None = None
) -> FlagRead:
    flag = await moderation.resolve(session, principal, flag_id, note=body.note if body else None)
    return FlagRead.model_validate(flag)


@moderation_router.post("/moderation/flags/{flag_id}/hide-message")
async def hide_flagged_message(
    flag_id: uuid.UUID, principal: ModerationWriter, session: DbSession, body: FlagAction | None = None
) -> FlagRead:
    flag = await moderation.hide_message(session, principal, flag_id, note=body.note if body else None)
    return FlagRead.model_validate(flag)


@moderation_router.post("/moderation/flags/{flag_id}/block-fan")
async def block_flagged_fan(
    flag_id: uuid.UUID, principal: ModerationWriter, session: DbSession, body: FlagAction | None = None
) -> FlagRead:
    flag = await moderation.block_fan(session, principal, flag_id, note=body.note if body else None)
    return FlagRead.model_validate(flag)
