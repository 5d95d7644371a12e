"""TLS end to end: the manager serves https/wss with a certificate from a CA the test
makes; the delegate trusts it through MANAGER_CA_BUNDLE, and without it stops with a
clear reason."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agent.errors import ManagerNotTrusted
from testkit.stack import ADMIN_TOKEN, DelegateRunner, ManagerApi, running_manager


def make_ca_and_cert(directory: Path) -> tuple[Path, Path, Path]:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_path, cert_path, key_path = (directory / "ca.pem", directory / "cert.pem",
                                    directory / "key.pem")
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return ca_path, cert_path, key_path


async def test_delegate_over_tls_with_a_ca_bundle(tmp_path: Path) -> None:
    ca, cert, key = make_ca_and_cert(tmp_path)
    async with running_manager(tmp_path, extra_args=("--tls-cert", str(cert),
                                                     "--tls-key", str(key))) as manager:
        assert manager.url.startswith("https://")
        async with httpx.AsyncClient(base_url=manager.url, timeout=30,
                                     verify=ssl.create_default_context(cafile=str(ca)),
                                     headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as c:
            api = ManagerApi(c)
            token = await api.create_token("acme")
            async with DelegateRunner(manager.url, token, tags=("tls",),
                                      manager_ca_bundle=str(ca)) as d:
                await d.registered()
                assert d.delegate.settings.ws_url.startswith("wss://")
                task_id = await api.submit({"type": "test.echo", "selectors": ["tls"]})
                assert (await api.wait_finished(task_id))["status"] == "SUCCESS"
            # Without the CA the delegate does not trust the manager, and says so at once
            # instead of retrying a handshake that cannot succeed.
            untrusting = DelegateRunner(manager.url, token, name="no-ca")
            with pytest.raises(ManagerNotTrusted, match="set MANAGER_CA_BUNDLE"):
                await asyncio.wait_for(untrusting.delegate.run(), timeout=20)
            assert untrusting.delegate.session.reconnects == 0
            assert not untrusting.delegate.session.registered.is_set()


def test_ca_bundle_must_exist(tmp_path: Path) -> None:
    from agent.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="MANAGER_CA_BUNDLE"):
        load_settings(account_id="a", delegate_token="edt.abc.0123456789abcdefghij",
                      manager_url="https://m.example.com",
                      manager_ca_bundle=str(tmp_path / "missing.pem"))


async def test_delegate_run_stops_with_one_line_when_it_does_not_trust_the_manager(
        tmp_path: Path) -> None:
    """The real process: exit 5 and what to set, instead of retrying a handshake forever."""
    import subprocess
    import sys

    from tests.ops.proc import delegate_env

    ca, cert, key = make_ca_and_cert(tmp_path)
    async with running_manager(tmp_path, extra_args=("--tls-cert", str(cert),
                                                     "--tls-key", str(key))) as manager:
        async with httpx.AsyncClient(base_url=manager.url, timeout=30,
                                     verify=ssl.create_default_context(cafile=str(ca)),
                                     headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as c:
            token = await ManagerApi(c).create_token("acme")
        env = delegate_env(manager.url, token)
        proc = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "cli", "run"], env=env, text=True,
            capture_output=True, timeout=60, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 5, out
    assert "Traceback" not in out and "reconnecting" not in out, out
    [line] = [ln for ln in out.splitlines() if "TLS certificate is not trusted" in ln]
    assert "set MANAGER_CA_BUNDLE" in line
    assert '"level": "error"' in line
    assert token not in out
