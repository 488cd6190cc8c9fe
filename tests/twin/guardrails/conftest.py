"""Prints the rates the guardrail corpus tests measured at the end of the run."""

from __future__ import annotations

import pytest

from tests.twin.guardrails.scenarios import MEASURED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if MEASURED:
        terminalreporter.section("guardrail corpus rates")
        for name, figure in MEASURED.items():
            terminalreporter.write_line(f"{name}: {figure}")
