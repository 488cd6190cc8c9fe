"""Text normalisation: what the rules read."""

from __future__ import annotations

import pytest

from tests.twin.guardrails.corpora import BENIGN_QUESTIONS, INJECTION_ATTEMPTS
from vibethink.twin.guardrails import normalise, normalise_mapped


class TestNormalise:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("Política y APUESTAS", "politica y apuestas"),
            ("Ñandú  \t\n  Straße", "nandu strasse"),
            ("ig\u200bno\u200dre\ufeff", "ignore"),
            ("1gn0r3 pr3v10us", "ignore previous"),
            ("p e p s i", "pepsi"),
            ("P.E.P.S.I.", "pepsi."),
            ("a-d-i-d-a-s", "adidas"),
            ("Goooooool!!!!", "gol!"),
            ("ｐｕｍａ", "puma"),
            ("Рерѕі", "pepsi"),
            ("won 2-1 in 2010 for $100", "won 2-1 in 2010 for $100"),
            ("¡Qué golazo!", "que golazo!"),
        ],
    )
    def test_undoes_case_accents_and_common_obfuscations(self, raw: str, expected: str) -> None:
        assert normalise(raw) == expected

    def test_spaced_letters_do_not_swallow_a_neighbouring_one_letter_word(self) -> None:
        assert normalise("y a-d-i-d-a-s") == "y adidas"

    def test_can_keep_spaced_letters_apart(self) -> None:
        assert normalise("P E P S I", join_spaced=False) == "p e p s i"

    @pytest.mark.parametrize("text", [*INJECTION_ATTEMPTS, *BENIGN_QUESTIONS])
    def test_the_mapped_form_reads_the_same_and_points_back_into_the_original(self, text: str) -> None:
        mapped = normalise_mapped(text)
        assert mapped.text == normalise(text)
        assert len(mapped.origin) == len(mapped.text)
        assert list(mapped.origin) == sorted(mapped.origin)
        assert all(0 <= i < len(text) for i in mapped.origin)
