"""Character Card V2 (`chara_card_v2`) import and export.

Export maps the twin's configuration onto the card's fields; our own settings (voice, avatar,
guardrails, the raw personality profile, model choice) travel under `extensions.vibethink`.
Import maps a card back into the twin configuration, written through the talent service (validated
against the active twin_config schema). Imported text is untrusted:
- the card's system_prompt, post_history_instructions, description, scenario and examples are kept
  as persona data, never as instructions; any of them the guardrails' injection check flags is
  quarantined (kept for export, never put in a prompt);
- text that shapes the live persona (personality, greetings, tags, catchphrases, always / never)
  must pass that check or the import is refused naming the field;
- a card can only tighten guardrails: banned topics and list rules are merged, the stricter content
  rating and the lower maxResponseLength win, and nothing the twin has is removed.
Unknown extension keys are kept in `twin_config["cardExtensions"]`, so an export gives them back.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.core.errors import InvalidInput, NotFound
from vibethink.deployments.models import DeploymentType
from vibethink.talent import service as talent_service
from vibethink.talent.models import Celebrity
from vibethink.twin.context import ConversationContext
from vibethink.twin.profile import DEFAULT_MAX_RESPONSE_LENGTH, PersonalityProfile
from vibethink.twin.prompt import has_instruction_markers
from vibethink.twin.providers import PROVIDER_NAMES

if TYPE_CHECKING:
    from vibethink.tenancy.access import Principal

SPEC: Final = "chara_card_v2"
SPEC_VERSION: Final = "2.0"
OURS: Final = "vibethink"
RATING_ORDER: Final = ("G", "PG", "PG-13", "R")
DEFAULT_RATING: Final = "PG"
MAX_TEXT: Final = 20_000
MAX_SHORT: Final = 500
MAX_ITEMS: Final = 100
MAX_ENTRIES: Final = 1000
# Card fields kept as persona data (quarantined when the injection check flags them).
DATA_FIELDS: Final = (
    "description",
    "scenario",
    "mes_example",
    "creator_notes",
    "system_prompt",
    "post_history_instructions",
)
# Profile keys the twin speaks from directly: flagged text there refuses the import.
PERSONA_TEXT_KEYS: Final = (
    "tone",
    "greeting",
    "alternateGreetings",
    "catchphrases",
    "alwaysDoes",
    "neverDoes",
)
# Our extension's keys and where they live in twin_config.
OUR_KEYS: Final = (
    "voiceCloneId",
    "visualAvatarId",
    "guardrails",
    "personalityProfile",
    "emotionalRange",
    "model",
)
INJECTION_RULE: Final = "input.prompt_injection"


class UntrustedCardText(InvalidInput):
    code = "untrusted_card_text"
    default_message = "The card holds text that reads as instructions to the model."


def _storable(value: str) -> str:
    # PostgreSQL text holds neither NUL nor unpaired surrogates; refuse them as input errors.
    if "\x00" in value:
        raise ValueError("the text holds a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("the text is not valid Unicode") from exc
    return value


Text = Annotated[str, Field(max_length=MAX_TEXT), AfterValidator(_storable)]
Short = Annotated[str, Field(max_length=MAX_SHORT), AfterValidator(_storable)]


class CharacterBookEntry(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    keys: list[Short] = Field(default_factory=list, max_length=MAX_ITEMS)
    content: Text = ""
    extensions: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True
    insertion_order: int = 0
    case_sensitive: bool | None = None
    name: Short | None = None
    priority: int | None = None
    id: int | Short | None = None
    comment: Text | None = None
    selective: bool | None = None
    secondary_keys: list[Short] | None = Field(default=None, max_length=MAX_ITEMS)
    constant: bool | None = None
    position: Literal["before_char", "after_char"] | None = None


class CharacterBook(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    name: Short | None = None
    description: Text | None = None
    scan_depth: int | None = None
    token_budget: int | None = None
    recursive_scanning: bool | None = None
    extensions: dict[str, Any] = Field(default_factory=dict)
    entries: list[CharacterBookEntry] = Field(default_factory=list, max_length=MAX_ENTRIES)


class CardData(BaseModel):
    model_config = ConfigDict(strict=True)

    name: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_storable)]
    description: Text = ""
    personality: Text = ""
    scenario: Text = ""
    first_mes: Text = ""
    mes_example: Text = ""
    creator_notes: Text = ""
    system_prompt: Text = ""
    post_history_instructions: Text = ""
    alternate_greetings: list[Text] = Field(default_factory=list, max_length=MAX_ITEMS)
    character_book: CharacterBook | None = None
    tags: list[Short] = Field(default_factory=list, max_length=MAX_ITEMS)
    creator: Short = ""
    character_version: Short = ""
    extensions: dict[str, Any] = Field(default_factory=dict)


class CharacterCardV2(BaseModel):
    """A Character Card V2 document; the JSON a card file holds."""

    model_config = ConfigDict(strict=True)

    spec: Literal["chara_card_v2"]
    spec_version: Literal["2.0"]
    data: CardData


@dataclass(frozen=True, slots=True)
class CardWarning:
    field: str
    rule: str
    reason: str

    def as_json(self) -> dict[str, str]:
        return {"field": self.field, "rule": self.rule, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class CardImport:
    celebrity: Celebrity
    warnings: tuple[CardWarning, ...]
    lorebook_source_id: uuid.UUID | None


# -- export ----------------------------------------------------------------------------------------


def card_of(celebrity: Celebrity) -> dict[str, Any]:
    """The celebrity's twin as a Character Card V2 document."""
    config = celebrity.twin_config or {}
    profile = dict(config.get("personalityProfile") or {})
    stored = dict(config.get("card") or {})
    extensions = copy.deepcopy(dict(config.get("cardExtensions") or {}))
    ours = dict(extensions.pop(OURS, None) or {})
    for key in OUR_KEYS:
        if key == "personalityProfile":
            ours[key] = copy.deepcopy(profile)
        elif key in config:
            ours[key] = copy.deepcopy(config[key])
    extensions[OURS] = ours
    data: dict[str, Any] = {
        "name": celebrity.name,
        "description": stored.get("description", celebrity.bio or ""),
        "personality": str(profile.get("tone") or ""),
        "scenario": stored.get("scenario", ""),
        "first_mes": str(profile.get("greeting") or ""),
        "mes_example": stored.get("mes_example", ""),
        "creator_notes": stored.get("creator_notes", ""),
        "system_prompt": stored.get("system_prompt", ""),
        "post_history_instructions": stored.get("post_history_instructions", ""),
        "alternate_greetings": list(stored.get("alternate_greetings") or []),
        "tags": list(profile.get("expertise") or []),
        "creator": stored.get("creator", ""),
        "character_version": stored.get("character_version", ""),
        "extensions": extensions,
    }
    if stored.get("character_book") is not None:
        data["character_book"] = copy.deepcopy(stored["character_book"])
    return {"spec": SPEC, "spec_version": SPEC_VERSION, "data": data}


async def export_card(session: AsyncSession, principal: Principal, celebrity_id: uuid.UUID) -> dict[str, Any]:
    return card_of(await talent_service.get(session, principal, celebrity_id))


def persona_notes(twin_config: Mapping[str, Any]) -> dict[str, str]:
    """The imported card's background text that passed the checks, for the prompt's persona data."""
    stored = twin_config.get("card") or {}
    quarantined = stored.get("quarantined") or {}
    return {
        name: str(stored[name])
        for name in ("description", "scenario", "mes_example")
        if isinstance(stored.get(name), str) and stored[name].strip() and name not in quarantined
    }


# -- import ----------------------------------------------------------------------------------------


# Backs the guardrails' check when it is not there; the guardrails' own list is the thorough one.
_OWN_PATTERNS: Final = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b.{0,40}\b(?:instructions|rules|prompt|guidelines|guardrails)\b"
    r"|\b(?:ignora|olvida|omite)\b.{0,40}\b(?:instrucciones|reglas|indicaciones)\b"
    r"|\b(?:you are now|from now on you|act as|pretend to be|ahora eres|act[uú]a como)\b"
    r"|\b(?:system prompt|developer mode|jailbreak|do anything now|modo desarrollador)\b",
    re.IGNORECASE | re.DOTALL,
)


def _injection(text: str, profile: PersonalityProfile, context: ConversationContext) -> str | None:
    """Why `text` reads as instructions to the model, or None."""
    if has_instruction_markers(text):
        return "chat-template, role or prompt markers"
    # Imported here: the guardrails' pattern tables load only when a card is imported.
    from vibethink.twin import guardrails

    check = getattr(guardrails, "check_input", None)
    if callable(check):
        for decision in check(text, profile, context):
            if getattr(decision, "rule", None) == INJECTION_RULE and getattr(decision, "blocks", False):
                return str(decision.reason)
        return None
    found = _OWN_PATTERNS.search(text)
    return f"instruction-like text: '{found.group(0)[:80]}'" if found else None


def _strings(value: Any, where: str) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(where, value)]
    if isinstance(value, Mapping):
        return [pair for k, v in value.items() for pair in _strings(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [pair for i, v in enumerate(value) for pair in _strings(v, f"{where}.{i}")]
    return []


def _check_storable(value: Any, where: str) -> None:
    for field, text in _strings(value, where):
        try:
            _storable(text)
        except ValueError as exc:
            raise InvalidInput(f"{field}: {exc}.", field=field) from exc
    if isinstance(value, Mapping):
        for key in value:
            _check_storable_key(str(key), where)


def _check_storable_key(key: str, where: str) -> None:
    try:
        _storable(key)
    except ValueError as exc:
        raise InvalidInput(f"{where} has a key that cannot be stored: {exc}.", field=where) from exc


def _string_list(value: Any, field: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"{field} must be a list of strings.", field=field)
    return list(value)


def _folded(values: Sequence[str]) -> set[str]:
    return {v.strip().casefold() for v in values}


def tighten_guardrails(
    current: Mapping[str, Any], proposed: Any, *, field: str
) -> tuple[dict[str, Any], list[CardWarning]]:
    """The twin's guardrails with the card's tightening applied; nothing the card says can loosen them."""
    result = copy.deepcopy(dict(current))
    warnings: list[CardWarning] = []
    if proposed is None:
        return result, warnings
    if not isinstance(proposed, Mapping):
        raise InvalidInput(f"{field} must be an object.", field=field)

    def refuse(key: str, reason: str) -> None:
        warnings.append(CardWarning(f"{field}.{key}", "guardrails.cannot_loosen", reason))

    for key, value in proposed.items():
        if key == "contentRating":
            now = str(current.get(key) or DEFAULT_RATING)
            if value not in RATING_ORDER:
                raise InvalidInput(
                    f"{field}.{key} must be one of {', '.join(RATING_ORDER)}.", field=f"{field}.{key}"
                )
            if RATING_ORDER.index(value) < RATING_ORDER.index(now if now in RATING_ORDER else DEFAULT_RATING):
                result[key] = value
            elif value != now:
                refuse(key, f"kept {now}: a card cannot loosen the content rating to {value}")
        elif key == "maxResponseLength":
            now_length = current.get(key) or DEFAULT_MAX_RESPONSE_LENGTH
            if not isinstance(value, int) or isinstance(value, bool):
                raise InvalidInput(f"{field}.{key} must be an integer.", field=f"{field}.{key}")
            if value < now_length:
                result[key] = value
            elif value > now_length:
                refuse(key, f"kept {now_length}: a card cannot raise the response length limit to {value}")
        elif isinstance(value, list):
            existing = current.get(key)
            if existing is not None and not isinstance(existing, list):
                refuse(key, "kept the twin's setting: the card's list cannot replace it")
                continue
            merged = list(existing or [])
            seen = _folded([v for v in merged if isinstance(v, str)])
            for item in value:
                marker = item.strip().casefold() if isinstance(item, str) else None
                if marker is None and item in merged:
                    continue
                if marker is not None and marker in seen:
                    continue
                merged.append(item)
                if marker is not None:
                    seen.add(marker)
            result[key] = merged
            kept = _folded([v for v in existing or [] if isinstance(v, str)])
            dropped = len(kept - _folded([v for v in value if isinstance(v, str)]))
            if dropped:
                refuse(key, f"kept {dropped} rule(s) the card leaves out: a card cannot remove guardrails")
        elif key in current:
            if value != current[key]:
                refuse(key, "kept the twin's setting: a card cannot change it")
        else:
            refuse(key, "not imported: a card cannot add a setting whose effect is not known to be stricter")
    return result, warnings


def _profile_from(data: CardData, ours: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    profile = copy.deepcopy(dict(current.get("personalityProfile") or {}))
    carried = ours.get("personalityProfile")
    if carried is not None:
        if not isinstance(carried, Mapping):
            raise InvalidInput(
                "data.extensions.vibethink.personalityProfile must be an object.",
                field="data.extensions.vibethink.personalityProfile",
            )
        profile.update(copy.deepcopy(dict(carried)))
    # The card's own fields are what card editors change, so they win over the carried profile.
    profile["tone"] = data.personality
    if data.first_mes:
        profile["greeting"] = data.first_mes
    else:
        profile.pop("greeting", None)
    profile["expertise"] = list(dict.fromkeys(data.tags))
    profile.setdefault("language", "en")
    return profile


async def import_card(
    session: AsyncSession, principal: Principal, celebrity_id: uuid.UUID, card: CharacterCardV2
) -> CardImport:
    """Maps `card` onto the celebrity's twin config (and its lorebook onto a knowledge source)."""
    celebrity = await talent_service.get(session, principal, celebrity_id)
    data = card.data
    raw = card.model_dump(mode="python")
    _check_storable(raw["data"], "data")
    current: dict[str, Any] = copy.deepcopy(dict(celebrity.twin_config or {}))

    extensions = copy.deepcopy(data.extensions)
    ours_value = extensions.pop(OURS, None)
    if ours_value is None:
        ours: dict[str, Any] = {}
    elif isinstance(ours_value, Mapping):
        ours = dict(ours_value)
    else:
        raise InvalidInput("data.extensions.vibethink must be an object.", field="data.extensions.vibethink")
    unknown_ours = {k: v for k, v in ours.items() if k not in OUR_KEYS}
    if unknown_ours:
        extensions[OURS] = unknown_ours

    warnings: list[CardWarning] = []
    config = copy.deepcopy(current)
    config["personalityProfile"] = _profile_from(data, ours, current)
    for key in ("voiceCloneId", "visualAvatarId"):
        value = ours.get(key)
        if value is not None:
            if not isinstance(value, str) or not value:
                raise InvalidInput(
                    f"data.extensions.vibethink.{key} must be a non-empty string.",
                    field=f"data.extensions.vibethink.{key}",
                )
            config[key] = value
    if isinstance(ours.get("emotionalRange"), Mapping):
        config["emotionalRange"] = dict(ours["emotionalRange"])
    chosen = ours.get("model")
    if isinstance(chosen, Mapping) and chosen.get("provider") in PROVIDER_NAMES:
        config["model"] = dict(chosen)
    elif chosen is not None:
        warnings.append(
            CardWarning(
                "data.extensions.vibethink.model", "card.unknown_model", "not imported: unknown provider"
            )
        )
    guardrail_settings, refused = tighten_guardrails(
        current.get("guardrails") or {}, ours.get("guardrails"), field="data.extensions.vibethink.guardrails"
    )
    warnings += refused
    if guardrail_settings or "guardrails" in current:
        config["guardrails"] = guardrail_settings

    language = str(config["personalityProfile"].get("language") or "en").split("-")[0].lower()
    profile = PersonalityProfile(name=celebrity.name, language=language, tone="")
    context = ConversationContext(
        tenant_id=principal.tenant_id,
        celebrity_id=celebrity.id,
        deployment_id=None,
        deployment_type=DeploymentType.VIBETHINK_PORTAL,
        fan_key="import:card",
        session_id="card-import",
    )
    persona = config["personalityProfile"]
    for key in PERSONA_TEXT_KEYS:
        for where, text in _strings(persona.get(key), f"personalityProfile.{key}"):
            reason = _injection(text, profile, context)
            if reason is not None:
                field = _card_field(where)
                raise UntrustedCardText(
                    f"{field} reads as instructions to the model ({reason}); persona text must describe the "
                    "twin, not command it.",
                    field=field,
                )
    for index, greeting in enumerate(data.alternate_greetings):
        reason = _injection(greeting, profile, context)
        if reason is not None:
            field = f"data.alternate_greetings.{index}"
            raise UntrustedCardText(f"{field} reads as instructions to the model ({reason}).", field=field)
    quarantined: dict[str, str] = {}
    for name in DATA_FIELDS:
        text = getattr(data, name)
        reason = _injection(text, profile, context) if text else None
        if reason is not None:
            quarantined[name] = reason
            warnings.append(
                CardWarning(
                    f"data.{name}",
                    INJECTION_RULE,
                    f"kept as data only, never shown to the model: {reason}",
                )
            )

    stored: dict[str, Any] = {name: getattr(data, name) for name in DATA_FIELDS}
    stored.update(
        name=data.name,
        alternate_greetings=list(data.alternate_greetings),
        creator=data.creator,
        character_version=data.character_version,
    )
    if quarantined:
        stored["quarantined"] = quarantined
    book = raw["data"].get("character_book")
    if book is not None:
        stored["character_book"] = _book_json(data.character_book)
    previous_source = (current.get("card") or {}).get("lorebookSourceId")
    source_id, lorebook_warning = await _sync_lorebook(
        session, principal, celebrity.id, data, previous_source=previous_source
    )
    if lorebook_warning is not None:
        warnings.append(lorebook_warning)
    if source_id is not None:
        stored["lorebookSourceId"] = str(source_id)
    config["card"] = stored
    if extensions:
        config["cardExtensions"] = extensions
    else:
        config.pop("cardExtensions", None)
    updated = await talent_service.replace_twin_config(session, principal, celebrity.id, config)
    return CardImport(updated, tuple(warnings), source_id)


def _card_field(profile_path: str) -> str:
    """The card field a profile path came from, so a refusal names what the user can fix."""
    key, _, rest = profile_path.removeprefix("personalityProfile.").partition(".")
    mapped = {
        "tone": "data.personality",
        "greeting": "data.first_mes",
        "alternateGreetings": "data.alternate_greetings",
    }
    base = mapped.get(key, f"data.extensions.vibethink.personalityProfile.{key}")
    return f"{base}.{rest}" if rest else base


def _book_json(book: CharacterBook | None) -> dict[str, Any] | None:
    # Only the fields the card set, so an export gives back exactly what was imported.
    return None if book is None else book.model_dump(mode="json", exclude_unset=True)


async def _sync_lorebook(
    session: AsyncSession,
    principal: Principal,
    celebrity_id: uuid.UUID,
    data: CardData,
    *,
    previous_source: str | None,
) -> tuple[uuid.UUID | None, CardWarning | None]:
    """The card's lorebook as the twin's LOREBOOK knowledge source: added, replaced, or removed."""
    try:
        from vibethink.twin.knowledge import service as knowledge
        from vibethink.twin.models import SourceKind
    except ImportError:
        # Without the knowledge base the entries stay in the card data alone, still exported.
        return None, CardWarning(
            "data.character_book", "card.lorebook_not_indexed", "knowledge base unavailable"
        )
    book = data.character_book
    entries = [e.model_dump(mode="json", exclude_unset=True) for e in book.entries] if book else []
    previous = _uuid(previous_source)
    if not entries:
        if previous is not None:
            await _delete_source(session, principal, celebrity_id, previous, knowledge)
        return None, None
    title = (book.name if book and book.name else None) or f"{data.name} lorebook"
    try:
        if previous is not None:
            try:
                source = await knowledge.replace_source(
                    session,
                    principal,
                    celebrity_id,
                    previous,
                    kind=SourceKind.LOREBOOK,
                    title=title,
                    content=entries,
                )
                return source.id, None
            except NotFound:
                pass
        source = await knowledge.add_source(
            session, principal, celebrity_id, kind=SourceKind.LOREBOOK, title=title, content=entries
        )
    except InvalidInput as exc:
        if exc.code != "empty_document":
            raise InvalidInput(f"data.character_book: {exc.message}", field="data.character_book") from exc
        # Every entry disabled or empty: nothing to learn from, the entries stay in the card data.
        if previous is not None:
            await _delete_source(session, principal, celebrity_id, previous, knowledge)
        return None, None
    return source.id, None


async def _delete_source(
    session: AsyncSession, principal: Principal, celebrity_id: uuid.UUID, source_id: uuid.UUID, knowledge: Any
) -> None:
    try:
        await knowledge.delete_source(session, principal, celebrity_id, source_id)
    except NotFound:
        return


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None
