"""A real Docker registry for tests: Debian's ``docker-registry`` (the reference
distribution) on a loopback port chosen at run time, its config in a temp dir, filled
through its HTTP API (the v2 blob upload flow and a manifest PUT).

``token_auth=True`` puts it behind the token-auth flow Docker Hub uses: a small token
service in this process checks a user name and password (HTTP Basic) and issues a JWT
signed by a key whose self-signed certificate the registry trusts (``rootcertbundle``)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import shutil
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

BINARY = "docker-registry"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
SERVICE = "test-registry"
ISSUER = "test-token-issuer"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class TokenService:
    """Issues registry tokens to ``username``/``password``; anonymous callers get pull on
    ``public/*`` and nothing else (an empty access list), as Docker Hub does."""

    username: str
    password: str
    workdir: Path
    key: rsa.RSAPrivateKey = field(init=False)
    cert_der: bytes = field(init=False)
    issued: int = 0

    def __post_init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=1))
                .sign(self.key, hashes.SHA256()))
        self.cert_der = cert.public_bytes(serialization.Encoding.DER)
        self.bundle = self.workdir / "token-ca.pem"
        self.bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def token(self, user: str | None, scope: str) -> str:
        actions: list[dict[str, Any]] = []
        parts = scope.split(":")
        if len(parts) == 3 and (user is not None or parts[1].startswith("public/")):
            # As Docker Hub: anyone may pull a public repository, only users push.
            allowed = parts[2].split(",") if user is not None else ["pull"]
            actions = [{"type": parts[0], "name": parts[1], "actions": allowed}]
        now = int(time.time())
        self.issued += 1
        claims = {"iss": ISSUER, "sub": user or "", "aud": SERVICE, "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex, "access": actions}
        return jwt.encode(claims, self.key, algorithm="RS256",
                          headers={"x5c": [base64.b64encode(self.cert_der).decode()]})

    def check(self, header: str | None) -> str | bool | None:
        """The user, None for anonymous, False for wrong credentials."""
        if not header:
            return None
        try:
            user, _, password = base64.b64decode(header.split(" ", 1)[1]).decode().partition(":")
        except (ValueError, IndexError):
            return False
        return user if (user, password) == (self.username, self.password) else False

    def serve(self) -> tuple[ThreadingHTTPServer, str]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                user = service.check(self.headers.get("Authorization"))
                if user is False:
                    self.send_response(401)
                    self.end_headers()
                    return
                query = parse_qs(urlsplit(self.path).query)
                body = json.dumps({"token": service.token(
                    user if isinstance(user, str) else None,
                    (query.get("scope") or [""])[0])}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server, f"http://127.0.0.1:{server.server_address[1]}/token"


class Registry:
    def __init__(self, workdir: Path, *, token_auth: bool = False,
                 username: str = "deployer", password: str = "s3cret-pw") -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tokens = TokenService(username, password, workdir) if token_auth else None
        self._token_server: ThreadingHTTPServer | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def _config(self, realm: str | None) -> str:
        auth = ""
        if self.tokens is not None:
            auth = (f"auth:\n  token:\n    realm: {realm}\n    service: {SERVICE}\n"
                    f"    issuer: {ISSUER}\n    rootcertbundle: {self.tokens.bundle}\n")
        return (f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
                f"    rootdirectory: {self.workdir / 'data'}\n  delete:\n    enabled: true\n"
                f"http:\n  addr: 127.0.0.1:{self.port}\n{auth}")

    def start(self, timeout: float = 20.0) -> Registry:
        realm = None
        if self.tokens is not None:
            self._token_server, realm = self.tokens.serve()
        config = self.workdir / "registry.yml"
        config.write_text(self._config(realm))
        self.log = (self.workdir / "registry.log").open("wb")
        self._proc = subprocess.Popen([BINARY, "serve", str(config)], stdout=self.log,
                                      stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited {self._proc.returncode}: "
                                   f"{(self.workdir / 'registry.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/v2/", timeout=1.0).status_code in (200, 401):
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # polling a process we started for readiness, with a deadline
        raise RuntimeError(f"docker-registry did not answer on {self.url} within {timeout}s")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
            self.log.close()
        if self._token_server is not None:
            self._token_server.shutdown()

    def _headers(self, repository: str) -> dict[str, str]:
        if self.tokens is None:
            return {}
        return {"Authorization": "Bearer " + self.tokens.token(
            self.tokens.username, f"repository:{repository}:pull,push")}

    def _blob(self, http: httpx.Client, repository: str, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        start = http.post(f"/v2/{repository}/blobs/uploads/")
        assert start.status_code == 202, start.text
        location = start.headers["location"]
        done = http.put(f"{location}{'&' if '?' in location else '?'}digest={digest}",
                        content=data, headers={"Content-Type": "application/octet-stream"})
        assert done.status_code == 201, done.text
        return digest

    def push(self, repository: str, tag: str) -> str:
        """Push a tiny image (one layer, distinct per tag); returns its manifest digest."""
        with httpx.Client(base_url=self.url, headers=self._headers(repository),
                          timeout=10.0) as http:
            layer = f"layer of {repository}:{tag}".encode()
            config = json.dumps({"architecture": "amd64", "os": "linux",
                                 "config": {"Labels": {"tag": tag}},
                                 "rootfs": {"type": "layers", "diff_ids": [
                                     "sha256:" + hashlib.sha256(layer).hexdigest()]}}).encode()
            manifest = json.dumps({
                "schemaVersion": 2, "mediaType": MANIFEST_V2,
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                           "size": len(config), "digest": self._blob(http, repository, config)},
                "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                            "size": len(layer), "digest": self._blob(http, repository, layer)}],
            }).encode()
            r = http.put(f"/v2/{repository}/manifests/{tag}", content=manifest,
                         headers={"Content-Type": MANIFEST_V2})
            assert r.status_code == 201, r.text
            return str(r.headers["docker-content-digest"])


def available() -> bool:
    return shutil.which(BINARY) is not None


def require() -> None:
    """Skip on a machine without the registry; fail where CI could have installed it
    (root with apt-get: .ci/run installs it), so the tests never silently stop running."""
    import os

    import pytest

    if available():
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        pytest.fail("docker-registry is not installed; .ci/run installs it "
                    "(apt-get install docker-registry skopeo)")
    pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
