"""A real SMTP server on loopback for the link email tests: aiosmtpd's ``SMTP`` protocol served
by the test's own event loop on 127.0.0.1 and an ephemeral port (``create_server(port=0)``),
with optional STARTTLS or TLS from the first byte (a throw-away certificate made by the
``openssl`` command) and AUTH. What it received is parsed with the standard library."""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def text(self) -> str:
        part = self.message.get_body(("plain",))
        assert part is not None
        return str(part.get_content())


@dataclass
class Inbox:
    """aiosmtpd's handler: keeps each message; refuses the recipients in ``refuse``."""

    refuse: set[str] = field(default_factory=set)
    received: list[Received] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), parsed))
        return "250 OK queued"


@dataclass
class Served:
    inbox: Inbox
    port: int


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (certificate, key)."""
    cert, key = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True)
    return cert, key


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@asynccontextmanager
async def smtp_server(*, starttls: ssl.SSLContext | None = None,
                      implicit_tls: ssl.SSLContext | None = None,
                      accounts: dict[str, str] | None = None,
                      refuse: set[str] | None = None) -> AsyncIterator[Served]:
    """Serve SMTP until the block ends. ``accounts`` (login: password) makes AUTH required."""
    inbox = Inbox(refuse=set(refuse or ()))

    def authenticate(server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                     auth_data: Any) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        ok = accounts is not None and accounts.get(login) == password
        if ok:
            inbox.logins.append(login)
        return AuthResult(success=ok, handled=False)  # a failure: aiosmtpd answers 535

    def protocol() -> SMTP:
        return SMTP(inbox, hostname="smtp.test", tls_context=starttls,
                    require_starttls=starttls is not None,
                    authenticator=authenticate if accounts else None,
                    auth_required=bool(accounts))

    loop = asyncio.get_running_loop()
    server = await loop.create_server(protocol, "127.0.0.1", 0, ssl=implicit_tls)
    try:
        yield Served(inbox, int(server.sockets[0].getsockname()[1]))
    finally:
        server.close()
        await server.wait_closed()


@asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A TCP server on loopback that accepts and never says a word (no SMTP greeting)."""
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed: connecting is refused)."""
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def smtp_server_in_a_thread(**options: Any) -> Iterator[Served]:
    """``smtp_server`` on an event loop of its own in a thread, for a test whose loop does not
    outlive the server (a module's ``pairlab demo`` sends to it across several tests)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    found: list[Served] = []
    stop = asyncio.Event()

    async def serve() -> None:
        async with smtp_server(**options) as served:
            found.append(served)
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the SMTP server did not start within 10 s")
    try:
        yield found[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
