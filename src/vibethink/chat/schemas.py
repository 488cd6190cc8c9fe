"""Chat and moderation API shapes."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vibethink.chat.models import FlagStatus, MessageRole, MessageStatus
from vibethink.deployments.models import DeploymentType

MAX_CONTENT = 4000


_SURROGATE = re.compile("[\ud800-\udfff]")


def _storable(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if not value.isascii() and _SURROGATE.search(value) is not None:
        raise ValueError("must not contain lone surrogates")
    return value


class SessionCreate(BaseModel):
    deployment_id: uuid.UUID


class SessionRead(BaseModel):
    token: str
    fan_key: str
    expires_at: datetime


class ConversationCreate(BaseModel):
    deployment_id: uuid.UUID


class ConversationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    celebrity_id: uuid.UUID
    deployment_id: uuid.UUID | None
    fan_key: str
    deployment_type: DeploymentType | None = None
    message_count: int
    context: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class MessageCreate(BaseModel):
    content: str = Field(min_length=1, max_length=MAX_CONTENT)
    stream: bool | None = Field(
        default=None,
        description="Server-sent events; the default when the request accepts text/event-stream.",
    )

    @field_validator("content")
    @classmethod
    def _content(cls, value: str) -> str:
        _storable(value)
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class CitationRead(BaseModel):
    n: int
    title: str
    url: str | None


class UsageRead(BaseModel):
    input_tokens: int
    output_tokens: int


class ReplyRead(BaseModel):
    message_id: uuid.UUID
    fan_message_id: uuid.UUID
    content: str
    status: MessageStatus
    citations: list[CitationRead]
    guardrails: list[dict[str, Any]]
    usage: UsageRead
    disclosure: str | None = None


class MessageRead(BaseModel):
    id: uuid.UUID
    role: MessageRole
    content: str
    status: MessageStatus
    created_at: datetime
    citations: list[CitationRead] = []


class MessagePageRead(BaseModel):
    items: list[MessageRead]
    next_cursor: str | None = None


class MemoryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    value: str
    updated_at: datetime


class MemoryList(BaseModel):
    items: list[MemoryRead]


class MemoriesDeleted(BaseModel):
    deleted: int


class FlagRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    celebrity_id: uuid.UUID
    conversation_id: uuid.UUID
    message_id: uuid.UUID | None
    fan_key: str
    stage: str
    rule: str
    reason: str
    excerpt: str
    status: FlagStatus
    note: str | None
    resolved_by: uuid.UUID | None
    resolved_at: datetime | None
    created_at: datetime


class FlagPageRead(BaseModel):
    items: list[FlagRead]
    next_cursor: str | None = None


class FlagAction(BaseModel):
    note: str | None = Field(default=None, max_length=2000)

    @field_validator("note")
    @classmethod
    def _note(cls, value: str | None) -> str | None:
        return None if value is None else _storable(value)


# The OpenAI-compatible facade's request (the fields a chat front end sends).
class FacadeMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None


class FacadeStreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class FacadeRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=200)
    messages: list[FacadeMessage] = Field(min_length=1, max_length=500)
    stream: bool = False
    stream_options: FacadeStreamOptions | None = None
    user: str | None = Field(default=None, max_length=256)
