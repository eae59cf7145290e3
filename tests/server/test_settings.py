"""Settings: defaults < TOML file < PAIRLAB_* environment < CLI flags; clear errors; the secret."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from server.settings import (
    COOKIE_SECRET_FILE,
    Secret,
    Settings,
    SettingsError,
    load_settings,
    prepare_data_dir,
    setting_fields,
)
from tests.conftest import CliResult, MakeSettings, assert_no_traceback


def write_toml(tmp_path: Path, text: str, name: str = "pairlab.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_when_nothing_is_given() -> None:
    settings = load_settings(environ={})
    assert settings == Settings()
    assert settings.port == 8800
    assert settings.workspace_port == 8801
    assert settings.log_level == "INFO"
    assert settings.app_url == "http://127.0.0.1:8800"
    assert settings.workspace_url == "http://localhost:8801"  # workspaces: w-<id>.localhost
    assert settings.workspace_origin("wabc") == "http://w-wabc.localhost:8801"


def test_relative_paths_are_made_absolute_once_against_the_start_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    start = tmp_path / "start"
    start.mkdir()
    monkeypatch.chdir(start)
    settings = load_settings(environ={"PAIRLAB_ENVIRONMENTS_DIR": "shared/../envs"})
    assert settings.data_dir == start / "var"  # the default ./var
    assert settings.envs_root == start / "envs"
    monkeypatch.chdir(tmp_path)  # what a subprocess with another working folder would see
    assert settings.data_dir == start / "var"
    assert settings.db_path == start / "var" / "pairlab.db"
    assert load_settings(environ={}).envs_root == tmp_path / "var" / "envs"


def test_every_setting_has_a_default_and_help() -> None:
    for f in setting_fields():
        assert f.metadata.get("help"), f"{f.name} has no help string"
    Settings()  # every field has a default


def test_toml_file_overrides_defaults(tmp_path: Path) -> None:
    config = write_toml(tmp_path, 'port = 9000\nlog_level = "debug"\nsession_hours = 3\n')
    settings = load_settings(environ={}, config_file=config)
    assert settings.port == 9000
    assert settings.log_level == "DEBUG"
    assert settings.session_hours == 3
    assert settings.workspace_port == 8801  # untouched fields keep their default


def test_pairlab_config_environment_names_the_file(tmp_path: Path) -> None:
    config = write_toml(tmp_path, "port = 9001\n")
    settings = load_settings(environ={"PAIRLAB_CONFIG": str(config)})
    assert settings.port == 9001


def test_config_flag_wins_over_pairlab_config(tmp_path: Path) -> None:
    from_env = write_toml(tmp_path, "port = 9001\n", "env.toml")
    from_flag = write_toml(tmp_path, "port = 9002\n", "flag.toml")
    settings = load_settings(environ={"PAIRLAB_CONFIG": str(from_env)}, config_file=from_flag)
    assert settings.port == 9002


def test_environment_overrides_toml(tmp_path: Path) -> None:
    config = write_toml(tmp_path, "port = 9000\nsession_hours = 3\n")
    settings = load_settings(
        environ={"PAIRLAB_PORT": "9100", "PAIRLAB_DATA_DIR": str(tmp_path / "d")},
        config_file=config,
    )
    assert settings.port == 9100
    assert settings.session_hours == 3
    assert settings.data_dir == tmp_path / "d"


def test_cli_flags_override_environment(tmp_path: Path) -> None:
    config = write_toml(tmp_path, "port = 9000\nworkspace_port = 9500\n")
    settings = load_settings(
        cli={"port": "9200", "log_level": "warning"},
        environ={"PAIRLAB_PORT": "9100", "PAIRLAB_LOG_LEVEL": "ERROR"},
        config_file=config,
    )
    assert settings.port == 9200
    assert settings.log_level == "WARNING"
    assert settings.workspace_port == 9500


def test_unrelated_environment_is_ignored() -> None:
    settings = load_settings(environ={"PAIRLAB_NOT_A_SETTING": "x", "PORT": "1"})
    assert settings == Settings()


@pytest.mark.parametrize(
    ("environ", "setting"),
    [
        ({"PAIRLAB_PORT": "70000"}, "port"),
        ({"PAIRLAB_PORT": "-1"}, "port"),
        ({"PAIRLAB_PORT": "eighty"}, "port"),
        ({"PAIRLAB_WORKSPACE_PORT": "99999"}, "workspace_port"),
        ({"PAIRLAB_LOG_LEVEL": "LOUD"}, "log_level"),
        ({"PAIRLAB_HOST": "example.com"}, "host"),
        ({"PAIRLAB_PUBLIC_URL": "ftp://x"}, "public_url"),
        ({"PAIRLAB_SESSION_HOURS": "0"}, "session_hours"),
        ({"PAIRLAB_MAX_BODY_BYTES": "1.5"}, "max_body_bytes"),
        ({"PAIRLAB_SHUTDOWN_TIMEOUT": "soon"}, "shutdown_timeout"),
        ({"PAIRLAB_WORKSPACE_PORT": "8800"}, "workspace_port"),
    ],
)
def test_invalid_environment_value_names_the_setting(
    environ: dict[str, str], setting: str
) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(environ=environ)
    assert str(info.value).startswith(f"{setting}:")


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("FALSE", False), ("1", True),
                                             ("0", False)])
def test_boolean_settings_from_the_environment(raw: str, expected: bool) -> None:
    settings = load_settings(environ={"PAIRLAB_GIT_ALLOW_HTTP": raw})
    assert settings.git_allow_http is expected


def test_boolean_setting_refuses_other_words(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"^git_allow_http: 'maybe' from PAIRLAB_GIT"):
        load_settings(environ={"PAIRLAB_GIT_ALLOW_HTTP": "maybe"})
    config = write_toml(tmp_path, 'git_allow_http = "false"\n')
    settings = load_settings(environ={}, config_file=config)
    assert settings.git_allow_http is False
    config = write_toml(tmp_path, "git_allow_http = 1\n")
    with pytest.raises(SettingsError, match=r"^git_allow_http:"):
        load_settings(environ={}, config_file=config)


def test_invalid_cli_value_names_the_flag() -> None:
    with pytest.raises(SettingsError, match=r"^port: 'x' from --port is not an integer$"):
        load_settings(cli={"port": "x"}, environ={})


@pytest.mark.parametrize(
    ("text", "setting"),
    [
        ("port = 123456\n", "port"),
        ('port = "x"\n', "port"),
        ("port = true\n", "port"),
        ('log_level = "chatty"\n', "log_level"),
        ("data_dir = 3\n", "data_dir"),
        ("host = 1\n", "host"),
    ],
)
def test_invalid_toml_value_names_the_setting(tmp_path: Path, text: str, setting: str) -> None:
    config = write_toml(tmp_path, text)
    with pytest.raises(SettingsError) as info:
        load_settings(environ={}, config_file=config)
    assert str(info.value).startswith(f"{setting}:")


def test_unknown_toml_key_is_refused(tmp_path: Path) -> None:
    config = write_toml(tmp_path, "port = 9000\nprot = 9001\n")
    with pytest.raises(SettingsError, match=r"^prot: unknown setting in "):
        load_settings(environ={}, config_file=config)


def test_bad_toml_is_refused(tmp_path: Path) -> None:
    config = write_toml(tmp_path, "port = = 9000\n")
    with pytest.raises(SettingsError, match=r"^config: .* is not valid TOML"):
        load_settings(environ={}, config_file=config)


def test_missing_config_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"^config: cannot read "):
        load_settings(environ={}, config_file=tmp_path / "absent.toml")


def test_short_cookie_secret_is_refused_without_showing_it() -> None:
    with pytest.raises(SettingsError, match=r"^cookie_secret:") as info:
        load_settings(environ={"PAIRLAB_COOKIE_SECRET": "shortsecretvalue"})
    assert "shortsecretvalue" not in str(info.value)


def test_cookie_secret_is_generated_owner_only(make_settings: MakeSettings) -> None:
    settings = make_settings()
    data_dir = settings.data_dir
    secret_file = data_dir / COOKIE_SECRET_FILE
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    value = secret_file.read_text(encoding="utf-8").strip()
    assert len(value) >= 32
    assert settings.cookie_secret.reveal() == value
    assert value not in repr(settings)
    assert value not in str(settings)
    assert "Secret('**********')" in repr(settings)
    # The same secret on the next start, so existing sessions keep working.
    assert make_settings().cookie_secret == settings.cookie_secret


def test_given_cookie_secret_is_used_and_hidden(make_settings: MakeSettings) -> None:
    secret = "s" * 40
    settings = make_settings(cookie_secret=Secret(secret))
    assert settings.cookie_secret.reveal() == secret
    assert secret not in repr(settings)
    assert not (settings.data_dir / COOKIE_SECRET_FILE).exists()


def test_cookie_secret_from_environment_is_hidden(tmp_path: Path) -> None:
    secret = "e" * 48
    settings = load_settings(
        environ={"PAIRLAB_COOKIE_SECRET": secret, "PAIRLAB_DATA_DIR": str(tmp_path / "d")}
    )
    assert settings.cookie_secret.reveal() == secret
    assert secret not in repr(settings)


def test_existing_data_dir_is_tightened(tmp_path: Path) -> None:
    data_dir = tmp_path / "loose"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    prepare_data_dir(Settings(data_dir=data_dir))
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700


# ---- through the real command line -------------------------------------------------------


def assert_one_line_error(result: CliResult, *words: str) -> None:
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert_no_traceback(result.stderr)
    for word in words:
        assert word in lines[0]


@pytest.mark.slow
def test_cli_invalid_flag_value(run_cli: Callable[..., CliResult]) -> None:
    result = run_cli("user", "list", "--log-level", "LOUD")
    assert_one_line_error(result, "log_level")


@pytest.mark.slow
def test_cli_invalid_environment_value(run_cli: Callable[..., CliResult]) -> None:
    result = run_cli("user", "list", env={"PAIRLAB_PORT": "70000"})
    assert_one_line_error(result, "port", "70000")


@pytest.mark.slow
def test_cli_serve_invalid_port(run_cli: Callable[..., CliResult]) -> None:
    result = run_cli("serve", "--port", "not-a-port")
    assert_one_line_error(result, "port", "--port")


@pytest.mark.slow
def test_cli_unknown_toml_key(run_cli: Callable[..., CliResult], tmp_path: Path) -> None:
    config = write_toml(tmp_path, "prot = 1\n")
    result = run_cli("user", "list", "--config", str(config))
    assert_one_line_error(result, "prot")


@pytest.mark.slow
def test_cli_bad_toml_via_pairlab_config(run_cli: Callable[..., CliResult], tmp_path: Path) -> None:
    config = write_toml(tmp_path, "[[[\n")
    result = run_cli("user", "list", env={"PAIRLAB_CONFIG": str(config)})
    assert_one_line_error(result, "config", "TOML")


@pytest.mark.slow
def test_cli_layers_reach_the_command(run_cli: Callable[..., CliResult], tmp_path: Path) -> None:
    """--data-dir beats PAIRLAB_DATA_DIR, which beats the TOML file."""
    config = write_toml(tmp_path, f'data_dir = "{tmp_path / "from-toml"}"\n')
    env = {"PAIRLAB_DATA_DIR": str(tmp_path / "from-env")}
    result = run_cli(
        "db", "upgrade", "--config", str(config), "--data-dir", str(tmp_path / "from-flag"), env=env
    )
    assert result.returncode == 0, result
    assert (tmp_path / "from-flag" / "pairlab.db").exists()
    assert not (tmp_path / "from-env").exists()
    assert not (tmp_path / "from-toml").exists()

    result = run_cli("db", "upgrade", "--config", str(config), env=env)
    assert result.returncode == 0, result
    assert (tmp_path / "from-env" / "pairlab.db").exists()
    assert not (tmp_path / "from-toml").exists()


@pytest.mark.parametrize(("raw", "message"), [
    ("-1", "max_parallel_starts: -1 must be 0 (one per CPU core) to 64"),
    ("65", "max_parallel_starts: 65 must be 0 (one per CPU core) to 64"),
    ("two", "max_parallel_starts: 'two' from PAIRLAB_MAX_PARALLEL_STARTS is not an integer"),
])
def test_a_bad_bound_of_parallel_starts_is_refused_with_a_sentence(raw: str,
                                                                   message: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(environ={"PAIRLAB_MAX_PARALLEL_STARTS": raw})
    assert str(info.value) == message


def test_the_start_queue_settings_from_the_environment() -> None:
    settings = load_settings(environ={"PAIRLAB_MAX_PARALLEL_STARTS": "3",
                                      "PAIRLAB_START_QUEUE_TIMEOUT_SECONDS": "45"})
    assert (settings.max_parallel_starts, settings.start_queue_timeout_seconds) == (3, 45.0)
    assert load_settings(environ={}).max_parallel_starts == 0  # one per core
    with pytest.raises(SettingsError, match=r"^start_queue_timeout_seconds: must be 1 to 3600$"):
        load_settings(environ={"PAIRLAB_START_QUEUE_TIMEOUT_SECONDS": "0"})
