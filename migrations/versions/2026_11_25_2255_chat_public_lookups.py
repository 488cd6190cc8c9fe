"""Chat: public lookups a fan's request needs before any tenant context (deployments by id).

Revision ID: 0006_chat_public
Revises: 0005_knowledge_search
Create Date: 2026-11-25 22:55:00+00:00
"""

from collections.abc import Sequence

revision: str = "0006_chat_public"
down_revision: str | None = "0005_knowledge_search"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
