"""HTTP load from `wrk` (Debian package `wrk`): a load generator in C, so it takes little of the two cores.

A Python client costs about as much CPU per request as the server it measures; on a 2-core machine
that halves what the server can show. `wrk` runs a Lua script: the requests (one per fan, each with
its own conversation) go out round robin over as many connections as fans, a response counts as
failed unless it is a 200 whose body holds the expected marker, and the summary comes back as JSON
from the script's `done` hook.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

SCRIPT = r"""
local requests = %(requests)s
local marker = %(marker)s
local counter = 0
local threads = {}
local thread_no = 0

function setup(thread)
  thread:set("offset", thread_no)
  thread_no = thread_no + 1
  table.insert(threads, thread)
end

function init(args)
  failed = 0
  index = offset
end

function request()
  local r = requests[(index %% #requests) + 1]
  index = index + %(threads)d
  return wrk.format("POST", r[1], r[2], r[3])
end

function response(status, headers, body)
  if status ~= 200 or (marker ~= "" and not string.find(body, marker, 1, true)) then
    failed = failed + 1
  end
end

function done(summary, latency, requests)
  local failures = 0
  for _, thread in ipairs(threads) do
    failures = failures + thread:get("failed")
  end
  io.write(string.format(
    '{"requests": %%d, "duration_us": %%d, "errors": %%d, "failed": %%d, "p50_us": %%d, "p99_us": %%d}\n',
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    failures, latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class WrkRequest:
    path: str
    headers: dict[str, str]
    body: str


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def available() -> bool:
    return shutil.which("wrk") is not None


def _lua(value: object) -> str:
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string literal is a valid Lua string literal for ASCII text
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{_lua(k)}] = {_lua(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "{" + ", ".join(_lua(v) for v in value) + "}"
    raise TypeError(type(value))


def run(
    base_url: str, requests: list[WrkRequest], *, seconds: float, marker: str = "", threads: int = 2
) -> WrkResult:
    """`len(requests)` connections; each thread sends its share of the requests round robin."""
    threads = max(1, min(threads, len(requests)))
    table = [[r.path, r.headers, r.body] for r in requests]
    script = SCRIPT % {"requests": _lua(table), "marker": _lua(marker), "threads": threads}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as out:
        out.write(script)
        path = out.name
    try:
        done = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{len(requests)}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "60s",
                "-s",
                path,
                base_url,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(path)
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    return WrkResult(
        requests=summary["requests"],
        seconds=summary["duration_us"] / 1e6,
        errors=summary["errors"] + summary["failed"],
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
    )
