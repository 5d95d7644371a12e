"""The manager's file store, as a task handler sees it (``ctx.files``).

Each request carries a fresh delegate credential (audience ``files``) signed with the
token-derived key, so the token itself never travels and a captured header cannot be
replayed.
"""

from __future__ import annotations

import ssl

import httpx

from agent.config import Settings
from agent.errors import FileStoreError
from wire import auth


class ManagerFileStore:
    def __init__(self, settings: Settings, *, timeout: float = 30.0) -> None:
        self._settings = settings
        self._token = settings.token()
        verify: ssl.SSLContext | bool = True
        if settings.manager_ca_bundle:
            verify = ssl.create_default_context(cafile=str(settings.manager_ca_bundle))
        # trust_env=True: HTTPS_PROXY / NO_PROXY apply, as users expect.
        self._client = httpx.AsyncClient(base_url=settings.http_base, timeout=timeout,
                                         verify=verify, trust_env=True)

    def _headers(self, audience: str = "files") -> dict[str, str]:
        credential = auth.sign(self._token, account_id=self._settings.account_id,
                               delegate_name=self._settings.delegate_name, audience=audience)
        return {"Authorization": f"Bearer {credential}"}

    async def call(self, method: str, path: str, *, audience: str,
                   params: dict[str, str] | None = None,
                   content: bytes | None = None) -> httpx.Response:
        """Another delegate endpoint of the manager (a task package's own, such as the
        Terraform state), with a fresh credential for ``audience``. Transport errors
        propagate (``httpx.HTTPError``): the caller says what it was doing."""
        return await self._client.request(method, path, params=params, content=content,
                                          headers=self._headers(audience))

    async def get(self, path: str) -> bytes:
        try:
            resp = await self._client.get("/api/delegate/files", params={"path": path},
                                          headers=self._headers())
        except httpx.HTTPError as exc:
            raise FileStoreError(f"cannot reach the manager's file store for {path!r}: "
                                 f"{exc}") from exc
        if resp.status_code == 404:
            raise FileStoreError(f"file {path!r} is not in the manager's file store; "
                                 "upload it with 'delegate files put'")
        if resp.status_code >= 400:
            detail = resp.text[:300]
            raise FileStoreError(f"file store refused {path!r} (HTTP {resp.status_code}): "
                                 f"{detail}")
        return resp.content

    async def aclose(self) -> None:
        await self._client.aclose()
