"""The few Terraform Cloud / Enterprise API v2 calls a run needs (JSON:API documents over
HTTPS, a bearer token). Rate-limited and server-side failures are retried with jittered
backoff; anything else becomes a :class:`TerraformCloudError` that says what was asked,
what came back and what to do."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

JSON_API = "application/vnd.api+json"


class TerraformCloudError(Exception):
    """A call that failed for a reason the user can act on; ``str`` is shown as is."""


class _Retryable(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"{response.status_code}")
        self.response = response


def _detail(response: httpx.Response) -> str:
    """The API's own explanation (JSON:API ``errors``), or the start of the body."""
    try:
        errors = response.json().get("errors") or []
    except ValueError:
        return response.text[:200].strip()
    parts = []
    for err in errors:
        if isinstance(err, dict):
            parts.append(" — ".join(str(err[k]) for k in ("title", "detail") if err.get(k)))
        else:
            parts.append(str(err))
    return "; ".join(p for p in parts if p)


class TerraformCloudApi:
    """One client per run: ``async with TerraformCloudApi(address, token) as api:``."""

    def __init__(self, address: str, token: str, *, attempts: int = 5) -> None:
        self.address = address
        self._attempts = attempts
        self._http = httpx.AsyncClient(
            base_url=f"{address}/api/v2",
            headers={"Authorization": f"Bearer {token}", "Content-Type": JSON_API,
                     "Accept": JSON_API, "User-Agent": "ecs-delegate"},
            timeout=httpx.Timeout(30.0, connect=10.0), follow_redirects=True)
        # Logs are read from URLs the API hands out, which are their own short-lived
        # credential: the token is not sent there.
        self._plain = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0),
                                        follow_redirects=True)

    async def __aenter__(self) -> TerraformCloudApi:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self._http.aclose()
        await self._plain.aclose()

    async def call(self, method: str, path: str, *, body: dict[str, Any] | None = None,
                   what: str) -> dict[str, Any]:
        """``method path`` and its JSON document (``{}`` for an empty answer). ``what``
        names the call in errors ("reading workspace app-prod")."""
        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda e: isinstance(e, _Retryable | httpx.TransportError)),
            wait=wait_random_exponential(multiplier=0.5, max=10),
            stop=stop_after_attempt(self._attempts), reraise=True)
        try:
            async for attempt in retrying:
                with attempt:
                    response = await self._http.request(method, path, json=body)
                    if response.status_code == 429 or response.status_code >= 500:
                        raise _Retryable(response)
        except _Retryable as exc:
            raise TerraformCloudError(
                f"{what}: {self.address} answered {exc.response.status_code} "
                f"{self._attempts} times ({_detail(exc.response)}); try again later") from None
        except httpx.TransportError as exc:
            raise TerraformCloudError(
                f"{what}: cannot reach {self.address} ({type(exc).__name__}: {exc}); "
                "check the address and that the delegate can reach it") from None
        return self._checked(response, what)

    def _checked(self, response: httpx.Response, what: str) -> dict[str, Any]:
        code = response.status_code
        if code == 401:
            raise TerraformCloudError(f"{what}: the API token was refused (401); give a "
                                      "valid user or team token in apiToken")
        if code == 404:
            raise TerraformCloudError(f"{what}: not found (404) — the name is wrong, or "
                                      "the token may not see it")
        if code >= 400:
            raise TerraformCloudError(f"{what}: {code} {_detail(response)}")
        if not response.content:
            return {}
        try:
            doc = response.json()
        except ValueError:
            raise TerraformCloudError(f"{what}: the answer is not JSON") from None
        return doc if isinstance(doc, dict) else {}

    async def text(self, url: str, *, what: str) -> str:
        """A log, read from the URL the API handed out (it needs no token: the URL is
        itself a short-lived credential, so it is never logged)."""
        try:
            response = await self._plain.get(url)
        except httpx.TransportError as exc:
            raise TerraformCloudError(f"{what}: cannot read the log ({type(exc).__name__})"
                                      ) from None
        if response.status_code >= 400:
            raise TerraformCloudError(f"{what}: the log answered {response.status_code}")
        return response.text
