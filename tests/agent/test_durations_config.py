from __future__ import annotations

import pytest

from agent.config import ConfigError, load_settings
from wire.durations import parse_duration

TOKEN = "edt.abc123.0123456789abcdefghijklmnop"


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90), ("10m", 600), ("1h", 3600), ("1h30m", 5400), ("45", 45), (2.5, 2.5),
    ("250ms", 0.25),
])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "ten", "10x", "-5", "5m3", True])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError, match=r"duration|negative"):
        parse_duration(bad)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("ACCOUNT_ID", "DELEGATE_TOKEN", "DELEGATE_TOKEN_FILE", "DELEGATE_TAGS",
                 "MANAGER_HOST_AND_PORT", "MANAGER_ALLOW_INSECURE", "SHUTDOWN_GRACE",
                 "MAX_CONCURRENT_TASKS", "DELEGATE_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ACCOUNT_ID", "acme")
    monkeypatch.setenv("DELEGATE_TOKEN", TOKEN)
    monkeypatch.setenv("MANAGER_HOST_AND_PORT", "https://manager.example.com")
    return monkeypatch


def test_settings_from_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("DELEGATE_TAGS", "prod, ecs ,ecs")
    env.setenv("SHUTDOWN_GRACE", "2m")
    s = load_settings()
    assert s.delegate_tags == ["ecs", "prod"]
    assert s.shutdown_grace == 120
    assert s.ws_url == "wss://manager.example.com/api/delegate/ws"
    assert TOKEN not in repr(s)


def test_flags_override_environment(env: pytest.MonkeyPatch) -> None:
    s = load_settings(delegate_name="flagged", max_concurrent_tasks=3)
    assert (s.delegate_name, s.max_concurrent_tasks) == ("flagged", 3)


@pytest.mark.parametrize(("name", "value", "message"), [
    ("ACCOUNT_ID", None, "ACCOUNT_ID is not set"),
    ("MANAGER_HOST_AND_PORT", "manager:8080", "MANAGER_HOST_AND_PORT: "),
    ("MANAGER_HOST_AND_PORT", "http://10.1.2.3:8080", "MANAGER_HOST_AND_PORT: .*not encrypted"),
    ("MAX_CONCURRENT_TASKS", "lots", "MAX_CONCURRENT_TASKS: "),
    ("SHUTDOWN_GRACE", "soon", "SHUTDOWN_GRACE: 'soon' is not a duration"),
    ("DELEGATE_TOKEN", "not-a-token", "DELEGATE_TOKEN: is not a delegate token"),
])
def test_bad_setting_names_the_variable(env: pytest.MonkeyPatch, name: str,
                                        value: str | None, message: str) -> None:
    if value is None:
        env.delenv(name)
    else:
        env.setenv(name, value)
    with pytest.raises(ConfigError, match=message) as err:
        load_settings()
    assert TOKEN not in str(err.value)
    assert "\n" not in str(err.value)


def test_insecure_allowed_to_loopback_or_when_asked(env: pytest.MonkeyPatch) -> None:
    env.setenv("MANAGER_HOST_AND_PORT", "http://127.0.0.1:8080")
    assert load_settings().ws_url == "ws://127.0.0.1:8080/api/delegate/ws"
    env.setenv("MANAGER_HOST_AND_PORT", "http://manager:8080")
    env.setenv("MANAGER_ALLOW_INSECURE", "true")
    assert load_settings().http_base == "http://manager:8080"


def test_token_file(env: pytest.MonkeyPatch, tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "token"  # type: ignore[operator]
    path.write_text(TOKEN + "\n")
    env.delenv("DELEGATE_TOKEN")
    env.setenv("DELEGATE_TOKEN_FILE", str(path))
    assert load_settings().token() == TOKEN
