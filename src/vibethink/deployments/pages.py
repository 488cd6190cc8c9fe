"""Public twin pages: the portal `/{slug}`, campaign pages, white-label sites, the widget's iframe
and script. The chat streams from the chat API (SSE) through a few lines of plain JavaScript."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.billing.models import PricingTier
from vibethink.campaigns import service as campaigns
from vibethink.chat import service as chat_service
from vibethink.chat.tokens import Fan, user_fan
from vibethink.core.database import apply_context
from vibethink.core.errors import InvalidFanToken, NotAuthenticated, NotFound, TwinUnavailable
from vibethink.core.settings import Settings
from vibethink.deployments import origins, resolver, service
from vibethink.deployments.models import ConversionKind, DeploymentType
from vibethink.deployments.resolver import ResolvedDeployment
from vibethink.tenancy.access import DbSession, session_user, settings_of

router = APIRouter(include_in_schema=False)

STATIC_DIR: Final = Path(__file__).resolve().parent.parent / "web" / "static"
SLUG: Final = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
COLOUR: Final = re.compile(r"^#[0-9a-fA-F]{6}$")
FONT: Final = re.compile(r"^[A-Za-z0-9 ,'-]{1,100}$")
FREE_TIER: Final = "FREE"
TIER_CODE: Final = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
FAN_COOKIE_PREFIX: Final = "vt_fan_"
NO_STORE: Final = "private, no-store"
LIGHT: Final = {"background": "#ffffff", "text": "#15171c", "primary": "#4b3fd6", "accent": "#0b7a5a"}
DARK: Final = {"background": "#111318", "text": "#f3f4f7", "primary": "#8f86ff", "accent": "#4fd1a5"}
LABELS: Final = {
    "en": {
        "skip": "Skip to the chat",
        "chat_with": "Chat with",
        "conversation": "Conversation",
        "your_message": "Your message",
        "placeholder": "Ask me anything…",
        "send": "Send",
        "noscript": "The chat streams its replies with JavaScript; please turn it on.",
        "about": "About",
        "tiers": "Membership",
        "month": "month",
        "subscribe": "Subscribe",
        "your_tier": "Your current tier",
        "sign_in_to_subscribe": "Sign in or create an account to finish subscribing.",
        "premium": "Premium content",
        "locked": "For members of",
        "see_tiers": "See the tiers",
        "powered": "Powered by",
    },
    "es": {
        "skip": "Ir al chat",
        "chat_with": "Chatea con",
        "conversation": "Conversación",
        "your_message": "Tu mensaje",
        "placeholder": "Pregúntame lo que quieras…",
        "send": "Enviar",
        "noscript": "El chat muestra sus respuestas con JavaScript; actívalo, por favor.",
        "about": "Sobre",
        "tiers": "Membresía",
        "month": "mes",
        "subscribe": "Suscribirme",
        "your_tier": "Tu nivel actual",
        "sign_in_to_subscribe": "Inicia sesión o crea una cuenta para completar la suscripción.",
        "premium": "Contenido exclusivo",
        "locked": "Para miembros de",
        "see_tiers": "Ver los niveles",
        "powered": "Con la tecnología de",
    },
}


UNLOCKS: Final = {
    "en": {
        "messages": "{n} messages a day",
        "unlimited": "Unlimited messages",
        "premium": "Premium content",
        "voice": "{n} voice minutes",
        "video": "{n} video minutes",
    },
    "es": {
        "messages": "{n} mensajes al día",
        "unlimited": "Mensajes ilimitados",
        "premium": "Contenido exclusivo",
        "voice": "{n} minutos de voz",
        "video": "{n} minutos de video",
    },
}


def unlocks(entitlements: dict[str, Any], language: str) -> list[str]:
    """What a tier unlocks, in the page's language, from its billing entitlements."""
    words = UNLOCKS.get(language, UNLOCKS["en"])
    found: list[str] = []
    if "messages_per_day" in entitlements:
        limit = entitlements["messages_per_day"]
        found.append(words["unlimited"] if limit is None else words["messages"].format(n=limit))
    if entitlements.get("premium_content"):
        found.append(words["premium"])
    for key, word in (("voice_minutes", "voice"), ("video_minutes", "video")):
        minutes = entitlements.get(key)
        if isinstance(minutes, int) and minutes > 0:
            found.append(words[word].format(n=minutes))
    return found


def labels(language: str) -> dict[str, str]:
    return LABELS.get(language, LABELS["en"])


def _luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def theme_of(deployment: ResolvedDeployment, *, mode: str | None = None) -> dict[str, str]:
    """Colours from the deployment's theme, each checked again here; a text colour that would fail
    WCAG AA (4.5:1) on its background is replaced by a readable one."""
    theme = deployment.section("theme")
    chosen = mode or theme.get("mode") or "light"
    base = dict(DARK if chosen == "dark" else LIGHT)
    for key, name in (
        ("background", "backgroundColor"),
        ("text", "textColor"),
        ("primary", "primaryColor"),
        ("accent", "accentColor"),
    ):
        value = theme.get(name)
        if isinstance(value, str) and COLOUR.match(value):
            base[key] = value.lower()
    if contrast(base["text"], base["background"]) < 4.5:
        base["text"] = "#000000" if _luminance(base["background"]) > 0.18 else "#ffffff"
    base["on_primary"] = "#000000" if _luminance(base["primary"]) > 0.18 else "#ffffff"
    font = theme.get("fontFamily")
    base["font"] = font if isinstance(font, str) and FONT.match(font) else "system-ui, sans-serif"
    base["mode"] = "dark" if chosen == "dark" else "light"
    position = theme.get("position")
    base["position"] = position if isinstance(position, str) else "bottom-right"
    return base


@dataclass(frozen=True, slots=True)
class TierView:
    code: str
    name: str
    price: str
    perks: list[str]
    is_current: bool


@dataclass(frozen=True, slots=True)
class ContentView:
    title: str
    teaser: str
    body: str | None
    tier_name: str
    tier_code: str


def _price(cents: int, currency: str) -> str:
    symbol = {"USD": "$", "EUR": "€", "GBP": "£"}.get(currency.upper())
    amount = f"{cents // 100}.{cents % 100:02d}"
    return f"{symbol}{amount}" if symbol else f"{amount} {currency.upper()}"


async def _tiers(
    session: AsyncSession, deployment: ResolvedDeployment, fan: Fan
) -> tuple[resolver.Tier, ...]:
    """The twin's active tiers, cached per process (a trigger announces every change)."""
    cached = resolver.cache.tiers(deployment.celebrity_id)
    if cached is not None:
        return cached
    await apply_context(session, chat_service.fan_rls(fan, deployment.tenant_id))
    query = (
        select(PricingTier)
        .where(
            PricingTier.tenant_id == deployment.tenant_id,
            PricingTier.celebrity_id == deployment.celebrity_id,
            PricingTier.is_active.is_(True),
        )
        .order_by(PricingTier.sort_order, PricingTier.monthly_price_cents)
    )
    found = tuple(
        resolver.Tier(
            code=t.code,
            name=t.name,
            monthly_price_cents=t.monthly_price_cents,
            currency=t.currency,
            perks=tuple(str(p) for p in (t.entitlements.get("perks") or []) if isinstance(p, str))[:8],
            entitlements=dict(t.entitlements),
        )
        for t in (await session.scalars(query)).all()
    )
    resolver.cache.put_tiers(deployment.celebrity_id, found)
    return found


def gate(items: list[Any], tiers: tuple[resolver.Tier, ...], fan_tier: str) -> list[ContentView]:
    """Premium content as this fan may see it: the body only at or above the item's tier."""
    # Every fan holds FREE; paid tiers rank by their order on the page.
    rank = {FREE_TIER: 0, **{t.code.upper(): i + 1 for i, t in enumerate(tiers)}}
    names = {FREE_TIER: "Free", **{t.code.upper(): t.name for t in tiers}}
    mine = rank.get(fan_tier.upper(), 0)
    views = []
    for item in items:
        if not isinstance(item, dict):
            continue
        code = str(item.get("tier", "")).upper()
        needed = rank.get(code, len(tiers) + 1)  # an unknown tier is never given away
        views.append(
            ContentView(
                title=str(item.get("title", "")),
                teaser=str(item.get("teaser", "")),
                body=str(item.get("body", "")) if mine >= needed else None,
                tier_name=names.get(code, code.title()),
                tier_code=code,
            )
        )
    return views


def _fan_cookie(deployment: ResolvedDeployment) -> str:
    return FAN_COOKIE_PREFIX + deployment.id.hex[:16]


async def _fan(
    request: Request, session: AsyncSession, settings: Settings, deployment: ResolvedDeployment
) -> tuple[Fan, str, bool]:
    """The page's fan and their token: the signed-in user, or the anonymous fan of the cookie."""
    tokens = chat_service.fan_tokens(settings)
    user_id = None
    if request.cookies.get(settings.session_cookie_name):
        try:
            found = await session_user(request, session)
        except NotAuthenticated:
            found = None
        user_id = found[1] if found else None
    presented = request.cookies.get(_fan_cookie(deployment))
    if presented:
        try:
            fan = tokens.read(presented)
            wanted = f"user:{user_id}" if user_id else None
            if fan.deployment_id == deployment.id and (wanted is None or fan.fan_key == wanted):
                return fan, presented, False
        except InvalidFanToken:
            pass
    issued = tokens.issue(
        tenant_id=deployment.tenant_id,
        deployment_id=deployment.id,
        fan_key=f"user:{user_id}" if user_id else None,
    )
    fan = user_fan(user_id) if user_id else tokens.read(issued.token)
    return fan, issued.token, True


async def render_twin_page(
    request: Request,
    session: AsyncSession,
    deployment: ResolvedDeployment,
    *,
    white_label: bool = False,
) -> Response:
    settings = settings_of(request)
    if not deployment.is_live(datetime.now(UTC)):
        raise TwinUnavailable()
    fan, token, fresh = await _fan(request, session, settings, deployment)
    tiers = await _tiers(session, deployment, fan)
    twin = await chat_service.deployed_twin(session, deployment.id, tenant_id=deployment.tenant_id)
    if fan.user_id is not None:
        # A signed-in fan may hold a subscription: the tier lookup reads the talent's rows.
        await apply_context(session, chat_service.fan_rls(fan, deployment.tenant_id))
    fan_tier = await chat_service.fan_tier(session, twin, fan)
    branding = deployment.section("branding")
    hide_marks = white_label or bool(branding.get("hidePlatformMarks"))
    base = settings.public_url.rstrip("/")
    if white_label and deployment.custom_domain:
        page_url = f"https://{deployment.custom_domain}/"
    elif deployment.type is DeploymentType.BRAND_CAMPAIGN:
        page_url = f"{base}/{deployment.celebrity_slug}/c/{deployment.slug}"
    else:
        page_url = f"{base}/{deployment.celebrity_slug}"
    context = {
        "deployment": deployment,
        "title": branding.get("title") or deployment.celebrity_name,
        "tagline": branding.get("tagline") or "",
        "logo_url": branding.get("logoUrl"),
        "hero_url": branding.get("heroImageUrl"),
        "greeting": deployment.greeting,
        "theme": theme_of(deployment),
        "lang": deployment.language,
        "labels": labels(deployment.language),
        "hide_marks": hide_marks,
        "page_url": page_url,
        "og_image": branding.get("heroImageUrl") or branding.get("logoUrl"),
        "token": token,
        "disclosure": _disclosure(deployment),
        "tiers": [
            TierView(
                code=t.code,
                name=t.name,
                price=_price(t.monthly_price_cents, t.currency),
                perks=[*unlocks(t.entitlements, deployment.language), *t.perks][:8],
                is_current=t.code.upper() == fan_tier.upper(),
            )
            for t in tiers
        ],
        "fan_tier": fan_tier,
        "premium": gate(list(deployment.config.get("premiumContent") or []), tiers, fan_tier),
        "subscribe_action": _subscribe_action(deployment, white_label=white_label),
        "chosen_tier": request.query_params.get("tier"),
    }
    templates: Jinja2Templates = request.app.state.templates
    response: Response = templates.TemplateResponse(request, "deployments/twin_page.html", context)
    response.headers["Cache-Control"] = NO_STORE
    response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
    if fresh:
        response.set_cookie(
            _fan_cookie(deployment),
            token,
            max_age=settings.fan_token_max_age_seconds,
            httponly=True,
            samesite="lax",
            secure=settings.cookie_secure,
            path="/",
        )
    return response


def _disclosure(deployment: ResolvedDeployment) -> str | None:
    """A brand campaign's endorsement line: the one its config gives, else the campaigns' default."""
    if deployment.type is not DeploymentType.BRAND_CAMPAIGN:
        return None
    if deployment.disclosure:
        return deployment.disclosure
    return campaigns.disclosure(deployment.brand_name) if deployment.brand_name else None


def _subscribe_action(deployment: ResolvedDeployment, *, white_label: bool) -> str:
    """Where the page's subscribe buttons post, so the conversion counts for this deployment."""
    if white_label:
        return "/subscribe"
    if deployment.type is DeploymentType.BRAND_CAMPAIGN and deployment.slug:
        return f"/{deployment.celebrity_slug}/c/{deployment.slug}/subscribe"
    return f"/{deployment.celebrity_slug}/subscribe"


def _slug(value: str) -> str:
    if not SLUG.fullmatch(value) or len(value) > 80:
        raise NotFound("No such page.")
    return value


@router.get("/widget.js")
async def widget_script() -> Response:
    """The embed script: dependency-free, cached briefly by browsers and CDNs."""
    return Response(
        WIDGET_JS,
        media_type="application/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
    )


@router.get("/widget/frame/{widget_key}", response_class=HTMLResponse)
async def widget_frame(widget_key: str, request: Request, session: DbSession) -> Response:
    """The chat inside the host page's iframe; only the deployment's allowed origins may frame it."""
    deployment = await resolver.by_widget_key(session, widget_key) if len(widget_key) <= 40 else None
    if deployment is None or not deployment.is_live(datetime.now(UTC)):
        return HTMLResponse(
            "<!doctype html><title>Unavailable</title><p>This chat is not available.</p>",
            status_code=404,
            headers={"Content-Security-Policy": "frame-ancestors 'none'"},
        )
    mode = request.query_params.get("theme")
    context = {
        "deployment": deployment,
        "theme": theme_of(deployment, mode=mode if mode in ("light", "dark") else None),
        "greeting": deployment.greeting,
        "lang": deployment.language,
        "labels": labels(deployment.language),
        "token": None,
        "disclosure": _disclosure(deployment),
    }
    templates: Jinja2Templates = request.app.state.templates
    response: Response = templates.TemplateResponse(request, "deployments/frame.html", context)
    response.headers["Content-Security-Policy"] = origins.frame_ancestors(deployment.allowed_origins)
    response.headers["Cache-Control"] = NO_STORE
    return response


@router.get("/internal/tls/ask")
async def tls_ask(request: Request, session: DbSession, domain: str = "") -> Response:
    """A reverse proxy's on-demand TLS check: 200 only for a verified, live white-label domain."""
    name = domain.strip().lower().rstrip(".")
    found = await resolver.by_host(session, name) if 0 < len(name) <= 253 else None
    if found is None or not found.domain_verified or found.type is not DeploymentType.WHITE_LABEL:
        return Response("unknown domain", status_code=404, media_type="text/plain")
    return Response("ok", media_type="text/plain")


@router.get("/_site", response_class=HTMLResponse)
async def white_label_site(request: Request, session: DbSession) -> Response:
    deployment = getattr(request.state, "white_label", None)
    if not isinstance(deployment, ResolvedDeployment):
        raise NotFound("No such page.")
    return await render_twin_page(request, session, deployment, white_label=True)


async def _subscribe(
    request: Request, session: AsyncSession, deployment: ResolvedDeployment, tier: str, back: str
) -> Response:
    settings = settings_of(request)
    fan, _, _ = await _fan(request, session, settings, deployment)
    await apply_context(session, chat_service.fan_rls(fan, deployment.tenant_id))
    code = tier.strip()[:40]
    if not TIER_CODE.fullmatch(code):
        raise NotFound("No such tier.")
    await service.record_conversion(
        session,
        tenant_id=deployment.tenant_id,
        deployment_id=deployment.id,
        fan_key=fan.fan_key,
        kind=ConversionKind.SUBSCRIBE_CLICK,
        detail=code,
    )
    # Subscribing needs an account: sign in first, then back to the tier on this page.
    return RedirectResponse("/login?next=" + quote(f"{back}?tier={code}#tiers", safe=""), status_code=303)


@router.post("/_site/subscribe")
async def white_label_subscribe(request: Request, session: DbSession, tier: str = Form("")) -> Response:
    deployment = getattr(request.state, "white_label", None)
    if not isinstance(deployment, ResolvedDeployment):
        raise NotFound("No such page.")
    return await _subscribe(request, session, deployment, tier, "/")


@router.get("/{slug}", response_class=HTMLResponse)
async def portal(slug: str, request: Request, session: DbSession) -> Response:
    deployment = await resolver.by_slug(session, _slug(slug))
    if deployment is None:
        raise NotFound("No such page.")
    return await render_twin_page(request, session, deployment)


@router.post("/{slug}/subscribe")
async def portal_subscribe(slug: str, request: Request, session: DbSession, tier: str = Form("")) -> Response:
    deployment = await resolver.by_slug(session, _slug(slug))
    if deployment is None:
        raise NotFound("No such page.")
    return await _subscribe(request, session, deployment, tier, f"/{deployment.celebrity_slug}")


@router.get("/{slug}/c/{campaign}", response_class=HTMLResponse)
async def campaign_page(slug: str, campaign: str, request: Request, session: DbSession) -> Response:
    deployment = await resolver.by_campaign(session, _slug(slug), _slug(campaign))
    if deployment is None:
        raise NotFound("No such page.")
    return await render_twin_page(request, session, deployment)


WIDGET_JS: Final = (STATIC_DIR / "widget.js").read_bytes() if (STATIC_DIR / "widget.js").exists() else b""


@router.post("/{slug}/c/{campaign}/subscribe")
async def campaign_subscribe(
    slug: str, campaign: str, request: Request, session: DbSession, tier: str = Form("")
) -> Response:
    deployment = await resolver.by_campaign(session, _slug(slug), _slug(campaign))
    if deployment is None:
        raise NotFound("No such page.")
    return await _subscribe(
        request, session, deployment, tier, f"/{deployment.celebrity_slug}/c/{deployment.slug}"
    )
