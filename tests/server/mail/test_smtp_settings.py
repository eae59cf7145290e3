"""The SMTP settings: read from the environment, checked together, the password never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.settings import SettingsError, load_settings

BASE = {"PAIRLAB_SMTP_HOST": "mail.example.com", "PAIRLAB_SMTP_FROM": "pairlab@example.com"}


def test_read_from_the_environment_with_the_password_hidden(tmp_path: Path) -> None:
    settings = load_settings(environ={
        **BASE, "PAIRLAB_DATA_DIR": str(tmp_path), "PAIRLAB_SMTP_PORT": "2525",
        "PAIRLAB_SMTP_USERNAME": "pairlab", "PAIRLAB_SMTP_PASSWORD": "hunter2-secret"})
    assert settings.smtp_configured and settings.smtp_port == 2525 and settings.smtp_starttls
    assert settings.smtp_password.reveal() == "hunter2-secret"
    assert "hunter2-secret" not in repr(settings) and "hunter2-secret" not in str(settings)
    assert not load_settings(environ={}).smtp_configured


@pytest.mark.parametrize(("extra", "problem"), [
    ({"PAIRLAB_SMTP_FROM": ""}, "smtp_from: '' is not an email address (needed with smtp_host)"),
    ({"PAIRLAB_SMTP_FROM": "a@b.org\r\nBcc: x@y.org"}, "smtp_from: "),
    ({"PAIRLAB_SMTP_TLS": "true"}, "smtp_tls: TLS from the first byte and STARTTLS exclude"),
    ({"PAIRLAB_SMTP_PASSWORD": "pw-only"}, "smtp_username: give both"),
    ({"PAIRLAB_SMTP_PORT": "0"}, "smtp_port: 0 is not a port number"),
    ({"PAIRLAB_SMTP_STARTTLS": "false", "PAIRLAB_SMTP_USERNAME": "u",
      "PAIRLAB_SMTP_PASSWORD": "clear-text-pw"},
     "smtp_password: would cross the network in clear text"),
])
def test_bad_combinations_are_refused_naming_the_setting(extra: dict[str, str],
                                                        problem: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(environ={**BASE, **extra})
    assert str(refused.value).startswith(problem)
    assert "pw-only" not in str(refused.value) and "clear-text-pw" not in str(refused.value)


def test_a_password_in_clear_text_to_loopback_is_allowed() -> None:
    settings = load_settings(environ={
        **BASE, "PAIRLAB_SMTP_HOST": "127.0.0.1", "PAIRLAB_SMTP_STARTTLS": "false",
        "PAIRLAB_SMTP_USERNAME": "u", "PAIRLAB_SMTP_PASSWORD": "local-relay"})
    assert settings.smtp_host == "127.0.0.1" and not settings.smtp_starttls
