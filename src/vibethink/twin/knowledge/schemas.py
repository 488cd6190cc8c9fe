"""Pydantic shapes of the knowledge API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, computed_field

from vibethink.twin.knowledge.service import MAX_FILE_NAME, MAX_TITLE, MAX_URL
from vibethink.twin.models import SourceKind, SourceStatus

Title = Annotated[str, Field(min_length=1, max_length=MAX_TITLE)]
Url = Annotated[str, Field(max_length=MAX_URL, description="Where the knowledge comes from (http or https).")]
FileName = Annotated[str, Field(max_length=MAX_FILE_NAME)]
LastUpdated = Annotated[
    datetime | None,
    Field(
        default=None,
        validation_alias=AliasChoices("last_updated_at", "lastUpdated"),
        description="When the knowledge itself was last updated (ISO 8601).",
    ),
]


class KnowledgeSourceCreate(BaseModel):
    """A source sent as JSON; files (PDF included) go as multipart with the same fields and `file`."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    kind: SourceKind
    title: Title
    content: str | list[dict[str, Any]] | dict[str, Any] = Field(
        description="Text for TEXT, MARKDOWN and HTML; for QA a list of {question, answer}; for LOREBOOK"
        " a list of character-book entries ({keys, content}), a character book or a whole Character Card V2."
    )
    url: Url | None = None
    file_name: FileName | None = None
    last_updated_at: LastUpdated = None


class KnowledgeSourceUploadFields(BaseModel):
    """The form fields beside a multipart upload's `file`."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    kind: SourceKind | None = Field(default=None, description="Guessed from the file when absent.")
    title: Title | None = Field(default=None, description="The file's name when absent.")
    url: Url | None = None
    last_updated_at: LastUpdated = None


class KnowledgeSourceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    celebrity_id: uuid.UUID
    kind: SourceKind
    title: str
    url: str | None
    file_name: str | None
    last_updated_at: datetime | None
    status: SourceStatus
    chunk_count: int
    indexed_chunks: int
    error: str | None
    indexed_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @computed_field(description="indexed_chunks / chunk_count, from 0 to 1.")  # type: ignore[prop-decorator]
    @property
    def progress(self) -> float:
        return 1.0 if self.chunk_count == 0 else round(min(1.0, self.indexed_chunks / self.chunk_count), 4)


class ReindexRead(BaseModel):
    sources: int = Field(description="Sources queued for indexing again.")
    chunks: int = Field(description="Chunks they will have.")
    ready: int = Field(description="Sources already indexed again when the request returned.")


class PassageRead(BaseModel):
    chunk_id: uuid.UUID
    source_id: uuid.UUID
    title: str
    url: str | None
    text: str
    score: float
