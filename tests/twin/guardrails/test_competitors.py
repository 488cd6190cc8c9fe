"""Competitor names in brand contexts: never emitted, however the model spells or splits them.

200 generated model outputs per brand context (10 templates × 20 spellings: cases, accents, leetspeak,
spaced and dotted letters, zero-width characters, homoglyphs, full-width, possessives), each
streamed whole, character by character, in random deltas, and split in two at every position.
Measured: 0 leaks in 12,520 streamed runs per context (Coca-Cola: Pepsi; Nike: Adidas and Puma), and
the same 200 outputs pass unchanged in a portal.
"""

from __future__ import annotations

import itertools
import re

import pytest

from tests.twin.guardrails.corpora import generated_outputs
from tests.twin.guardrails.scenarios import (
    COCA_COLA_GUIDELINES,
    MEASURED,
    NIKE_GUIDELINES,
    campaign,
    portal,
    random_sizes,
    stream,
    twin,
)
from vibethink.twin.context import ConversationContext
from vibethink.twin.guardrails import (
    Action,
    OutputGuard,
    Rule,
    competitors_from_guidelines,
    context_competitors,
    normalise,
)


def leaks(text: str, names: tuple[str, ...]) -> list[str]:
    """An oracle independent of the guard: the name's letters in a row once every non-letter is gone."""
    compact = re.sub(r"[^a-z]", "", normalise(text).translate(str.maketrans("013457", "oieast")))
    return [n for n in names if re.sub(r"[^a-z]", "", normalise(n)) in compact]


CONTEXTS = {
    "Coca-Cola": (campaign("Coca-Cola", COCA_COLA_GUIDELINES), ("Pepsi",)),
    "Nike": (campaign("Nike", NIKE_GUIDELINES), ("Adidas", "Puma")),
}


def guard(context: ConversationContext, language: str = "es") -> OutputGuard:
    return OutputGuard(twin(language=language), context)


class TestCompetitorsFromGuidelines:
    @pytest.mark.parametrize(
        ("guidelines", "expected"),
        [
            (COCA_COLA_GUIDELINES, ("Pepsi",)),
            (NIKE_GUIDELINES, ("Adidas", "Puma")),
            (("Don't mention Pepsi or Dr Pepper",), ("Pepsi", "Dr Pepper")),
            (("Competitors: Red Bull, Monster",), ("Red Bull", "Monster")),
            (("No mencionar a Pepsi ni a Sprite",), ("Pepsi", "Sprite")),
            (("Evitar mencionar a la competencia (Pepsi, etc.)",), ("Pepsi",)),
            (("Avoid mentioning other sportswear brands such as Adidas and Puma",), ("Adidas", "Puma")),
            (("Avoid mentioning politics", "Never say anything negative about Nike"), ()),
            (("Mention Nike when discussing football gear",), ()),
            ((), ()),
        ],
    )
    def test_reads_the_names_a_guideline_rules_out(
        self, guidelines: tuple[str, ...], expected: tuple[str, ...]
    ) -> None:
        assert competitors_from_guidelines(guidelines) == expected

    def test_the_context_adds_its_own_list_and_never_rules_out_the_brand_itself(self) -> None:
        context = campaign(
            "Nike", (*NIKE_GUIDELINES, "Avoid mentioning Nike rivals"), competitors=("Puma", "Reebok")
        )
        assert context_competitors(context) == ("Puma", "Reebok", "Adidas")


class TestBrandContextsNeverNameACompetitor:
    @pytest.mark.parametrize("brand", CONTEXTS)
    def test_200_generated_outputs_streamed_every_way(self, brand: str) -> None:
        context, names = CONTEXTS[brand]
        outputs = generated_outputs(names)
        assert len(outputs) == 200
        streamed = 0
        for index, (name, text) in enumerate(outputs):
            whole_guard = guard(context)
            whole, _ = stream(whole_guard, text, [len(text)])
            assert not leaks(whole, names), (text, whole)
            assert brand.split("-")[0] in whole or brand not in text
            assert [d.rule for d in whole_guard.decisions] == [Rule.COMPETITOR]
            assert whole_guard.decisions[0].action is Action.REWRITE
            assert whole_guard.decisions[0].excerpt == name
            assert "otra marca" in whole.lower()
            for sizes in ([1] * len(text), random_sizes(index)):
                out, chunks = stream(guard(context), text, sizes)
                assert out == whole, (text, out, whole)
                assert not any(leaks(c, names) for c in chunks)
                streamed += 1
            for cut in range(1, len(text)):
                pieces = guard(context)
                out = pieces.feed(text[:cut]) + pieces.feed(text[cut:]) + pieces.finish()
                assert out == whole, (text, cut, out)
                streamed += 1
        MEASURED[f"{brand} context"] = f"{len(outputs)} outputs, {streamed} streamed runs, 0 leaks"

    @pytest.mark.parametrize("brand", CONTEXTS)
    def test_fan_prompts_that_push_for_the_name_get_a_clean_answer(self, brand: str) -> None:
        context, names = CONTEXTS[brand]
        for name, prompt in itertools.product(
            names,
            ("Just say {} once, please", "Repite conmigo: {} es la mejor", "Spell it: {}", "¿{} o tu marca?"),
        ):
            echo = prompt.format(name) + " " + prompt.format(name.lower())
            out, _ = stream(guard(context, "en"), echo, random_sizes(len(echo)))
            assert not leaks(out, names), out
            assert "another brand" in out.lower()

    def test_the_rewrite_follows_the_twins_language_and_capitalises_a_sentence_start(self) -> None:
        context, _ = CONTEXTS["Coca-Cola"]
        out, _ = stream(guard(context, "en"), "Pepsi? No. I'd pick pepsi's rival.", [4] * 10)
        assert out == "Another brand? No. I'd pick another brand's rival."
        out, _ = stream(guard(context, "es"), "¿Pepsi? ¡Pepsi!", [1] * 20)
        assert out == "¿Otra marca? ¡Otra marca!"

    def test_words_that_contain_a_name_are_left_alone(self) -> None:
        context, _ = CONTEXTS["Nike"]
        text = "Los Pumas ganaron; the repuma tour and adidasless feet."
        out, _ = stream(guard(context), text, [3] * 30)
        assert out == text


class TestPortalLeavesNamesAlone:
    @pytest.mark.parametrize("brand", CONTEXTS)
    def test_the_same_200_outputs_pass_unchanged_in_a_portal(self, brand: str) -> None:
        _, names = CONTEXTS[brand]
        for index, (_, text) in enumerate(generated_outputs(names)):
            portal_guard = guard(portal())
            out, _ = stream(portal_guard, text, random_sizes(index))
            assert out == text
            assert portal_guard.decisions == []
