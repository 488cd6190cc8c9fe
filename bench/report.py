"""Tables, percentiles and the machine description printed with every result."""

from __future__ import annotations

import hashlib
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Sequence
from datetime import UTC, datetime


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted sequence."""
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values)) - 1))
    return sorted_values[rank]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def overhead(rls: float, baseline: float) -> str:
    if baseline <= 0 or rls != rls or baseline != baseline:
        return "n/a"
    return f"{(rls / baseline - 1) * 100:+.1f} %"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table, columns padded for the terminal."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def cpu_probe() -> float:
    """Microseconds for a fixed piece of pure-Python work (SHA-256 of short strings, dict and string
    building), best of seven: this machine's speed drifts by up to 2x through the day with no load of
    its own (a host shared with others), so figures taken minutes apart need this to be compared."""
    best = float("inf")
    for _ in range(7):
        started = time.perf_counter()
        for i in range(2000):
            text = f"event-{i}"
            hashlib.sha256(text.encode()).hexdigest()
            {"id": i, "text": text, "parts": text.split("-")}
        best = min(best, time.perf_counter() - started)
    return best * 1e6


def machine() -> str:
    """Cores, CPU model, memory, load, date, CPU probe: the context every figure needs."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for row in cpuinfo:
                if row.startswith("model name"):
                    model = row.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = "unknown"
    try:
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            kib = int(next(r for r in meminfo if r.startswith("MemTotal")).split()[1])
            memory = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    kernel = platform.release()
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"machine: {os.cpu_count()} cores ({model}), {memory} RAM, Linux {kernel}, Python"
        f" {platform.python_version()}; load average before the run: {load}; {date};"
        f" CPU probe {cpu_probe():,.0f} µs (lower is faster)"
    )


def tool_version(binary: str) -> str:
    try:
        return subprocess.run(
            [binary, "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"{binary}: not found"


def _stat_fields(pid: int | str) -> list[str]:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def parent_pid(pid: int) -> int | None:
    """A live process's parent, from /proc (None once it has gone)."""
    try:
        return int(_stat_fields(pid)[1])
    except OSError:
        return None


def backend_cpu_us(pid: int) -> float:
    """CPU time a process has run, in µs, from the scheduler's own nanosecond count (the clock ticks of
    `process_cpu_seconds` are too coarse for a few seconds of one backend)."""
    with open(f"/proc/{pid}/schedstat") as stat:
        return int(stat.read().split()[0]) / 1000


def process_cpu_seconds(pid: int | str) -> float:
    """User + system CPU time of a process, from /proc."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu_seconds(postmaster: int) -> float:
    """CPU time of a PostgreSQL server: the postmaster, its live children, and the children it has
    reaped (backends of closed connections count too), from /proc."""
    fields = _stat_fields(postmaster)
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            child = _stat_fields(pid)
        except OSError:
            continue
        if child[1] == str(postmaster):
            ticks += int(child[11]) + int(child[12])
    return ticks / os.sysconf("SC_CLK_TCK")
