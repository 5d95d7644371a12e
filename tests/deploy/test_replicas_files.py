"""deploy/replicas/: the compose file is valid for docker-compose and refuses to start
without its secrets, haproxy.cfg is accepted by the real haproxy, and the two agree
with each other and with testkit/loadbalancer.py (what the tests run)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from testkit.loadbalancer import Backend, haproxy_binary, render_config
from tests.deploy.test_deploy_files import _compose_cmd

ROOT = Path(__file__).resolve().parents[2]
REPLICAS = ROOT / "deploy" / "replicas"
COMPOSE = REPLICAS / "docker-compose.yml"
HAPROXY_CFG = REPLICAS / "haproxy.cfg"
SECRETS = ("POSTGRES_PASSWORD", "MANAGER_SECRET_KEY", "MANAGER_ADMIN_TOKEN")


def _compose_config(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    # An empty env file and the secrets scrubbed from the environment: a developer's
    # deploy/replicas/.env must not make the check pass or fail.
    empty = tmp_path / "empty.env"
    empty.write_text("")
    environ = {k: v for k, v in os.environ.items() if k not in SECRETS}
    environ.update(env)
    return subprocess.run([*_compose_cmd(), "--env-file", str(empty), "-f", str(COMPOSE),
                           "config"], capture_output=True, text=True, timeout=60,
                          check=False, cwd=REPLICAS, env=environ)


def _resolved(tmp_path: Path) -> dict[str, Any]:
    done = _compose_config(tmp_path, POSTGRES_PASSWORD="pw-check",
                           MANAGER_SECRET_KEY="key-check", MANAGER_ADMIN_TOKEN="token-check")
    assert done.returncode == 0, done.stdout + done.stderr
    loaded: dict[str, Any] = yaml.safe_load(done.stdout)
    return loaded


def _managers(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in config["services"].items()
            if name.startswith("manager-")}


def test_compose_file_is_valid_with_postgres_two_replicas_and_haproxy(tmp_path: Path) -> None:
    config = _resolved(tmp_path)
    services = config["services"]
    assert services["postgres"]["image"] == "postgres:15"
    # a named volume (compose v1 writes it as a string, v2 as a mapping)
    assert any(v.startswith("pgdata:/var/lib/postgresql/data") if isinstance(v, str)
               else (v["source"], v["target"]) == ("pgdata", "/var/lib/postgresql/data")
               for v in services["postgres"]["volumes"])
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert services["haproxy"]["image"] == "haproxy:2.6"
    assert len(_managers(config)) == 2


@pytest.mark.parametrize("missing", SECRETS)
def test_compose_file_refuses_to_start_without_each_secret(tmp_path: Path,
                                                           missing: str) -> None:
    given = {name: "x" for name in SECRETS if name != missing}
    done = _compose_config(tmp_path, **given)
    assert done.returncode != 0
    assert f"set {missing} in deploy/replicas/.env" in done.stderr, done.stderr


def test_every_replica_gets_the_same_database_and_keys_and_no_secret_is_committed(
        tmp_path: Path) -> None:
    managers = _managers(_resolved(tmp_path))
    environments = [svc["environment"] for svc in managers.values()]
    assert all(env == environments[0] for env in environments)
    assert environments[0] == {
        "MANAGER_DB": "postgresql://manager:pw-check@postgres:5432/manager",
        "MANAGER_SECRET_KEY": "key-check", "MANAGER_ADMIN_TOKEN": "token-check"}
    for svc in managers.values():
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert "ports" not in svc  # only HAProxy is published
    # Before substitution, each secret is only ever a ${NAME:?...} reference.
    raw = yaml.safe_load(COMPOSE.read_text())
    for name, svc in raw["services"].items():
        for key, value in (svc.get("environment") or {}).items():
            if key in SECRETS:
                assert value.startswith(f"${{{key}:?"), (name, key)
            if key == "MANAGER_DB":
                assert ":${POSTGRES_PASSWORD:?" in value, (name, key)

def test_haproxy_cfg_is_accepted_by_haproxy() -> None:
    done = subprocess.run([haproxy_binary(), "-c", "-f", str(HAPROXY_CFG)],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    # The replicas' names resolve only inside the compose network; nothing else is wrong.
    warnings = [ln for ln in (done.stdout + done.stderr).splitlines() if "[WARNING]" in ln]
    assert all("could not resolve address" in ln for ln in warnings), warnings


def test_haproxy_sends_to_every_replica_of_the_compose_file(tmp_path: Path) -> None:
    servers = re.findall(r"^\s*server (\S+) (\S+):8080\s*$", HAPROXY_CFG.read_text(),
                         re.MULTILINE)
    assert sorted(servers) == sorted((name, name) for name in _managers(_resolved(tmp_path)))


def test_haproxy_cfg_has_the_settings_the_tests_run_with() -> None:
    """What testkit/loadbalancer.py proves in tests/testkit must hold in production too:
    the health check, retry and tunnel lines of one are in the other."""
    tested = render_config([Backend("m1", "127.0.0.1", 1)], port=2,
                           admin_socket=Path("/nonexistent"))
    shipped = HAPROXY_CFG.read_text()
    for directive in ("mode http", "option http-server-close", "option redispatch 1",
                      "retries 3", "timeout tunnel 1h", "balance roundrobin",
                      "http-check send meth GET uri /healthz", "http-check expect status 200",
                      "http-response set-header X-Replica %s"):
        assert directive in tested and directive in shipped, directive
    assert "check inter 250ms fall 2 rise 1" in tested
    assert re.search(r"default-server check inter 250ms fall 2 rise 1\b", shipped)
