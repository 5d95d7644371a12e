"""The delegate's configuration: one frozen object built at start-up.

Environment names are the ones the product document gives a delegate (ACCOUNT_ID,
DELEGATE_TOKEN, DELEGATE_NAME, DELEGATE_TAGS, MANAGER_HOST_AND_PORT, ...). Every setting
but the token also has a ``delegate run`` flag; the token is never a flag because a
command line shows in ``ps``. A bad setting ends start-up with one line naming the
variable (see :func:`load_settings`).
"""

from __future__ import annotations

import os
import socket
import ssl
import tempfile
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from agent.errors import ConfigError as ConfigError  # re-exported: callers catch it here
from wire.auth import TokenFormatError, parse_token
from wire.durations import Duration
from wire.urls import check_manager_url

LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    account_id: str = Field(alias="ACCOUNT_ID", min_length=1)
    delegate_token: SecretStr | None = Field(default=None, alias="DELEGATE_TOKEN")
    delegate_token_file: Path | None = Field(default=None, alias="DELEGATE_TOKEN_FILE")
    delegate_name: str = Field(default_factory=socket.gethostname, alias="DELEGATE_NAME",
                               min_length=1, max_length=128)
    delegate_tags: Annotated[list[str], NoDecode] = Field(default_factory=list,
                                                          alias="DELEGATE_TAGS")
    manager_url: str = Field(alias="MANAGER_HOST_AND_PORT")
    manager_ca_bundle: Path | None = Field(default=None, alias="MANAGER_CA_BUNDLE")
    manager_allow_insecure: bool = Field(default=False, alias="MANAGER_ALLOW_INSECURE")
    max_concurrent_tasks: int = Field(default=10, alias="MAX_CONCURRENT_TASKS", ge=1, le=1000)
    log_streaming_service_url: str | None = Field(default=None,
                                                  alias="LOG_STREAMING_SERVICE_URL")
    init_script: str | None = Field(default=None, alias="INIT_SCRIPT")
    health_port: int | None = Field(default=None, alias="HEALTH_PORT", ge=0, le=65535)
    health_host: str = Field(default="0.0.0.0", alias="HEALTH_HOST")
    shutdown_grace: Duration = Field(default=100.0, alias="SHUTDOWN_GRACE")
    state_dir: Path | None = Field(default=None, alias="DELEGATE_STATE_DIR")
    # Reconnect backoff: capped exponential with full jitter, reset after a healthy period.
    reconnect_max: Duration = Field(default=60.0, alias="RECONNECT_MAX_DELAY")
    log_format: str = Field(default="auto", alias="LOG_FORMAT")

    @field_validator("delegate_tags", mode="before")
    @classmethod
    def _split_tags(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [t.strip() for t in v.split(",") if t.strip()]
        return v

    @field_validator("delegate_tags")
    @classmethod
    def _check_tags(cls, v: list[str]) -> list[str]:
        for tag in v:
            if len(tag) > 128 or any(c.isspace() for c in tag):
                raise ValueError(f"tag {tag!r} must be at most 128 characters without spaces")
        return sorted(set(v))

    @field_validator("manager_url", "log_streaming_service_url")
    @classmethod
    def _check_url(cls, v: str | None) -> str | None:
        return None if v is None else check_manager_url(v)

    @field_validator("log_format")
    @classmethod
    def _check_format(cls, v: str) -> str:
        if v not in ("auto", "json", "console"):
            raise ValueError("must be auto, json or console")
        return v

    @model_validator(mode="after")
    def _check_security(self) -> Settings:
        if self.delegate_token is None and self.delegate_token_file is None:
            raise ValueError("DELEGATE_TOKEN is not set (nor DELEGATE_TOKEN_FILE)")
        for url in filter(None, (self.manager_url, self.log_streaming_service_url)):
            parts = urlsplit(url)
            insecure = parts.scheme in ("http", "ws")
            if insecure and parts.hostname not in LOOPBACK_HOSTS \
                    and not self.manager_allow_insecure:
                name = ("MANAGER_HOST_AND_PORT" if url == self.manager_url
                        else "LOG_STREAMING_SERVICE_URL")
                raise ValueError(
                    f"{name}: {url} is not encrypted; use https, or set "
                    "MANAGER_ALLOW_INSECURE=true "
                    "for a trusted network"
                )
        return self

    # ------------------------------------------------------------------ derived values

    def token(self) -> str:
        if self.delegate_token is not None:
            return self.delegate_token.get_secret_value().strip()
        assert self.delegate_token_file is not None
        return self.delegate_token_file.read_text().strip()

    @property
    def http_base(self) -> str:
        parts = urlsplit(self.manager_url)
        scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
        return f"{scheme}://{parts.netloc}{parts.path}"

    @property
    def ws_url(self) -> str:
        parts = urlsplit(self.http_base)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return f"{scheme}://{parts.netloc}{parts.path}/api/delegate/ws"


# Which environment variable each field comes from, for error messages.
_ENV_NAMES = {name: (f.alias or name) for name, f in Settings.model_fields.items()}


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment, with CLI flags as ``overrides``.

    Raises ConfigError with one line: the variable, and what is wrong with it."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        settings = Settings(**clean)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = err["loc"][0] if err["loc"] else ""
        msg = err["msg"].removeprefix("Value error, ")
        if not loc:  # a check across fields: its message names the variable itself
            raise ConfigError(msg) from None
        name = _ENV_NAMES.get(str(loc), str(loc))
        if err["type"] == "missing":
            raise ConfigError(f"{name} is not set") from None
        raise ConfigError(f"{name}: {msg}") from None
    try:
        token = settings.token()
    except OSError as exc:
        raise ConfigError(
            f"DELEGATE_TOKEN_FILE: cannot read {settings.delegate_token_file}: {exc.strerror}"
        ) from None
    try:
        parse_token(token)
    except TokenFormatError as exc:
        source = "DELEGATE_TOKEN" if settings.delegate_token else "DELEGATE_TOKEN_FILE"
        raise ConfigError(f"{source}: {exc}") from None
    if settings.manager_ca_bundle:
        _check_ca_bundle(settings.manager_ca_bundle)
    if settings.state_dir:
        _check_state_dir(settings.state_dir)
    return settings


def _check_ca_bundle(path: Path) -> None:
    if not path.is_file():
        raise ConfigError(f"MANAGER_CA_BUNDLE: {path} is not a file")
    try:
        ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"MANAGER_CA_BUNDLE: {path} is not a PEM bundle of CA "
                          f"certificates ({exc.strerror or exc})") from None


def _check_state_dir(path: Path) -> None:
    """Messages spill here when the manager is away long; find out now, not then."""
    what = "unset DELEGATE_STATE_DIR or point it at a writable directory"
    if not path.exists():
        raise ConfigError(f"DELEGATE_STATE_DIR: {path} does not exist; create it, or {what}")
    if not path.is_dir():
        raise ConfigError(f"DELEGATE_STATE_DIR: {path} is not a directory; {what}")
    try:
        spill = path / "outbox"  # where agent.app puts the outbox's spill files
        spill.mkdir(exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=spill)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"DELEGATE_STATE_DIR: cannot write in {path} "
                          f"({exc.strerror or exc}); {what}") from None


def environment_summary() -> dict[str, str]:
    """Standard variables worth a line at start-up (never a secret)."""
    keys = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "HTTPS_PROXY", "NO_PROXY")
    return {k: os.environ[k] for k in keys if k in os.environ}
