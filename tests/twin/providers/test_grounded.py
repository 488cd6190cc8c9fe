"""The offline grounded provider: answers only from the passages, in the twin's voice, deterministically."""

from __future__ import annotations

from tests.twin.conftest import make_context, make_passage, make_profile, make_request
from vibethink.twin.context import BehaviourOverrides
from vibethink.twin.providers.base import Generation, GenerationRequest
from vibethink.twin.providers.grounded import GroundedProvider

MUNDIAL = make_passage(
    "Argentina ganó el Mundial de 1986 en México. Diego Maradona fue elegido mejor jugador del torneo. "
    "La final se jugó en el Estadio Azteca.",
    title="Mundial 1986",
    url="https://kb.test/mundial-86",
    n=1,
)
PEPSI = make_passage(
    "Pepsi patrocinó la transmisión del Mundial de 1986. "
    "El gol del siglo fue contra Inglaterra en el Mundial.",
    title="Patrocinios",
    n=2,
)


async def answer(request: GenerationRequest) -> tuple[str, list[str], Generation]:
    generation = Generation()
    deltas = [d async for d in GroundedProvider().stream(request, generation)]
    return "".join(deltas), deltas, generation


class TestAnswering:
    async def test_it_answers_with_the_best_overlapping_sentence_and_cites_it(self) -> None:
        reply, _, generation = await answer(
            make_request("¿quién GANO el mundial de 1986?", passages=(MUNDIAL,))
        )
        assert "Argentina ganó el Mundial de 1986 en México. [1]" in reply
        assert "Estadio Azteca" not in reply
        assert [(c.number, c.title, c.url) for c in generation.citations] == [
            (1, "Mundial 1986", "https://kb.test/mundial-86")
        ]
        assert generation.model == "grounded"
        assert generation.finish_reason == "stop"

    async def test_accents_and_case_do_not_matter(self) -> None:
        reply, _, _ = await answer(make_request("MARADONA mejor jugador", passages=(MUNDIAL,)))
        assert "Diego Maradona fue elegido mejor jugador del torneo. [1]" in reply

    async def test_it_streams_a_sentence_at_a_time_joining_into_the_reply(self) -> None:
        reply, deltas, generation = await answer(make_request(passages=(MUNDIAL,), is_first_turn=True))
        assert len(deltas) >= 2
        assert "".join(deltas) == reply
        assert all(d.rstrip().endswith((".", "!", "?", "…", "]")) for d in deltas)
        assert generation.usage.output_tokens == len(reply.split())
        assert generation.usage.input_tokens >= len(MUNDIAL.text.split())

    async def test_the_same_request_gives_the_same_answer(self) -> None:
        request = make_request("¿Dónde se jugó la final del Mundial?", passages=(MUNDIAL, PEPSI))
        assert (await answer(request))[0] == (await answer(request))[0]

    async def test_it_never_exceeds_the_maximum_length(self) -> None:
        long = make_passage(" ".join(["Maradona jugó un partido memorable en el Mundial de 1986."] * 40), n=3)
        for limit in (100, 160, 400):
            reply, _, _ = await answer(
                make_request(
                    "Maradona Mundial", passages=(long,), profile=make_profile(max_response_length=limit)
                )
            )
            assert len(reply) <= limit

    async def test_citations_are_numbered_in_the_order_they_appear(self) -> None:
        second = make_passage("El gol del siglo de Maradona fue contra Inglaterra.", title="Gol", n=2)
        reply, _, generation = await answer(
            make_request("gol de Maradona contra Inglaterra y mejor jugador", passages=(second, MUNDIAL))
        )
        assert "[1]" in reply
        assert generation.citations[0].title == "Gol"


class TestTheTwinsVoice:
    async def test_the_first_turn_opens_with_the_greeting(self) -> None:
        reply, _, _ = await answer(make_request(passages=(MUNDIAL,), is_first_turn=True))
        assert reply.startswith("¡Hola, amigo futbolero!")

    async def test_a_deployment_greeting_overrides_the_profile(self) -> None:
        request = make_request(
            passages=(MUNDIAL,),
            is_first_turn=True,
            overrides=BehaviourOverrides(greeting="¡Bienvenidos a la Copa!"),
        )
        reply, _, _ = await answer(request)
        assert reply.startswith("¡Bienvenidos a la Copa!")

    async def test_later_turns_do_not_greet(self) -> None:
        reply, _, _ = await answer(make_request(passages=(MUNDIAL,)))
        assert "amigo futbolero" not in reply

    async def test_a_catchphrase_that_fits_the_question_is_used(self) -> None:
        profile = make_profile(catchphrases=("¡Qué golazo, señores!", "¡Vamos!"))
        reply, _, _ = await answer(
            make_request("¿Qué golazo hizo Maradona?", passages=(MUNDIAL, PEPSI), profile=profile)
        )
        assert reply.endswith("¡Qué golazo, señores!")

    async def test_english_twins_speak_english_when_they_do_not_know(self) -> None:
        profile = make_profile(language="en", expertise=("football",), greeting=None)
        reply, _, generation = await answer(make_request("What is the capital of Mongolia?", profile=profile))
        assert reply.startswith("Oh, my friend! I don't have any information about that")
        assert "Ask me about football." in reply
        assert generation.citations == []

    async def test_an_unknown_language_falls_back_to_english(self) -> None:
        profile = make_profile(language="ja", greeting=None)
        reply, _, _ = await answer(make_request("Tokyo tower height", profile=profile, is_first_turn=True))
        assert reply.startswith("Hi! I'm Andrés Cantor.")


class TestHeadingsAndPairs:
    """What the knowledge extractors write around the text: titles on lines of their own, Q&A pairs."""

    async def test_a_title_is_never_said_but_its_words_find_the_text_under_it(self) -> None:
        passage = make_passage(
            "Andrés Cantor\nNarra partidos desde 1987.\nMundiales\nHa narrado muchas Copas del Mundo.\n"
            "Cómo narra\nPrepara cada partido estudiando a los jugadores.",
            n=1,
        )
        reply, _, _ = await answer(make_request("¿Qué Mundiales narraste?", passages=(passage,)))
        assert "Ha narrado muchas Copas del Mundo. [1]" in reply
        assert "Mundiales [1]" not in reply
        assert "Cómo narra" not in reply

    async def test_a_pairs_answer_is_said_without_its_question_or_markers(self) -> None:
        pairs = make_passage(
            "Q: ¿Cuál es tu equipo favorito?\nA: Boca Juniors, desde chico.\n"
            "Q: ¿Dónde naciste?\nA: En Buenos Aires.",
            n=1,
        )
        reply, _, _ = await answer(make_request("¿cuál es tu equipo favorito?", passages=(pairs,)))
        assert "Boca Juniors, desde chico. [1]" in reply
        assert "Q:" not in reply
        assert "A:" not in reply
        assert "Buenos Aires" not in reply

    async def test_prose_wrapped_mid_sentence_is_not_taken_for_a_title(self) -> None:
        wrapped = make_passage("Maradona marcó el gol del siglo\ncontra Inglaterra en el Mundial.", n=1)
        reply, _, _ = await answer(make_request("gol del siglo de Maradona", passages=(wrapped,)))
        assert "Maradona marcó el gol del siglo [1]" in reply


class TestNeverInventing:
    async def test_without_passages_it_says_in_character_that_it_does_not_know(self) -> None:
        reply, _, generation = await answer(make_request("¿Cuántos goles hizo Pelé en 1958?"))
        assert reply.startswith("¡Uy, amigo! De eso no tengo información")
        assert "Pregúntame sobre fútbol y Mundiales." in reply
        assert generation.citations == []

    async def test_passages_that_do_not_overlap_enough_are_not_used(self) -> None:
        reply, _, _ = await answer(
            make_request("¿Cuál es la receta de la paella valenciana?", passages=(MUNDIAL,))
        )
        assert reply.startswith("¡Uy, amigo!")
        assert "Argentina" not in reply

    async def test_in_a_sponsors_context_sentences_naming_a_competitor_are_left_out(self) -> None:
        context = make_context(competitors=("Pepsi",), brand_name="Coca-Cola")
        request = make_request("patrocinio del Mundial de 1986", passages=(PEPSI, MUNDIAL), context=context)
        reply, _, _ = await answer(request)
        assert "Pepsi" not in reply
        assert "Mundial" in reply
