"""Outgoing e-mail over SMTP (STARTTLS and login when configured), sent from a worker thread."""

from __future__ import annotations

import asyncio
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage

from vibethink.core.errors import ServiceUnavailable
from vibethink.core.settings import Settings


class MailUnavailable(ServiceUnavailable):
    code = "mail_unavailable"
    default_message = "E-mail cannot be sent right now."


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content: bytes
    maintype: str
    subtype: str


def _send(settings: Settings, message: EmailMessage) -> None:
    if not settings.smtp_host:
        raise MailUnavailable("No SMTP server is configured (VIBETHINK_SMTP_HOST).")
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds) as smtp:
        smtp.ehlo()
        if settings.smtp_starttls and smtp.has_extn("starttls"):
            smtp.starttls()
            smtp.ehlo()
        if settings.smtp_username and settings.smtp_password:
            smtp.login(settings.smtp_username, settings.smtp_password)
        smtp.send_message(message)


async def send(
    settings: Settings,
    *,
    to: list[str],
    subject: str,
    body: str,
    attachments: list[Attachment] = (),  # type: ignore[assignment]
) -> None:
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message.set_content(body)
    for a in attachments:
        message.add_attachment(a.content, maintype=a.maintype, subtype=a.subtype, filename=a.filename)
    try:
        await asyncio.to_thread(_send, settings, message)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailUnavailable(f"The SMTP server refused or failed: {exc}") from exc
