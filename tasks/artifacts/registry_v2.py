"""A Docker Registry HTTP API v2 client: the tags of a repository and the digest of a
tag, anonymously or with a user name and password, through the token-auth flow Docker
Hub and most registries use.

A request answered 401 says how to authenticate in ``WWW-Authenticate``: ``Basic`` (send
the user and password), or ``Bearer realm=...,service=...,scope=...`` (ask the realm for a
token, with the user and password when given, then repeat the request with it). The
token and the password never reach a log line or an error."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx

from tasks.artifacts.choose import Tag

TIMEOUT = 30.0
PAGE = 1000
# The manifest kinds a registry may hold for a tag; the digest is of the one it serves.
MANIFEST_TYPES = ", ".join((
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json"))
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


class RegistryError(Exception):
    pass


@dataclass(frozen=True)
class Login:
    username: str
    password: str


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.partition(" ")
    return scheme.lower(), dict(_CHALLENGE.findall(rest))


class RegistryClient:
    def __init__(self, base: str, repository: str, login: Login | None = None, *,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base = base.rstrip("/")
        self.repository = repository
        self.login = login
        self.http = httpx.AsyncClient(timeout=TIMEOUT, transport=transport,
                                      follow_redirects=True)
        self._auth: str | None = None

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def _token(self, params: dict[str, str]) -> str:
        realm = params.get("realm")
        if not realm:
            raise RegistryError(f"{self.base} asked for a Bearer token without a realm")
        query = {k: v for k, v in params.items() if k in ("service", "scope")}
        query.setdefault("scope", f"repository:{self.repository}:pull")
        auth = (self.login.username, self.login.password) if self.login else None
        try:
            r = await self.http.get(realm, params=query, auth=auth)
        except httpx.TransportError as exc:
            raise RegistryError(f"the token service {realm} is unreachable: "
                                f"{exc or type(exc).__name__}") from None
        if r.status_code >= 400:
            who = f"user {self.login.username}" if self.login else "anonymous access"
            raise RegistryError(f"{self.base}: the token service refused {who} "
                                f"({r.status_code}); check username and passwordSecret")
        body = r.json()
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryError(f"{self.base}: the token service answered no token")
        return str(token)

    async def _authorise(self, r: httpx.Response) -> None:
        scheme, params = parse_challenge(r.headers.get("www-authenticate", ""))
        if scheme == "bearer":
            self._auth = f"Bearer {await self._token(params)}"
        elif scheme == "basic" and self.login is not None:
            pair = f"{self.login.username}:{self.login.password}".encode()
            self._auth = f"Basic {base64.b64encode(pair).decode()}"
        else:
            raise RegistryError(f"{self.base}: the registry wants credentials "
                                f"({r.status_code}); give username and passwordSecret")

    async def _send(self, method: str, url: str, headers: dict[str, str]) -> httpx.Response:
        if self._auth:
            headers = {**headers, "Authorization": self._auth}
        try:
            return await self.http.request(method, url, headers=headers)
        except httpx.TransportError as exc:
            raise RegistryError(f"{self.base} is unreachable: "
                                f"{exc or type(exc).__name__}") from None

    async def _request(self, method: str, path: str,
                       headers: dict[str, str] | None = None) -> httpx.Response:
        """One request; a 401 is answered once by authenticating as it asks."""
        url = urljoin(self.base + "/", path.lstrip("/"))
        r = await self._send(method, url, headers or {})
        if r.status_code == 401:
            await self._authorise(r)
            r = await self._send(method, url, headers or {})
            if r.status_code == 401:
                who = f"user {self.login.username}" if self.login else "anonymous access"
                raise RegistryError(f"{self.base}: the registry refused {who} for "
                                    f"{self.repository}; check username and passwordSecret")
        return r

    async def tags(self) -> list[str]:
        found: list[str] = []
        path: str | None = f"/v2/{self.repository}/tags/list?n={PAGE}"
        while path:
            r = await self._request("GET", path)
            if r.status_code == 404:
                raise RegistryError(f"{self.base}: repository {self.repository!r} does "
                                    "not exist")
            self._check(r, "list the tags")
            found += [str(t) for t in r.json().get("tags") or []]
            link = r.headers.get("link", "")
            m = re.match(r"<([^>]+)>", link)
            path = m.group(1) if m else None
        return found

    async def digest(self, tag: str) -> str:
        r = await self._request("HEAD", f"/v2/{self.repository}/manifests/{tag}",
                                headers={"Accept": MANIFEST_TYPES})
        self._check(r, f"read the manifest of tag {tag}")
        found = r.headers.get("docker-content-digest")
        if not found:
            raise RegistryError(f"{self.base}: no Docker-Content-Digest for "
                                f"{self.repository}:{tag}")
        return str(found)

    def _check(self, r: httpx.Response, what: str) -> None:
        if r.status_code >= 400:
            raise RegistryError(f"{self.base}: could not {what} of {self.repository} "
                                f"({r.status_code} {r.reason_phrase})")

    async def tag_list(self) -> list[Tag]:
        return [Tag(name=t) for t in await self.tags()]
