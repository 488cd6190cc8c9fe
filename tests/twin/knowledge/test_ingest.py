"""Extracting clean text from every kind of source, and refusing what cannot be read."""

from __future__ import annotations

import pytest

from tests.twin.knowledge.documents import pdf_with_text
from vibethink.core.errors import DocumentTooLarge, EmptyDocument, InvalidInput, UnreadableDocument
from vibethink.twin.knowledge import ingest
from vibethink.twin.models import SourceKind


class TestText:
    def test_plain_text_is_normalized(self) -> None:
        raw = "Hola\r\n\r\n\r\n\r\nmundo\x00  con   espacios\u00a0raros\x07\n"
        assert ingest.extract(SourceKind.TEXT, raw) == "Hola\n\nmundo con espacios raros"

    def test_bytes_are_decoded_as_utf8_or_latin1(self) -> None:
        assert ingest.extract(SourceKind.TEXT, "Peñarol".encode()) == "Peñarol"
        assert ingest.extract(SourceKind.TEXT, "Peñarol".encode("latin-1")) == "Peñarol"

    def test_empty_text_is_refused(self) -> None:
        with pytest.raises(EmptyDocument) as caught:
            ingest.extract(SourceKind.TEXT, " \n\t\x00 ")
        assert caught.value.code == "empty_document"
        assert caught.value.status_code == 422

    def test_too_long_text_is_refused(self) -> None:
        with pytest.raises(DocumentTooLarge):
            ingest.extract(SourceKind.TEXT, "a" * (ingest.MAX_TEXT_CHARS + 1))
        with pytest.raises(DocumentTooLarge):
            ingest.extract(SourceKind.TEXT, b"a" * (ingest.MAX_UPLOAD_BYTES + 1))

    def test_a_list_is_not_text(self) -> None:
        with pytest.raises(InvalidInput):
            ingest.extract(SourceKind.TEXT, [{"question": "q", "answer": "a"}])


class TestMarkdown:
    def test_markup_goes_and_headings_stay(self) -> None:
        md = (
            "# El gol del siglo\n\nUn **gol** de [Maradona](https://example.com/gol) en *1986*.\n\n"
            "- primero\n- segundo\n\n![la foto](foto.png)\n\n```\ncódigo\n```\n\n| año | goles |\n|---|---|\n"
            "| 1986 | 5 |\n\n> cita <span>en línea</span>\n"
        )
        text = ingest.extract(SourceKind.MARKDOWN, md)
        assert text.splitlines()[0] == "El gol del siglo"
        assert "Un gol de Maradona en 1986." in text
        for gone in ("**", "](", "https://", "#", "```", "<span>", "|---"):
            assert gone not in text
        for kept in ("primero", "la foto", "código", "1986 | 5", "cita en línea"):
            assert kept in text


class TestHtml:
    def test_scripts_styles_and_navigation_are_dropped(self) -> None:
        html = """<!doctype html><html><head><title>Sitio</title><style>p { color: red }</style>
            <script>var secret = 1;</script></head><body><nav><a href="/">Inicio</a></nav>
            <h1>Biografía</h1><p>Nació en <b>Rosario</b> &amp; creció en Barcelona.</p>
            <ul><li>Uno</li><li>Dos</li></ul><noscript>Activa JS</noscript>
            <footer>Contacto</footer></body></html>"""
        text = ingest.extract(SourceKind.HTML, html)
        assert text.splitlines()[0] == "Biografía"
        assert "Nació en Rosario & creció en Barcelona." in text
        assert "Uno\n\nDos" in text
        for gone in ("secret", "color", "Inicio", "Activa JS", "Sitio", "<"):
            assert gone not in text

    def test_broken_html_still_yields_its_text(self) -> None:
        assert ingest.extract(SourceKind.HTML, "<p>Sin <b>cerrar<div>nada") == "Sin cerrar\n\nnada"


class TestPdf:
    def test_the_text_layer_of_every_page_is_extracted(self) -> None:
        text = ingest.extract(SourceKind.PDF, pdf_with_text("Primera pagina (gol)", "Second page"))
        assert "Primera pagina (gol)" in text
        assert "Second page" in text

    @pytest.mark.parametrize(
        "data",
        [
            b"%PDF-1.4\nthis is not really a pdf",
            pdf_with_text("cut")[:60],
            b"PK\x03\x04 a zip file",
        ],
        ids=["garbage", "truncated", "not-a-pdf"],
    )
    def test_a_corrupt_pdf_is_refused(self, data: bytes) -> None:
        with pytest.raises((UnreadableDocument, EmptyDocument)) as caught:
            ingest.extract(SourceKind.PDF, data)
        assert caught.value.status_code == 422

    def test_a_pdf_without_text_is_empty(self) -> None:
        with pytest.raises(EmptyDocument):
            ingest.extract(SourceKind.PDF, pdf_with_text(""))

    def test_a_pdf_must_be_a_file(self) -> None:
        with pytest.raises(InvalidInput):
            ingest.extract(SourceKind.PDF, "%PDF-1.4 as text")


class TestQuestionsAndAnswers:
    def test_each_pair_is_a_record(self) -> None:
        text = ingest.extract(
            SourceKind.QA,
            [
                {"question": "¿Tu equipo?", "answer": "Boca."},
                {"question": "Favorite food?", "answer": "Asado"},
            ],
        )
        assert ingest.records(text) == ["Q: ¿Tu equipo?\nA: Boca.", "Q: Favorite food?\nA: Asado"]

    def test_json_text_is_accepted(self) -> None:
        text = ingest.extract(SourceKind.QA, b'{"pairs": [{"q": "Who?", "a": "Me"}]}')
        assert ingest.records(text) == ["Q: Who?\nA: Me"]

    @pytest.mark.parametrize(
        "content",
        [[{"question": "only a question"}], ["not an object"], "{not json", []],
    )
    def test_bad_pairs_are_refused(self, content: object) -> None:
        with pytest.raises(InvalidInput):
            ingest.extract(SourceKind.QA, content)  # type: ignore[arg-type]


class TestLorebook:
    def test_entries_of_a_character_card_become_records(self) -> None:
        card = {
            "spec": "chara_card_v2",
            "data": {
                "name": "Andrés",
                "character_book": {
                    "entries": [
                        {
                            "keys": ["Mundial", "World Cup"],
                            "content": "Narró cinco mundiales.",
                            "enabled": True,
                        },
                        {"keys": ["secreto"], "content": "Desactivada.", "enabled": False},
                        {"keys": ["gol"], "content": "Su grito de gol dura once segundos.", "name": "grito"},
                    ]
                },
            },
        }
        text = ingest.extract(SourceKind.LOREBOOK, card)
        assert ingest.records(text) == [
            "Mundial, World Cup\nNarró cinco mundiales.",
            "grito, gol\nSu grito de gol dura once segundos.",
        ]

    def test_a_book_with_no_usable_entry_is_empty(self) -> None:
        with pytest.raises(EmptyDocument):
            ingest.extract(SourceKind.LOREBOOK, [{"keys": ["x"], "content": "  "}])


def test_file_kinds_are_guessed_from_names_types_and_bytes() -> None:
    assert ingest.kind_of_file("bio.PDF", None, b"") is SourceKind.PDF
    assert ingest.kind_of_file("notes.md", "text/plain", b"") is SourceKind.MARKDOWN
    assert ingest.kind_of_file("page", "text/html; charset=utf-8", b"") is SourceKind.HTML
    assert ingest.kind_of_file(None, "application/octet-stream", b"%PDF-1.7") is SourceKind.PDF
    assert ingest.kind_of_file("cards.json", "application/json", b"[]") is None
