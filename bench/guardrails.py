"""`python -m bench.guardrails [--rounds N]`: guardrail latency on the test corpora, in µs.

Input: `check_input` per fan message (benign questions, known attacks, all of them), and `normalise`
alone. Output: an `OutputGuard` over whole answers — the 200 competitor outputs of a brand context
and a 1,000-character answer — fed in 4-character deltas (about one model token each) and in one piece.
Pure CPU, one process, no database: run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable, Sequence

from tests.twin.guardrails.corpora import BENIGN_QUESTIONS, INJECTION_ATTEMPTS, generated_outputs
from tests.twin.guardrails.scenarios import NIKE_GUIDELINES, campaign, portal, twin

from bench.report import machine, percentile, table
from vibethink.twin.context import ConversationContext
from vibethink.twin.guardrails import OutputGuard, check_input, normalise
from vibethink.twin.profile import PersonalityProfile

LONG_ANSWER = (
    "¡Qué noche aquella! El estadio temblaba, la afición cantaba y en el minuto noventa el balón cayó "
    "a los pies del delantero, que le pegó de primera al ángulo. Todavía se me pone la piel de gallina. "
) * 5


def _timed(call: Callable[[], object], rounds: int) -> list[float]:
    """Microseconds per call, one sample per round."""
    samples = []
    for _ in range(rounds):
        started = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - started) / 1000)
    return samples


def _row(name: str, unit: str, samples: Sequence[float], per: int = 1) -> list[object]:
    ordered = sorted(s / per for s in samples)
    mean = statistics.fmean(ordered)
    return [
        name,
        unit,
        f"{mean:,.1f}",
        f"{percentile(ordered, 0.5):,.1f}",
        f"{percentile(ordered, 0.99):,.1f}",
        f"{1_000_000 / mean:,.0f}",
    ]


def _stream(profile: PersonalityProfile, context: ConversationContext, text: str, delta: int) -> str:
    guard = OutputGuard(profile, context)
    out = [guard.feed(text[i : i + delta]) for i in range(0, len(text), delta)]
    out.append(guard.finish())
    return "".join(out)


def run(rounds: int) -> str:
    profile = twin(language="es", rating="PG", banned=("apuestas", "política"))
    context = portal()
    corpora = {
        "benign fan questions": BENIGN_QUESTIONS,
        "known attacks": INJECTION_ATTEMPTS,
        "all": (*BENIGN_QUESTIONS, *INJECTION_ATTEMPTS),
    }
    rows: list[list[object]] = []
    for name, messages in corpora.items():
        samples = [s for m in messages for s in _timed(lambda m=m: check_input(m, profile, context), rounds)]
        rows.append(_row(f"check_input, {name} ({len(messages)})", "message", samples))
    samples = [s for m in BENIGN_QUESTIONS for s in _timed(lambda m=m: normalise(m), rounds)]
    rows.append(_row("normalise, benign fan questions", "message", samples))

    nike_twin, nike = (
        twin(language="es", rating="PG", banned=("apuestas",)),
        campaign("Nike", NIKE_GUIDELINES),
    )
    outputs = [text for _, text in generated_outputs(("Adidas", "Puma"))]
    guard_rounds = max(1, rounds // 4)
    for delta in (4, 10_000):
        label = "4-char deltas" if delta == 4 else "one piece"
        samples = [
            s
            for t in outputs
            for s in _timed(lambda t=t, d=delta: _stream(nike_twin, nike, t, d), guard_rounds)
        ]
        rows.append(_row(f"OutputGuard, Nike context, 200 outputs, {label}", "answer (~60 chars)", samples))
        samples = _timed(lambda d=delta: _stream(nike_twin, nike, LONG_ANSWER, d), guard_rounds * 20)
        rows.append(_row(f"OutputGuard, {len(LONG_ANSWER):,}-char answer, {label}", "answer", samples))
        deltas = -(-len(LONG_ANSWER) // delta)
        rows.append(_row(f"OutputGuard, {len(LONG_ANSWER):,}-char answer, {label}", "delta", samples, deltas))
    return table(["what", "per", "mean µs", "p50 µs", "p99 µs", "per second"], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.guardrails", description=__doc__)
    parser.add_argument("--rounds", type=int, default=200, help="timed calls per message (default 200)")
    args = parser.parse_args(argv)
    print("# Guardrails — latency per call on the test corpora")
    print(machine())
    for message in (*BENIGN_QUESTIONS, *INJECTION_ATTEMPTS):
        check_input(message, twin(), portal())  # warm the pattern caches before timing
    gc.collect()
    print(run(args.rounds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
