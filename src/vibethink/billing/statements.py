"""Monthly statements per talent (by source and type), the platform's revenue report, CSV and PDF."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.core.money import format_minor

# Grouped on the raw columns (enum, uuid, boolean: binary sorts) and labelled in Python: grouping on
# computed text labels made PostgreSQL sort every posting with collation-aware comparisons (5× slower).
STATEMENT_SQL = text(
    """
    SELECT r.type, r.currency COLLATE "C" AS currency, r.brand_campaign_id,
           r.subscription_id IS NOT NULL AS is_subscription, r.purchase_id IS NOT NULL AS is_purchase,
           r.deployment_id,
           count(*) AS count, sum(r.gross_cents) AS gross, sum(r.fee_cents) AS fee, sum(r.net_cents) AS net,
           sum(r.celebrity_share_cents) AS celebrity, sum(r.platform_share_cents) AS platform
      FROM revenue_transactions r
     WHERE r.tenant_id = :tenant AND r.celebrity_id = :celebrity
       AND r.occurred_at >= :start AND r.occurred_at < :end
     GROUP BY 1, 2, 3, 4, 5, 6
    """
)


def _source(row: Any) -> tuple[str, uuid.UUID | None]:
    if row.brand_campaign_id is not None:
        return "campaign", row.brand_campaign_id
    if row.is_subscription:
        return "subscriptions", None
    if row.is_purchase:
        return "purchases", None
    if row.deployment_id is not None:
        return "deployment", row.deployment_id
    return "other", None


NAMES_SQL = text(
    "SELECT id, campaign_name AS name FROM brand_campaigns WHERE tenant_id = :tenant AND id = ANY(:ids)"
    " UNION ALL SELECT id, name FROM deployments WHERE tenant_id = :tenant AND id = ANY(:ids)"
)
TREND_SQL = text(
    """
    SELECT date_trunc('month', r.occurred_at AT TIME ZONE 'UTC')::date AS month, r.currency,
           sum(r.gross_cents) AS gross, sum(r.net_cents) AS net,
           sum(r.celebrity_share_cents) AS celebrity, sum(r.platform_share_cents) AS platform
      FROM revenue_transactions r
     WHERE r.tenant_id = :tenant AND r.celebrity_id = :celebrity
       AND r.occurred_at >= :start AND r.occurred_at < :end
     GROUP BY 1, 2 ORDER BY 1, 2
    """
)
PLATFORM_SQL = text(
    """
    SELECT r.tenant_id, r.celebrity_id, c.name AS celebrity_name, r.type::text AS type, r.currency,
           count(*) AS count, sum(r.gross_cents) AS gross, sum(r.fee_cents) AS fee, sum(r.net_cents) AS net,
           sum(r.celebrity_share_cents) AS celebrity, sum(r.platform_share_cents) AS platform
      FROM revenue_transactions r
      JOIN celebrities c ON c.tenant_id = r.tenant_id AND c.id = r.celebrity_id
     WHERE r.occurred_at >= :start AND r.occurred_at < :end
     GROUP BY 1, 2, 3, 4, 5 ORDER BY 3, 4
    """
)
SOURCE_LABELS = {
    "subscriptions": "Fan subscriptions",
    "purchases": "One-time purchases",
    "campaign": "Brand campaign",
    "deployment": "Deployment",
    "other": "Other",
}


def month_start(value: date) -> date:
    return value.replace(day=1)


def next_month(value: date) -> date:
    return date(value.year + value.month // 12, value.month % 12 + 1, 1)


def add_months(value: date, months: int) -> date:
    index = value.year * 12 + value.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def month_bounds(month: date) -> tuple[datetime, datetime]:
    start = month_start(month)
    end = next_month(start)
    return (datetime(start.year, start.month, 1, tzinfo=UTC), datetime(end.year, end.month, 1, tzinfo=UTC))


def parse_month(value: str) -> date:
    """`2026-07` → the first of July 2026; ValueError otherwise."""
    try:
        year, month = value.split("-")
        return date(int(year), int(month), 1)
    except (ValueError, TypeError) as exc:
        raise ValueError("a month is written YYYY-MM") from exc


@dataclass
class Amounts:
    count: int = 0
    gross_cents: int = 0
    fee_cents: int = 0
    net_cents: int = 0
    celebrity_share_cents: int = 0
    platform_share_cents: int = 0

    def add(self, other: Amounts) -> None:
        self.count += other.count
        self.gross_cents += other.gross_cents
        self.fee_cents += other.fee_cents
        self.net_cents += other.net_cents
        self.celebrity_share_cents += other.celebrity_share_cents
        self.platform_share_cents += other.platform_share_cents

    @property
    def is_balanced(self) -> bool:
        return (
            self.net_cents == self.gross_cents - self.fee_cents
            and self.celebrity_share_cents + self.platform_share_cents == self.net_cents
        )


@dataclass
class StatementLine:
    type: str
    currency: str
    source_kind: str
    source_id: uuid.UUID | None
    source_name: str
    amounts: Amounts


@dataclass
class Statement:
    tenant_id: uuid.UUID
    celebrity_id: uuid.UUID
    month: date
    lines: list[StatementLine] = field(default_factory=list)
    totals: dict[str, Amounts] = field(default_factory=dict)
    by_type: dict[tuple[str, str], Amounts] = field(default_factory=dict)
    by_source: dict[tuple[str, str], Amounts] = field(default_factory=dict)

    @property
    def is_balanced(self) -> bool:
        return all(t.is_balanced for t in self.totals.values()) and all(
            line.amounts.is_balanced for line in self.lines
        )


def _amounts(row: Any) -> Amounts:
    return Amounts(
        count=int(row.count),
        gross_cents=int(row.gross),
        fee_cents=int(row.fee),
        net_cents=int(row.net),
        celebrity_share_cents=int(row.celebrity),
        platform_share_cents=int(row.platform),
    )


async def statement(
    session: AsyncSession, *, tenant_id: uuid.UUID, celebrity_id: uuid.UUID, month: date
) -> Statement:
    """Every posting of the month for one talent, by type and source, with totals per currency."""
    start, end = month_bounds(month)
    rows = (
        await session.execute(
            STATEMENT_SQL, {"tenant": tenant_id, "celebrity": celebrity_id, "start": start, "end": end}
        )
    ).all()
    grouped: dict[tuple[str, str, str, uuid.UUID | None], Amounts] = {}
    for row in rows:
        kind, source_id = _source(row)
        key = (str(getattr(row.type, "value", row.type)), row.currency, kind, source_id)
        grouped.setdefault(key, Amounts()).add(_amounts(row))
    ids = sorted({key[3] for key in grouped if key[3] is not None})
    names: dict[uuid.UUID, str] = {}
    if ids:
        names = {r.id: r.name for r in await session.execute(NAMES_SQL, {"tenant": tenant_id, "ids": ids})}
    result = Statement(tenant_id=tenant_id, celebrity_id=celebrity_id, month=month_start(month))
    order = list(SOURCE_LABELS)
    for (kind_type, currency, kind, source_id), amounts in sorted(
        grouped.items(), key=lambda item: (order.index(item[0][2]), item[0][0], str(item[0][3] or ""))
    ):
        name = names.get(source_id, "") if source_id else ""
        label = SOURCE_LABELS[kind] + (f": {name}" if name else "")
        result.lines.append(StatementLine(kind_type, currency, kind, source_id, label, amounts))
        result.totals.setdefault(currency, Amounts()).add(amounts)
        result.by_type.setdefault((kind_type, currency), Amounts()).add(amounts)
        result.by_source.setdefault((label, currency), Amounts()).add(amounts)
    return result


@dataclass
class TrendPoint:
    month: date
    currency: str
    gross_cents: int
    net_cents: int
    celebrity_share_cents: int
    platform_share_cents: int


async def trend(
    session: AsyncSession, *, tenant_id: uuid.UUID, celebrity_id: uuid.UUID, last: date, months: int = 12
) -> list[TrendPoint]:
    """Monthly totals for the `months` months ending with `last`, months without postings included."""
    first = add_months(month_start(last), -(months - 1))
    start, _ = month_bounds(first)
    _, end = month_bounds(last)
    rows = (
        await session.execute(
            TREND_SQL, {"tenant": tenant_id, "celebrity": celebrity_id, "start": start, "end": end}
        )
    ).all()
    found = {(r.month, r.currency): r for r in rows}
    currencies = sorted({r.currency for r in rows}) or ["USD"]
    points: list[TrendPoint] = []
    for i in range(months):
        month = add_months(first, i)
        for currency in currencies:
            row = found.get((month, currency))
            points.append(
                TrendPoint(
                    month,
                    currency,
                    int(row.gross) if row else 0,
                    int(row.net) if row else 0,
                    int(row.celebrity) if row else 0,
                    int(row.platform) if row else 0,
                )
            )
    return points


@dataclass
class PlatformReport:
    month: date
    by_stream: dict[tuple[str, str], Amounts] = field(default_factory=dict)
    by_talent: dict[tuple[uuid.UUID, str, str], Amounts] = field(default_factory=dict)
    totals: dict[str, Amounts] = field(default_factory=dict)


async def platform_report(session: AsyncSession, *, month: date) -> PlatformReport:
    """Every talent's month (the caller is in the audited admin context), by stream and by talent."""
    start, end = month_bounds(month)
    report = PlatformReport(month=month_start(month))
    for row in await session.execute(PLATFORM_SQL, {"start": start, "end": end}):
        amounts = _amounts(row)
        report.by_stream.setdefault((row.type, row.currency), Amounts()).add(amounts)
        key = (row.celebrity_id, row.celebrity_name, row.currency)
        report.by_talent.setdefault(key, Amounts()).add(amounts)
        report.totals.setdefault(row.currency, Amounts()).add(amounts)
    return report


CSV_HEADER = (
    "month",
    "source",
    "type",
    "currency",
    "count",
    "gross",
    "processing_fees",
    "net",
    "celebrity_share",
    "platform_share",
)


def _money_cells(a: Amounts, currency: str, *, thousands: bool = True) -> list[str]:
    return [
        format_minor(v, currency, symbol=False, thousands=thousands)
        for v in (a.gross_cents, a.fee_cents, a.net_cents, a.celebrity_share_cents, a.platform_share_cents)
    ]


def to_csv(found: Statement) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    month = found.month.strftime("%Y-%m")
    for line in found.lines:
        writer.writerow(
            [
                month,
                line.source_name,
                line.type,
                line.currency,
                line.amounts.count,
                *_money_cells(line.amounts, line.currency, thousands=False),
            ]
        )
    for currency, total in sorted(found.totals.items()):
        writer.writerow(
            [month, "TOTAL", "", currency, total.count, *_money_cells(total, currency, thousands=False)]
        )
    return out.getvalue()


def to_pdf(found: Statement, *, celebrity_name: str) -> bytes:
    from fpdf import FPDF

    pdf = FPDF(orientation="landscape", format="A4")
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.add_page()
    pdf.set_font("helvetica", "B", 16)
    title = f"Revenue statement - {found.month.strftime('%B %Y')}"
    pdf.cell(0, 10, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", "", 11)
    pdf.cell(0, 7, _latin1(f"Talent: {celebrity_name}"), new_x="LMARGIN", new_y="NEXT")
    pdf.cell(
        0,
        7,
        "Share basis: direct revenue (gross less third-party processing fees). "
        "Setup and platform fees are the platform's, outside the share.",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(3)
    widths = (70, 30, 14, 14, 28, 26, 28, 30, 30)
    header = ("Source", "Type", "Cur.", "Count", "Gross", "Fees", "Net", "Celebrity", "Platform")
    pdf.set_font("helvetica", "B", 9)
    for width, label in zip(widths, header, strict=True):
        pdf.cell(width, 7, label, border=1)
    pdf.ln()
    pdf.set_font("helvetica", "", 9)
    rows = [(line.source_name, line.type, line.currency, line.amounts) for line in found.lines] + [
        ("TOTAL", "", currency, total) for currency, total in sorted(found.totals.items())
    ]
    for source, kind, currency, amounts in rows:
        cells = [_latin1(source)[:48], kind, currency, str(amounts.count), *_money_cells(amounts, currency)]
        for width, value in zip(widths, cells, strict=True):
            pdf.cell(width, 6, value, border=1, align="R" if value[:1].isdigit() or value[:1] == "-" else "L")
        pdf.ln()
    return bytes(pdf.output())


def _latin1(value: str) -> str:
    # The core PDF fonts are Latin-1: accents (Andrés) stay, anything else becomes '?'.
    return value.encode("latin-1", "replace").decode("latin-1")
