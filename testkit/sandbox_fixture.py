"""pytest plugin: the embedded AWS sandbox.

- ``sandbox`` (session): one moto server + ECS simulator for the whole run, fast tick.
- ``aws`` (function): resets the sandbox, then gives the test a fresh cluster in the
  default VPC and a way to make boto3 clients pointed at it.
- ``eventually(check, timeout)``: poll until ``check()`` returns something truthy.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from sandbox import Sandbox

TICK = 0.05
T = TypeVar("T")


@dataclass(frozen=True)
class Aws:
    endpoint_url: str
    region: str
    subnets: list[str]
    security_group: str
    cluster: str
    cluster_arn: str
    _sandbox: Sandbox

    def client(self, service: str, **config: Any) -> Any:
        """A sync boto3 client; one attempt per call so a moto 500 fails fast."""
        return self._sandbox.client(service, **config)

    @property
    def network_configuration(self) -> dict[str, Any]:
        return {
            "awsvpcConfiguration": {
                "subnets": list(self.subnets),
                "securityGroups": [self.security_group],
                "assignPublicIp": "DISABLED",
            }
        }

    def environment(self) -> dict[str, str]:
        """Variables for code that builds its own clients; apply with ``monkeypatch.setenv``."""
        return self._sandbox.environment()


def eventually(check: Callable[[], T | None], timeout: float = 15.0,
               interval: float = TICK) -> T:
    """Poll ``check`` until it returns a truthy value, and return that value."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(tick=TICK) as started:
        yield started


@pytest.fixture
def aws(sandbox: Sandbox) -> Aws:
    sandbox.reset()
    cluster = f"test-{uuid.uuid4().hex[:8]}"
    network = sandbox.seed_network(cluster)
    assert network.cluster_arn is not None
    return Aws(
        endpoint_url=sandbox.endpoint_url,
        region=sandbox.region,
        subnets=network.subnets,
        security_group=network.security_group,
        cluster=cluster,
        cluster_arn=network.cluster_arn,
        _sandbox=sandbox,
    )
