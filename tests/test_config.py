"""Settings and the YAML practice config: validated up front, with messages that say what to fix."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.core.config import IncidentConfig, load_config
from bot.core.errors import ConfigError
from bot.root.settings import Settings, describe_settings
from tests.conftest import repo_root

BASE = {"SLACK_BOT_TOKEN": "xoxb-1-2-abc", "SLACK_SIGNING_SECRET": "shhh"}


def env_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env: str) -> Settings:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for key in [r[0] for r in describe_settings()]:
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings()


def test_environment_is_read_and_secrets_never_print(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = env_settings(
        monkeypatch,
        tmp_path,
        **BASE,
        REDIS_URL="redis://localhost:6379/2",
        FIREBREAK_PORT="8080",
        SLACK_API_URL="http://127.0.0.1:9/api",
    )
    assert (s.redis_url, s.port, s.slack_api_url, s.socket_mode) == (
        "redis://localhost:6379/2",
        8080,
        "http://127.0.0.1:9/api/",
        False,
    )
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("settings: %s %r", s, s)
    assert "xoxb-1-2-abc" not in caplog.text and "shhh" not in caplog.text


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SLACK_SIGNING_SECRET": "x"}, "Field required"),
        (
            {"SLACK_BOT_TOKEN": "xoxp-user-token", "SLACK_SIGNING_SECRET": "x"},
            "must be a bot token starting with xoxb-",
        ),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "HTTP mode needs SLACK_SIGNING_SECRET"),
        ({**BASE, "SLACK_APP_TOKEN": "xoxb-wrong"}, "app-level token starting with xapp-"),
        ({**BASE, "FIREBREAK_PORT": "99999"}, "less than or equal to 65535"),
    ],
)
def test_bad_settings_say_what_to_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        env_settings(monkeypatch, tmp_path, **env)


def test_socket_mode_needs_no_signing_secret(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    s = env_settings(monkeypatch, tmp_path, SLACK_BOT_TOKEN="xoxb-1", SLACK_APP_TOKEN="xapp-1")
    assert s.socket_mode


def test_yaml_config_loads_and_validates(tmp_path: Path) -> None:
    example = load_config(repo_root() / "deploy" / "firebreak.example.yaml")
    assert example == IncidentConfig(), "the example documents the defaults"
    path = tmp_path / "c.yaml"
    path.write_text(
        "command: /inc\nchannel_prefix: incident\nroles: [comms, scribe, liaison]\ndefault_severity: 2\n"
        "severities:\n  - {level: 1, description: down, update_every_minutes: 15}\n"
        "  - {level: 2, description: degraded, update_every_minutes: 45}\n"
    )
    config = load_config(path)
    assert (config.command, config.channel_prefix, config.roles, config.max_level) == (
        "/inc",
        "incident",
        ("comms", "scribe", "liaison"),
        2,
    )
    assert config.severity(1).update_every_minutes == 15


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("command: incident\n", "command: Value error, command must look like /incident"),
        ("roles: [ic, comms]\n", "'ic' is built in"),
        ("severities:\n  - {level: 2, description: x, update_every_minutes: 5}\n", "levels must be 1..N"),
        ("default_severity: 7\n", "default_severity 7 is not one of the levels"),
        ("colour: red\n", "colour: Extra inputs are not permitted"),
        ("- just\n- a list\n", "must hold a mapping"),
        ("command: [unclosed\n", "is not valid YAML"),
    ],
)
def test_bad_yaml_config_is_one_clear_error(tmp_path: Path, yaml_text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        load_config(path)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_readme_documents_every_setting() -> None:
    readme = (repo_root() / "README.md").read_text()
    for env, _, doc in describe_settings():
        assert f"`{env}`" in readme, f"README's configuration table lacks {env}"
        assert doc, f"{env} has no docstring"
