"""Guardrails: every decision names its rule and reason. The rules themselves live in this module."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class Stage(enum.StrEnum):
    INPUT = "INPUT"
    OUTPUT = "OUTPUT"


class Action(enum.StrEnum):
    ALLOW = "ALLOW"
    BLOCK = "BLOCK"
    REWRITE = "REWRITE"
    TRUNCATE = "TRUNCATE"


@dataclass(frozen=True, slots=True)
class Decision:
    stage: Stage
    rule: str  # stable id, e.g. "input.prompt_injection", "output.competitor_mention"
    action: Action
    reason: str
    excerpt: str = ""

    @property
    def blocks(self) -> bool:
        return self.action is Action.BLOCK

    def as_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage.value,
            "rule": self.rule,
            "action": self.action.value,
            "reason": self.reason,
            "excerpt": self.excerpt,
        }
