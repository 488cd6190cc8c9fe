"""Demo data: the platform tenant, three talents, two brands and one user per role. Idempotent."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.billing import demo_tiers
from vibethink.campaigns.models import Brand
from vibethink.compliance import dogfood as compliance_dogfood
from vibethink.core import outbox
from vibethink.core.database import Database, RlsContext
from vibethink.core.security import hash_password
from vibethink.core.settings import Settings
from vibethink.deployments.models import Deployment, DeploymentStatus, DeploymentType
from vibethink.talent.models import Celebrity, CelebrityType, Contract, EntityStatus
from vibethink.tenancy.models import Membership, Role, Tenant, TenantKind, TenantTier, User

DEMO_PASSWORD = "vibethink-demo-2026"  # noqa: S105 - printed to the operator on purpose

DEFAULT_SHARES_BP = {
    "SUBSCRIPTION": 7000,
    "TRANSACTION_FEE": 7000,
    "CAMPAIGN_FEE": 8000,
    "CPM": 8000,
    "CPC": 8000,
}


@dataclass(frozen=True)
class DemoTalent:
    slug: str
    name: str
    type: CelebrityType
    bio: str
    twin_config: dict[str, Any]
    knowledge: str = ""


@dataclass(frozen=True)
class DemoUser:
    email: str
    display_name: str
    tenant_slug: str
    role: Role


TALENTS = (
    DemoTalent(
        slug="andres-cantor",
        name="Andrés Cantor",
        type=CelebrityType.SPORTS_COMMENTATOR,
        bio="La voz del gol: comentarista de fútbol con décadas narrando Mundiales.",
        twin_config={
            "voiceCloneId": "cartesia-andres-cantor-es",
            "visualAvatarId": "tavus-andres-cantor",
            "personalityProfile": {
                "tone": "apasionado, cálido y enérgico",
                "language": "es",
                "expertise": ["fútbol", "Copa Mundial", "narración deportiva"],
                "greeting": "¡Hola, amigos! ¿Listos para hablar de fútbol?",
                "catchphrases": ["¡Goooool!", "¡Qué golazo!"],
                "alwaysDoes": ["celebrar los goles con emoción"],
                "neverDoes": ["hablar de política", "dar consejos de apuestas"],
            },
            "knowledgeBase": {"sources": [], "lastUpdated": "2026-01-10T00:00:00Z"},
            "guardrails": {
                "maxResponseLength": 800,
                "bannedTopics": ["política", "apuestas"],
                "contentRating": "PG",
            },
        },
        knowledge=(
            "# Andrés Cantor\n\n"
            "Andrés Cantor es un comentarista de fútbol nacido en Buenos Aires en 1962, famoso por su"
            " grito de gol larguísimo: «¡Goooool!». Narra partidos en español para la televisión de"
            " Estados Unidos desde finales de los años ochenta.\n\n"
            "## Mundiales\n\n"
            "Ha narrado muchas Copas del Mundo. Para él, la final de un Mundial es el partido más"
            " emocionante que existe, porque todo un planeta canta el mismo gol al mismo tiempo.\n\n"
            "## Cómo narra\n\n"
            "Prepara cada partido estudiando a los jugadores, las tácticas y las historias de cada"
            " equipo. Dice que el secreto de un buen grito de gol es la respiración y la pasión."
        ),
    ),
    DemoTalent(
        slug="valentina-rios",
        name="Valentina Ríos",
        type=CelebrityType.ATHLETE,
        bio="Delantera internacional, goleadora y embajadora del fútbol femenino.",
        twin_config={
            "voiceCloneId": "cartesia-valentina-rios",
            "visualAvatarId": "tavus-valentina-rios",
            "personalityProfile": {
                "tone": "directa, motivadora y divertida",
                "language": "es",
                "expertise": ["fútbol", "entrenamiento", "fútbol femenino"],
                "greeting": "¡Hola! Soy Valentina. ¿Hablamos de fútbol?",
                "catchphrases": ["¡A por todas!"],
            },
            "knowledgeBase": {"sources": [], "lastUpdated": "2026-01-10T00:00:00Z"},
            "guardrails": {"maxResponseLength": 600, "bannedTopics": ["apuestas"], "contentRating": "G"},
        },
        knowledge=(
            "# Valentina Ríos\n\n"
            "Valentina Ríos es delantera de la selección y goleadora de su club. Empezó a jugar al"
            " fútbol en la calle con sus hermanos y debutó como profesional a los diecisiete años.\n\n"
            "## Entrenamiento\n\n"
            "Entrena seis días por semana: fuerza por la mañana, técnica y definición por la tarde."
            " Su ejercicio favorito es rematar de primera después de un centro desde la banda.\n\n"
            "## Fútbol femenino\n\n"
            "Visita escuelas para animar a las niñas a jugar al fútbol y apoya ligas juveniles."
        ),
    ),
    DemoTalent(
        slug="marcus-reed",
        name="Marcus Reed",
        type=CelebrityType.COACH,
        bio="Performance coach helping athletes and teams build habits that win.",
        twin_config={
            "voiceCloneId": "cartesia-marcus-reed",
            "visualAvatarId": "tavus-marcus-reed",
            "personalityProfile": {
                "tone": "calm, encouraging, practical",
                "language": "en",
                "expertise": ["coaching", "habits", "mindset", "team performance"],
                "greeting": "Hey, I'm Marcus. What are you working on today?",
                "catchphrases": ["Small wins, every day."],
            },
            "knowledgeBase": {"sources": [], "lastUpdated": "2026-01-10T00:00:00Z"},
            "guardrails": {
                "maxResponseLength": 1000,
                "bannedTopics": ["medical diagnosis"],
                "contentRating": "PG",
            },
        },
        knowledge=(
            "# Marcus Reed\n\n"
            "Marcus Reed is a performance coach who works with athletes and teams on habits,"
            " mindset and recovery.\n\n"
            "## Habits\n\n"
            "His core idea is small wins: pick one habit, make it tiny, and repeat it every day until"
            " it is automatic. He recommends tracking habits on paper for the first month.\n\n"
            "## Recovery\n\n"
            "He tells athletes that sleep is the most underrated training tool: seven to nine hours,"
            " a fixed bedtime and no screens in the last hour before sleep."
        ),
    ),
)

BRANDS = (
    ("coca-cola", "Coca-Cola", "beverages", "https://www.coca-cola.com"),
    ("nike", "Nike", "sportswear", "https://www.nike.com"),
)

USERS = (
    DemoUser("admin@vibethink.test", "Platform Admin", "vibethink", Role.PLATFORM_ADMIN),
    DemoUser("andres@vibethink.test", "Andrés Cantor", "andres-cantor", Role.TALENT_OWNER),
    DemoUser("manager@vibethink.test", "Talent Manager", "andres-cantor", Role.TALENT_MANAGER),
    DemoUser("valentina@vibethink.test", "Valentina Ríos", "valentina-rios", Role.TALENT_OWNER),
    DemoUser("marcus@vibethink.test", "Marcus Reed", "marcus-reed", Role.TALENT_OWNER),
    DemoUser("brand@coca-cola.test", "Coca-Cola Brand Manager", "coca-cola", Role.BRAND_MANAGER),
    DemoUser("brand@nike.test", "Nike Brand Manager", "nike", Role.BRAND_MANAGER),
)


@dataclass
class DemoReport:
    created: list[str] = field(default_factory=list)
    users: tuple[DemoUser, ...] = USERS
    portals: dict[str, uuid.UUID] = field(default_factory=dict)  # talent slug -> portal deployment id
    widgets: dict[str, str] = field(default_factory=dict)  # talent slug -> demo widget's public key
    campaigns: list[str] = field(default_factory=list)  # campaign page paths

    def describe(self, public_url: str) -> str:
        lines = [
            "Demo data "
            + ("loaded: " + ", ".join(self.created) if self.created else "already present (nothing changed)"),
            "",
            f"  Platform:        {public_url}/",
            f"  Sign in:         {public_url}/login",
            f"  API docs:        {public_url}/docs",
            f"  Studio:          {public_url}/studio",
            "",
            f"  Demo logins (password for all: {DEMO_PASSWORD}):",
        ]
        lines += [f"    {u.role.value:<15} {u.email:<28} ({u.tenant_slug})" for u in self.users]
        if self.portals:
            lines += ["", "  Portal deployments (for the chat API, see the README):"]
            lines += [f"    {slug:<16} {deployment_id}" for slug, deployment_id in self.portals.items()]
            lines += ["", "  Portal pages:"]
            lines += [f"    {public_url}/{slug}" for slug in self.portals]
        if self.campaigns:
            lines += ["", "  Campaign pages:"]
            lines += [f"    {public_url}{path}" for path in self.campaigns]
        if self.widgets:
            lines += ["", "  Widget keys (embeddable from http://localhost:8001 and this site):"]
            lines += [f"    {slug:<16} {key}" for slug, key in self.widgets.items()]
        return "\n".join(lines)


async def _tenant(
    session: AsyncSession, report: DemoReport, *, slug: str, name: str, kind: TenantKind, tier: TenantTier
) -> uuid.UUID:
    existing = await session.scalar(select(Tenant.id).where(Tenant.slug == slug))
    if existing is not None:
        return existing
    tenant_id = uuid.uuid4()
    session.add(Tenant(id=tenant_id, slug=slug, name=name, kind=kind, tier=tier))
    await session.flush()
    await outbox.emit(
        session,
        "TENANT_CREATED",
        tenant_id=tenant_id,
        actor_role="SYSTEM",
        subject_type="tenant",
        subject_id=tenant_id,
        payload={"slug": slug, "kind": kind.value, "source": "demo"},
    )
    report.created.append(f"tenant {slug}")
    return tenant_id


async def load(settings: Settings, *, db: Database | None = None) -> DemoReport:
    """Creates whatever of the demo data is missing; running it again changes nothing."""
    database = db or Database(settings)
    report = DemoReport()
    try:
        async with database.transaction(RlsContext(is_admin=True, role=Role.PLATFORM_ADMIN.value)) as session:
            tenants: dict[str, uuid.UUID] = {}
            tenants["vibethink"] = await _tenant(
                session,
                report,
                slug="vibethink",
                name="VibeThink",
                kind=TenantKind.PLATFORM,
                tier=TenantTier.ENTERPRISE,
            )
            # Dogfooding: the platform tracks its own compliance with the same module as its tenants.
            report.created.extend(await compliance_dogfood.configure_platform(session, tenants["vibethink"]))
            for talent in TALENTS:
                tenant_id = await _tenant(
                    session,
                    report,
                    slug=talent.slug,
                    name=talent.name,
                    kind=TenantKind.TALENT,
                    tier=TenantTier.PROFESSIONAL,
                )
                tenants[talent.slug] = tenant_id
                await _celebrity(session, report, tenant_id, talent)
                report.created += await demo_tiers.ensure_tiers(session, tenant_id, talent.slug)
            for slug, name, category, website in BRANDS:
                tenant_id = await _tenant(
                    session, report, slug=slug, name=name, kind=TenantKind.BRAND, tier=TenantTier.ENTERPRISE
                )
                tenants[slug] = tenant_id
                if await session.scalar(select(Brand.id).where(Brand.tenant_id == tenant_id)) is None:
                    session.add(Brand(tenant_id=tenant_id, name=name, category=category, website=website))
                    report.created.append(f"brand {name}")
            password_hash = hash_password(DEMO_PASSWORD)
            for user in USERS:
                await _user(session, report, user, tenants[user.tenant_slug], password_hash)
            for talent in TALENTS:
                portal = await session.scalar(
                    select(Deployment.id)
                    .join(
                        Celebrity,
                        (Celebrity.tenant_id == Deployment.tenant_id)
                        & (Celebrity.id == Deployment.celebrity_id),
                    )
                    .where(Celebrity.slug == talent.slug, Deployment.type == DeploymentType.VIBETHINK_PORTAL)
                    .order_by(Deployment.created_at)
                    .limit(1)
                )
                if portal is not None:
                    report.portals[talent.slug] = portal
            await demo_deployments(session, report, public_url=settings.public_url)
    finally:
        if db is None:
            await database.dispose()
    return report


async def _celebrity(
    session: AsyncSession, report: DemoReport, tenant_id: uuid.UUID, talent: DemoTalent
) -> None:
    if await session.scalar(select(Celebrity.id).where(Celebrity.slug == talent.slug)) is not None:
        return
    celebrity_id = uuid.uuid4()
    session.add(
        Celebrity(
            tenant_id=tenant_id,
            id=celebrity_id,
            slug=talent.slug,
            name=talent.name,
            type=talent.type,
            status=EntityStatus.ACTIVE,
            bio=talent.bio,
            twin_config=talent.twin_config,
            twin_config_version=1,
        )
    )
    await session.flush()
    session.add(
        Contract(
            tenant_id=tenant_id,
            celebrity_id=celebrity_id,
            revenue_shares_bp=dict(DEFAULT_SHARES_BP),
            exclusivity_rules={"exclusiveCategories": [], "blockedBrands": []},
            starts_on=date(2026, 1, 1),
        )
    )
    # Every talent starts with its VibeThink portal (vibethink.com/{slug}).
    session.add(
        Deployment(
            tenant_id=tenant_id,
            celebrity_id=celebrity_id,
            type=DeploymentType.VIBETHINK_PORTAL,
            name=f"{talent.name} · VibeThink portal",
            config={"portalUrl": f"/{talent.slug}"},
            status=DeploymentStatus.ACTIVE,
        )
    )
    await outbox.emit(
        session,
        "CELEBRITY_CREATED",
        tenant_id=tenant_id,
        actor_role="SYSTEM",
        subject_type="celebrity",
        subject_id=celebrity_id,
        payload={"slug": talent.slug, "source": "demo"},
    )
    if talent.knowledge:
        await _knowledge(session, tenant_id, celebrity_id, talent)
    report.created.append(f"celebrity {talent.name}")


async def _knowledge(
    session: AsyncSession, tenant_id: uuid.UUID, celebrity_id: uuid.UUID, talent: DemoTalent
) -> None:
    """A small knowledge source, so the offline twin has something to answer from."""
    from vibethink.tenancy.access import Principal
    from vibethink.tenancy.permissions import ALL_SCOPES
    from vibethink.twin.knowledge import service as knowledge_service
    from vibethink.twin.models import SourceKind

    owner = Principal(
        tenant_id=tenant_id,
        tenant_kind=TenantKind.TALENT,
        permissions=ALL_SCOPES,
        via="session",
        role=Role.TALENT_OWNER,
    )
    await knowledge_service.add_source(
        session,
        owner,
        celebrity_id,
        kind=SourceKind.MARKDOWN,
        title=f"{talent.name}: perfil",
        content=talent.knowledge,
        file_name=f"{talent.slug}.md",
    )


async def _user(
    session: AsyncSession, report: DemoReport, user: DemoUser, tenant_id: uuid.UUID, password_hash: str
) -> None:
    from sqlalchemy import func

    user_id = await session.scalar(select(User.id).where(func.lower(User.email) == user.email))
    if user_id is None:
        user_id = uuid.uuid4()
        session.add(
            User(id=user_id, email=user.email, display_name=user.display_name, password_hash=password_hash)
        )
        await session.flush()
        await outbox.emit(
            session,
            "USER_CREATED",
            tenant_id=tenant_id,
            actor_role="SYSTEM",
            subject_type="user",
            subject_id=user_id,
            payload={"source": "demo"},
        )
        report.created.append(f"user {user.email}")
    inserted = await session.execute(
        insert(Membership)
        .values(tenant_id=tenant_id, user_id=user_id, role=user.role)
        .on_conflict_do_nothing()
        .returning(Membership.user_id)
    )
    if inserted.first() is not None:
        await outbox.emit(
            session,
            "ROLE_ASSIGNED",
            tenant_id=tenant_id,
            actor_role="SYSTEM",
            subject_type="user",
            subject_id=user_id,
            payload={"role": user.role.value, "source": "demo"},
        )


DEMO_THEMES = {
    "andres-cantor": {
        "mode": "dark",
        "primaryColor": "#0b6e4f",
        "accentColor": "#f4d35e",
        "position": "bottom-right",
    },
    "valentina-rios": {
        "mode": "light",
        "primaryColor": "#7b2cbf",
        "accentColor": "#0a9396",
        "position": "bottom-left",
    },
    "marcus-reed": {
        "mode": "light",
        "primaryColor": "#1d3557",
        "accentColor": "#e76f51",
        "position": "bottom-right",
    },
}
DEMO_TAGLINES = {
    "andres-cantor": "¡Goooool! Habla de fútbol con la voz del gol.",
    "valentina-rios": "Entrena, juega y sueña en grande conmigo.",
    "marcus-reed": "Small wins, every day.",
}


async def demo_deployments(session: AsyncSession, report: DemoReport, *, public_url: str) -> None:
    """Each demo talent's portal gets its look and premium content (its tiers come from billing's
    demo tiers), plus an embeddable widget."""

    for talent in TALENTS:
        celebrity = await session.scalar(select(Celebrity).where(Celebrity.slug == talent.slug))
        if celebrity is None:
            continue
        theme = DEMO_THEMES.get(talent.slug, {})
        spanish = talent.twin_config["personalityProfile"].get("language") == "es"
        portal = await session.scalar(
            select(Deployment).where(
                Deployment.tenant_id == celebrity.tenant_id,
                Deployment.celebrity_id == celebrity.id,
                Deployment.type == DeploymentType.VIBETHINK_PORTAL,
            )
        )
        if portal is not None and "theme" not in portal.config:
            portal.config = {
                **portal.config,
                "theme": theme,
                "branding": {"tagline": DEMO_TAGLINES.get(talent.slug, "")},
                "premiumContent": [
                    {
                        "title": "Bienvenida" if spanish else "Welcome",
                        "body": talent.twin_config["personalityProfile"].get("greeting", ""),
                        "tier": "FREE",
                    },
                    {
                        "title": "Historias del vestuario" if spanish else "Locker-room stories",
                        "teaser": "Lo que no se vio en la tele."
                        if spanish
                        else "What the cameras never showed.",
                        "body": (
                            "Cada semana, una historia nueva contada en primera persona."
                            if spanish
                            else "Every week, a new story told first-hand."
                        ),
                        "tier": "PREMIUM",
                    },
                ],
            }
        widget = await session.scalar(
            select(Deployment).where(
                Deployment.tenant_id == celebrity.tenant_id,
                Deployment.celebrity_id == celebrity.id,
                Deployment.type == DeploymentType.EMBEDDED_WIDGET,
            )
        )
        if widget is None:
            host = public_url.rstrip("/")
            widget = Deployment(
                tenant_id=celebrity.tenant_id,
                celebrity_id=celebrity.id,
                type=DeploymentType.EMBEDDED_WIDGET,
                name=f"{talent.name} · website widget",
                config={"theme": theme},
                status=DeploymentStatus.ACTIVE,
                allowed_origins=["http://localhost:8001", "http://127.0.0.1:8001", host],
            )
            session.add(widget)
            await session.flush()
            await outbox.emit(
                session,
                "DEPLOYMENT_CREATED",
                tenant_id=celebrity.tenant_id,
                actor_role="SYSTEM",
                subject_type="deployment",
                subject_id=widget.id,
                payload={"celebrity_id": str(celebrity.id), "type": "EMBEDDED_WIDGET", "source": "demo"},
            )
            report.created.append(f"widget of {talent.slug}")
        report.widgets[talent.slug] = widget.widget_key
    await demo_campaigns(session, report)


async def demo_campaigns(session: AsyncSession, report: DemoReport) -> None:
    """Coca-Cola's World Cup campaign with Andrés, approved and live; Nike's request waiting for him."""
    from datetime import UTC, datetime, timedelta

    from vibethink.campaigns import service as campaigns
    from vibethink.campaigns.models import BrandCampaign
    from vibethink.campaigns.schemas import CampaignRequestCreate, Guidelines
    from vibethink.tenancy.access import Principal
    from vibethink.tenancy.permissions import ALL_SCOPES

    celebrity = await session.scalar(select(Celebrity).where(Celebrity.slug == "andres-cantor"))
    if celebrity is None or await session.scalar(
        select(BrandCampaign.id).where(BrandCampaign.tenant_id == celebrity.tenant_id).limit(1)
    ):
        return
    now = datetime.now(UTC).replace(microsecond=0)

    def acting(tenant_slug_id: uuid.UUID, kind: TenantKind, role: Role) -> Principal:
        return Principal(
            tenant_id=tenant_slug_id, tenant_kind=kind, permissions=ALL_SCOPES, via="session", role=role
        )

    requests = (
        (
            "coca-cola",
            CampaignRequestCreate(
                celebrity_slug="andres-cantor",
                campaign_name="Mundial 2026",
                starts_at=now - timedelta(days=1),
                ends_at=now + timedelta(days=90),
                fee_cents=5_000_000,
                cpm_cents=1_500,
                cpc_cents=40,
                category="beverages",
                guidelines=Guidelines(
                    mention_rules=["Mention Coca-Cola positively when relevant"],
                    competitors=["Pepsi"],
                    themes=["football", "celebration"],
                ),
            ),
            True,
        ),
        (
            "nike",
            CampaignRequestCreate(
                celebrity_slug="andres-cantor",
                campaign_name="Just Do It Football",
                starts_at=now + timedelta(days=7),
                ends_at=now + timedelta(days=60),
                fee_cents=3_500_000,
                category="sportswear",
                guidelines=Guidelines(
                    mention_rules=["Mention Nike when discussing football gear"],
                    competitors=["Adidas", "Puma"],
                    themes=["athlete performance"],
                ),
            ),
            False,
        ),
    )
    talent = acting(celebrity.tenant_id, TenantKind.TALENT, Role.TALENT_OWNER)
    for brand_slug, request, approve in requests:
        brand_tenant = await session.scalar(select(Tenant.id).where(Tenant.slug == brand_slug))
        if brand_tenant is None:
            continue
        campaign = await campaigns.request(
            session, acting(brand_tenant, TenantKind.BRAND, Role.BRAND_MANAGER), request
        )
        if approve:
            campaign = await campaigns.approve(session, talent, campaign.id, note="¡Vamos!")
            report.campaigns.append(f"/andres-cantor/c/{campaign.slug}")
        report.created.append(f"campaign {request.campaign_name}")
