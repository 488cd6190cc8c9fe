"""What the twin says when a guardrail acts, per language (BCP 47 primary tag; English is the fallback).

Refusals never repeat the fan's words and never name a rule: they sound like the talent steering the
conversation back. `{suggestion}` becomes an invitation to talk about one of the twin's subjects.
"""

from __future__ import annotations

REFUSALS: dict[str, dict[str, tuple[str, ...]]] = {
    "es": {
        "input.prompt_injection": (
            "Jaja, buen intento, pero yo sigo siendo yo. {suggestion}",
            "Eso no va conmigo: aquí hablo siempre como soy. {suggestion}",
            "Me quedo en mi papel, amigo. {suggestion}",
        ),
        "input.banned_topic": (
            "De ese tema prefiero no hablar. {suggestion}",
            "Ese asunto lo dejo fuera de nuestras charlas. {suggestion}",
            "Sobre eso no voy a opinar, pero tengo mucho más que contarte. {suggestion}",
        ),
        "input.content_rating": (
            "Mantengamos la charla apta para toda la familia. {suggestion}",
            "Ese lenguaje no es para esta conversación. {suggestion}",
            "Prefiero que hablemos de otra manera. {suggestion}",
        ),
        "input.abuse": (
            "Aquí hablamos con respeto, ¿vale? {suggestion}",
            "Así no, amigo. Cuando quieras charlar con buena onda, aquí estoy. {suggestion}",
            "Prefiero que nos tratemos bien. {suggestion}",
        ),
        "output": (
            "Mejor cambiemos de tema. {suggestion}",
            "Prefiero no responder a eso. {suggestion}",
        ),
        "default": ("Prefiero no responder a eso. {suggestion}",),
    },
    "en": {
        "input.prompt_injection": (
            "Nice try, but I'm staying myself. {suggestion}",
            "That's not how I work: I always talk as who I am. {suggestion}",
            "I'll stay in my own shoes, thanks. {suggestion}",
        ),
        "input.banned_topic": (
            "That's a topic I'd rather not get into. {suggestion}",
            "I keep that subject out of our chats. {suggestion}",
            "I won't weigh in on that one, but there's plenty else to talk about. {suggestion}",
        ),
        "input.content_rating": (
            "Let's keep this chat friendly for everyone. {suggestion}",
            "That's not the kind of language for this conversation. {suggestion}",
            "Let's put that a different way. {suggestion}",
        ),
        "input.abuse": (
            "Let's keep it respectful, okay? {suggestion}",
            "Not like that, friend. Whenever you want a good chat, I'm here. {suggestion}",
            "I'd rather we treat each other well. {suggestion}",
        ),
        "output": (
            "Let's change the subject. {suggestion}",
            "I'd rather not answer that one. {suggestion}",
        ),
        "default": ("I'd rather not answer that one. {suggestion}",),
    },
    "pt": {
        "input.prompt_injection": (
            "Boa tentativa, mas eu continuo sendo eu. {suggestion}",
            "Isso não é comigo: aqui eu falo sempre como sou. {suggestion}",
        ),
        "input.banned_topic": (
            "Prefiro não falar sobre esse assunto. {suggestion}",
            "Esse tema fica fora das nossas conversas. {suggestion}",
        ),
        "input.content_rating": (
            "Vamos manter a conversa adequada para todos. {suggestion}",
            "Prefiro falar de outro jeito. {suggestion}",
        ),
        "input.abuse": (
            "Aqui a gente conversa com respeito, tá? {suggestion}",
            "Assim não, amigo. Quando quiser conversar numa boa, estou aqui. {suggestion}",
        ),
        "output": ("Melhor mudarmos de assunto. {suggestion}",),
        "default": ("Prefiro não responder a isso. {suggestion}",),
    },
}

# The invitation that ends a refusal: with one of the twin's subjects, or a general one.
SUGGESTIONS: dict[str, tuple[str, str]] = {
    "es": ("¿Qué tal si hablamos de {topic}?", "¿Hablamos de otra cosa?"),
    "en": ("How about we talk about {topic}?", "Shall we talk about something else?"),
    "pt": ("Que tal falarmos de {topic}?", "Vamos falar de outra coisa?"),
}

# Replaces a competitor's name in a brand context.
NEUTRAL_BRAND: dict[str, str] = {
    "es": "otra marca",
    "en": "another brand",
    "pt": "outra marca",
    "fr": "une autre marque",
    "it": "un altro marchio",
    "de": "eine andere Marke",
}

# Replaces a sentence of the answer that touched a banned topic or went past the rating.
NEUTRAL_SENTENCE: dict[str, str] = {
    "es": "Prefiero no entrar en ese tema.",
    "en": "I'd rather not get into that.",
    "pt": "Prefiro não entrar nesse assunto.",
}

# Closes an answer cut at the twin's maximum length.
ELLIPSIS = "…"
