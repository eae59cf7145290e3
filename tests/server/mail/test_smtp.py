"""The candidate link's email sent to a real SMTP server on loopback (aiosmtpd): what arrives,
STARTTLS with AUTH, TLS from the first byte, and each way a send fails as one sentence."""

from __future__ import annotations

import dataclasses
import ssl
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from common.errors import Unprocessable
from server.mail.link_message import LinkEmail, link_message
from server.mail.smtp import MailError, send
from server.people.accounts import normalise_email
from server.settings import Secret, Settings
from tests.smtp_server import (
    closed_port,
    make_certificate,
    server_context,
    silent_server,
    smtp_server,
)

LINK = "http://localhost:8801/c/q8Zr2T9bYx7fKkLm0pQwErTyUiOpAsDf"
FACTS = LinkEmail(
    candidate_name="Ada Lovelace", candidate_address="ada@example.org",
    title="Fix the daily features pipeline", role="ml-engineer",
    interviewers="Demo Interviewer and Demo Interviewer Two",
    starts_at=datetime(2026, 12, 7, 14, 30, tzinfo=UTC), duration_minutes=60, link=LINK,
    sender="pairlab@example.com", reply_to="lead@example.com")
PASSWORD = "s3cret-smtp-password"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("smtp-tls"))


def settings_for(tmp_path: Path, port: int, **over: Any) -> Settings:
    values: dict[str, Any] = {"data_dir": tmp_path / "data", "smtp_host": "127.0.0.1",
                              "smtp_port": port, "smtp_from": "pairlab@example.com",
                              "smtp_starttls": False, **over}
    return Settings(**values)


async def test_the_message_names_the_task_people_time_length_and_link(tmp_path: Path) -> None:
    async with smtp_server() as served:
        await send(settings_for(tmp_path, served.port), link_message(FACTS), "ada@example.org")
    [got] = served.inbox.received
    assert got.rcpt_tos == ["ada@example.org"] and got.mail_from == "pairlab@example.com"
    headers = got.message
    # (a long subject is folded after "Subject:"; unfolding keeps that space, as RFC 5322 says)
    assert headers["Subject"].strip() == (
        "Your interview: Fix the daily features pipeline, Mon 7 Dec 2026, 14:30 UTC")
    assert headers["To"] == "Ada Lovelace <ada@example.org>"
    assert headers["Reply-To"] == "lead@example.com"
    text = got.text
    for said in ("Hello Ada Lovelace,", "for the ml engineer role: Fix the daily features pipeline",
                 "When: Mon 7 Dec 2026, 14:30 UTC (2026-12-07T14:30Z)", "How long: 60 minutes",
                 "With: Demo Interviewer and Demo Interviewer Two", LINK,
                 "works from 15 minutes before the start", "The session is recorded"):
        assert said in text, said
    assert not got.message.is_multipart()  # plain text only


async def test_starttls_with_auth_over_a_verified_certificate(
        tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    trusted = ssl.create_default_context(cafile=str(cert))
    async with smtp_server(starttls=server_context(cert, key),
                           accounts={"pairlab": PASSWORD}) as served:
        settings = settings_for(tmp_path, served.port, smtp_starttls=True,
                                smtp_username="pairlab", smtp_password=Secret(PASSWORD))
        await send(settings, link_message(FACTS), "ada@example.org", tls_context=trusted)
        # The same server with the system's trust only: its certificate is not accepted.
        with pytest.raises(MailError) as refused:
            await send(settings, link_message(FACTS), "ada@example.org")
    assert served.inbox.logins == ["pairlab"] and len(served.inbox.received) == 1
    assert "the TLS connection to the SMTP server 127.0.0.1" in refused.value.message
    assert PASSWORD not in refused.value.message


async def test_tls_from_the_first_byte(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    async with smtp_server(implicit_tls=server_context(cert, key)) as served:
        settings = settings_for(tmp_path, served.port, smtp_tls=True)
        await send(settings, link_message(FACTS), "ada@example.org",
                   tls_context=ssl.create_default_context(cafile=str(cert)))
    assert [r.rcpt_tos for r in served.inbox.received] == [["ada@example.org"]]


async def test_a_wrong_password_is_a_sentence_without_the_password(
        tmp_path: Path, certificate: tuple[Path, Path], caplog: pytest.LogCaptureFixture) -> None:
    cert, key = certificate
    async with smtp_server(starttls=server_context(cert, key),
                           accounts={"pairlab": PASSWORD}) as served:
        settings = settings_for(tmp_path, served.port, smtp_starttls=True,
                                smtp_username="pairlab", smtp_password=Secret("wrong-one"))
        with pytest.raises(MailError) as failed:
            await send(settings, link_message(FACTS), "ada@example.org",
                       tls_context=ssl.create_default_context(cafile=str(cert)))
    assert failed.value.message.startswith(
        f"Not sent: the SMTP server 127.0.0.1:{served.port} refused pairlab's login (535")
    assert "smtp_username and smtp_password" in failed.value.message
    assert served.inbox.received == []
    assert "wrong-one" not in failed.value.message and "wrong-one" not in caplog.text
    assert "wrong-one" not in repr(settings)


async def test_starttls_required_but_not_offered_sends_nothing(tmp_path: Path) -> None:
    async with smtp_server() as served:  # no STARTTLS on this server
        with pytest.raises(MailError) as failed:
            await send(settings_for(tmp_path, served.port, smtp_starttls=True),
                       link_message(FACTS), "ada@example.org")
    assert "smtp_starttls" in failed.value.message and served.inbox.received == []


async def test_a_refused_address_is_named(tmp_path: Path) -> None:
    async with smtp_server(refuse={"ada@example.org"}) as served:
        with pytest.raises(MailError) as failed:
            await send(settings_for(tmp_path, served.port), link_message(FACTS),
                       "ada@example.org")
    assert failed.value.message == (
        f"Not sent: the SMTP server 127.0.0.1:{served.port} refused the address"
        " ada@example.org (550 5.1.1 no such mailbox here). Check the address and send again.")
    assert served.inbox.received == []


async def test_connection_refused_and_a_server_that_never_answers(tmp_path: Path) -> None:
    port = closed_port()
    with pytest.raises(MailError) as refused:
        await send(settings_for(tmp_path, port), link_message(FACTS), "ada@example.org")
    assert refused.value.message.startswith(
        f"Not sent: pairlab could not connect to the SMTP server 127.0.0.1:{port}")
    async with silent_server() as silent:
        with pytest.raises(MailError) as slow:
            await send(settings_for(tmp_path, silent, smtp_timeout_seconds=1.0),
                       link_message(FACTS), "ada@example.org")
    assert slow.value.message == (f"Not sent: the SMTP server 127.0.0.1:{silent} did not answer"
                                  " within 1 seconds. Try again later.")
    assert refused.value.status == slow.value.status == 502


async def test_header_injection_through_the_name_or_title_adds_no_header_or_recipient(
        tmp_path: Path) -> None:
    """The attack: a candidate name and a task title carrying CR/LF and headers of their own
    (a Bcc to the attacker, a forged header, an early end of the headers)."""
    evil = dataclasses.replace(
        FACTS, candidate_name="Eve\r\nBcc: thief@attacker.example\r\nX-Evil: 1",
        title="Task\nCc: thief@attacker.example\r\n\r\nInjected body")
    async with smtp_server() as served:
        await send(settings_for(tmp_path, served.port), link_message(evil), "ada@example.org")
    [got] = served.inbox.received
    assert got.rcpt_tos == ["ada@example.org"]
    for header in ("Bcc", "Cc", "X-Evil"):
        assert got.message[header] is None, header
    assert sorted(set(got.message.keys())) == sorted(
        ["Subject", "From", "To", "Reply-To", "Date", "Message-ID", "Content-Type",
         "Content-Transfer-Encoding", "MIME-Version"])
    assert got.message["To"].addresses[0].addr_spec == "ada@example.org"
    assert len(got.message["To"].addresses) == 1
    assert "Injected body" not in got.text.split(LINK)[1]  # never a line of its own


@pytest.mark.parametrize("address", [
    "ada@example.org\r\nBcc: thief@attacker.example", "ada@example.org\nRCPT TO:<x@y.z>",
    "ada@example.org, thief@attacker.example", "Ada <ada@example.org>", "ada@exa mple.org"])
def test_an_address_with_more_than_one_address_in_it_is_refused(address: str) -> None:
    with pytest.raises(Unprocessable, match="is not an email address"):
        normalise_email(address)
