"""Sending one email over SMTP with aiosmtplib.

aiosmtplib rather than the standard library's ``smtplib`` in a thread: it runs on aiohttp's own
event loop (no thread held for up to the timeout per send), does STARTTLS, implicit TLS and
AUTH, and raises typed errors, each turned here into one sentence an interviewer can act on
(``MailError``). The password goes only to the SMTP server; no sentence or log line holds it.
"""

from __future__ import annotations

import logging
import ssl
from email.message import EmailMessage

import aiosmtplib

from common.errors import DomainError
from server.settings import Settings

log = logging.getLogger(__name__)


class MailError(DomainError):
    """The SMTP server could not be reached or refused the message: nothing was sent."""

    status = 502
    code = "mail_failed"


def _said(exc: aiosmtplib.SMTPResponseException) -> str:
    return " ".join(f"{exc.code} {exc.message}".split())[:200]


def _sentence(exc: Exception, settings: Settings, recipient: str) -> str:
    server = f"the SMTP server {settings.smtp_host}:{settings.smtp_port}"
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused | aiosmtplib.SMTPRecipientRefused):
        refused = exc.recipients[0] if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) else exc
        return (f"Not sent: {server} refused the address {recipient} ({_said(refused)}). Check"
                " the address and send again.")
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return (f"Not sent: {server} refused pairlab's login ({_said(exc)}); an administrator"
                " should check smtp_username and smtp_password.")
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return (f"Not sent: {server} refused the From address {settings.smtp_from}"
                f" ({_said(exc)}); an administrator should check smtp_from.")
    if isinstance(exc, aiosmtplib.SMTPConnectTimeoutError | aiosmtplib.SMTPTimeoutError):
        return (f"Not sent: {server} did not answer within {settings.smtp_timeout_seconds:g}"
                " seconds. Try again later.")
    if isinstance(exc, aiosmtplib.SMTPConnectError | ConnectionError):
        return (f"Not sent: pairlab could not connect to {server} (connection refused or"
                " unreachable). Try again later, or ask an administrator to check smtp_host and"
                " smtp_port.")
    if "STARTTLS" in str(exc) and not isinstance(exc, aiosmtplib.SMTPResponseException):
        return (f"Not sent: {server} does not offer STARTTLS, which smtp_starttls requires (so"
                " that nothing crosses the network in clear text); an administrator should"
                " check smtp_starttls and smtp_tls.")
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return (f"Not sent: {server} does not offer what pairlab needs ({exc}); an"
                " administrator should check smtp_starttls, smtp_tls and smtp_username.")
    if isinstance(exc, ssl.SSLError):
        return (f"Not sent: the TLS connection to {server} failed ({exc.reason or exc}); an"
                " administrator should check its certificate and smtp_tls/smtp_starttls.")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"Not sent: {server} refused the message ({_said(exc)})."
    return f"Not sent: {server} failed ({type(exc).__name__}: {str(exc)[:200]})."


async def send(settings: Settings, message: EmailMessage, recipient: str, *,
               tls_context: ssl.SSLContext | None = None, shown: str | None = None) -> None:
    """Send ``message`` to ``recipient`` alone (the envelope's only recipient, whatever the
    headers say), or raise ``MailError`` with a sentence. ``tls_context`` is for a private
    certificate authority (the tests' own); by default certificates are verified against the
    system's. ``shown``: how the sentence and the log name the recipient (a blind session's
    address is not shown)."""
    if not settings.smtp_configured:
        raise MailError("Not sent: pairlab has no SMTP server (set smtp_host).")
    try:
        await aiosmtplib.send(
            message, sender=settings.smtp_from, recipients=[recipient],
            hostname=settings.smtp_host, port=settings.smtp_port,
            username=settings.smtp_username or None,
            password=settings.smtp_password.reveal() or None,
            use_tls=settings.smtp_tls, start_tls=settings.smtp_starttls,
            timeout=settings.smtp_timeout_seconds, tls_context=tls_context,
        )
    except (aiosmtplib.SMTPException, OSError) as exc:
        named = shown or recipient
        sentence = _sentence(exc, settings, named)
        log.warning("email to %s not sent: %s", named, sentence)
        raise MailError(sentence) from None
