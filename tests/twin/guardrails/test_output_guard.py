"""The output guard while streaming: length limit, banned topics and rating on the twin's answer."""

from __future__ import annotations

import pytest

from tests.twin.guardrails.scenarios import portal, random_sizes, stream, twin
from vibethink.twin.guardrails import Action, OutputGuard, Rule

ANSWER = (
    "What a night that was. The stadium was shaking, the fans were singing, and in the ninetieth minute "
    "the ball fell to the striker who hit it first time into the top corner. I still get chills! "
) * 6


class TestMaxResponseLength:
    @pytest.mark.parametrize("limit", [100, 101, 150, 237, 400, 999])
    @pytest.mark.parametrize("delta", [1, 3, 17, 64, 5000])
    def test_never_emits_past_the_limit_and_stops_on_a_word_boundary(self, limit: int, delta: int) -> None:
        guard = OutputGuard(twin(language="en", max_length=limit), portal())
        emitted = ""
        for start in range(0, len(ANSWER), delta):
            emitted += guard.feed(ANSWER[start : start + delta])
            assert len(emitted) <= limit
        emitted += guard.finish()
        assert len(emitted) <= limit
        assert emitted.endswith("…")
        kept = emitted.removesuffix("…")
        assert ANSWER.startswith(kept)
        assert ANSWER[len(kept)] in " ,.!", "cut inside a word"
        assert len(emitted) > limit - 25, "cut far earlier than needed"
        assert guard.stopped
        [decision] = guard.decisions
        assert (decision.rule, decision.action) == (Rule.MAX_LENGTH, Action.TRUNCATE)
        assert str(limit) in decision.reason

    def test_an_answer_within_the_limit_is_untouched(self) -> None:
        guard = OutputGuard(twin(language="en", max_length=len(ANSWER)), portal())
        out, _ = stream(guard, ANSWER, random_sizes(7))
        assert out == ANSWER
        assert not guard.stopped
        assert guard.decisions == []

    def test_nothing_is_emitted_after_the_stop(self) -> None:
        guard = OutputGuard(twin(language="en", max_length=100), portal())
        stream(guard, ANSWER, [50] * 20)
        assert guard.stopped
        assert guard.feed("more text") == ""
        assert guard.finish() == ""

    def test_one_word_longer_than_the_limit_is_cut_rather_than_dropped(self) -> None:
        guard = OutputGuard(twin(language="en", max_length=100), portal())
        out, _ = stream(guard, "x" * 300, [7] * 50)
        assert out == "x" * 99 + "…"

    def test_text_is_released_sentence_by_sentence_while_streaming(self) -> None:
        guard = OutputGuard(twin(language="en"), portal())
        _, chunks = stream(guard, ANSWER, [5] * 200)
        released = [c for c in chunks[:-1] if c]
        assert len(released) >= 10
        assert all(c.rstrip().endswith((".", "!")) for c in released)


class TestBannedTopicsInTheAnswer:
    def test_the_sentence_is_replaced_and_the_answer_goes_on(self) -> None:
        guard = OutputGuard(twin(language="es", banned=("apuestas",)), portal())
        text = "¡Qué partido! Las casas de apuestas pagaban mucho por ese gol. Pero lo mejor fue la afición."
        out, _ = stream(guard, text, random_sizes(3))
        assert out == "¡Qué partido! Prefiero no entrar en ese tema. Pero lo mejor fue la afición."
        [decision] = guard.decisions
        assert (decision.rule, decision.action) == (Rule.BANNED_TOPIC_IN_OUTPUT, Action.REWRITE)
        assert "apuestas" in decision.reason
        assert not guard.stopped

    def test_english_answers_get_an_english_replacement_once(self) -> None:
        guard = OutputGuard(twin(language="en", banned=("betting",)), portal())
        text = "Great game. Betting odds were wild. Gamblers lost a lot. See you next week!"
        out, _ = stream(guard, text, [1] * len(text))
        assert out == "Great game. I'd rather not get into that. See you next week!"
        assert [d.rule for d in guard.decisions] == [Rule.BANNED_TOPIC_IN_OUTPUT] * 2

    def test_a_long_sentence_already_on_screen_ends_the_answer(self) -> None:
        guard = OutputGuard(twin(language="en", banned=("betting",)), portal())
        text = (
            "It was one of those nights " + "that you never forget, " * 10 + "and the betting was wild. More."
        )
        out, _ = stream(guard, text, [4] * 200)
        assert "betting" not in out
        assert out.endswith("…")
        assert guard.stopped
        assert guard.decisions[-1].action is Action.BLOCK


class TestRatingOfTheAnswer:
    TEXT = (
        "Great save. That was a damn good one. Then he said shit happens. Then he said fuck it. "
        "Next question!"
    )

    @pytest.mark.parametrize(
        ("rating", "expected"),
        [
            ("G", "Great save. I'd rather not get into that. Next question!"),
            ("PG", "Great save. That was a damn good one. I'd rather not get into that. Next question!"),
            (
                "PG-13",
                "Great save. That was a damn good one. Then he said shit happens. "
                "I'd rather not get into that. Next question!",
            ),
            ("R", TEXT),
        ],
    )
    def test_each_rating_keeps_what_it_allows(self, rating: str, expected: str) -> None:
        guard = OutputGuard(twin(language="en", rating=rating), portal())
        out, _ = stream(guard, self.TEXT, random_sizes(11))
        assert out == expected
        assert all(d.rule == Rule.RATING_IN_OUTPUT for d in guard.decisions)


class TestVerdictsKeptForRepeatedSentences:
    TEXT = "Great game. Betting odds were wild. See you next week!"

    def test_every_guard_records_its_own_decision_for_a_sentence_judged_before(self) -> None:
        outs, decisions = [], []
        for _ in range(3):
            guard = OutputGuard(twin(language="en", banned=("betting",)), portal())
            out, _ = stream(guard, self.TEXT, random_sizes(5))
            outs.append(out)
            decisions.append([(d.rule, d.action, d.reason) for d in guard.decisions])
        assert outs == ["Great game. I'd rather not get into that. See you next week!"] * 3
        assert decisions[0] == decisions[1] == decisions[2]
        assert decisions[0][0][:2] == (Rule.BANNED_TOPIC_IN_OUTPUT, Action.REWRITE)

    def test_a_twin_with_other_rules_judges_the_same_sentence_by_its_own(self) -> None:
        allowed = OutputGuard(twin(language="en"), portal())
        assert stream(allowed, self.TEXT, [len(self.TEXT)])[0] == self.TEXT
        assert not allowed.decisions
        banned = OutputGuard(twin(language="en", banned=("betting",)), portal())
        assert "Betting" not in stream(banned, self.TEXT, [len(self.TEXT)])[0]

    def test_a_piece_too_long_to_keep_is_still_judged(self) -> None:
        text = "We talked for hours, " * 40 + "and then about betting. Bye."
        guard = OutputGuard(twin(language="en", banned=("betting",), max_length=5000), portal())
        out, _ = stream(guard, text, [len(text)])
        assert "betting" not in out
        assert guard.decisions[0].rule is Rule.BANNED_TOPIC_IN_OUTPUT
