"""The embedded AWS: a moto server in this process plus the ECS simulator."""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

from sandbox import simulator
from sandbox.runtime import CLOCK, LOCK

DEFAULT_REGION = "us-east-1"
ACCESS_KEY = "testing"
SECRET_KEY = "testing"


@dataclass(frozen=True)
class Network:
    subnets: list[str]
    security_group: str
    cluster_arn: str | None


_CLIENTS_LOCK = threading.Lock()
_clients: dict[tuple[str, str, str, str], Any] = {}
_session: boto3.session.Session | None = None


def client(service: str, endpoint_url: str, region: str, **config: Any) -> Any:
    """A boto3 client on the sandbox. ``retries`` defaults to one attempt: a moto bug is an
    HTTP 500 that botocore would otherwise retry for seconds.

    Clients are cached: building a botocore session and client costs 0.1-0.4 s, and clients
    are thread-safe (sessions are not, hence the lock)."""
    global _session
    config.setdefault("retries", {"max_attempts": 1})
    key = (service, endpoint_url, region, json.dumps(config, sort_keys=True))
    with _CLIENTS_LOCK:
        made = _clients.get(key)
        if made is None:
            if _session is None:
                _session = boto3.session.Session()
            made = _clients[key] = _session.client(
                service,
                endpoint_url=endpoint_url,
                region_name=region,
                aws_access_key_id=ACCESS_KEY,
                aws_secret_access_key=SECRET_KEY,
                config=Config(**config),
            )
        return made


def seed_network(endpoint_url: str, region: str, cluster_name: str | None = None) -> Network:
    """The default VPC's subnets and default security group (moto creates them on the first
    EC2 call in a Region), and a cluster when ``cluster_name`` is given."""
    ec2 = client("ec2", endpoint_url, region)
    subnets = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])
    subnet_ids = sorted(s["SubnetId"] for s in subnets["Subnets"])
    vpc_id = subnets["Subnets"][0]["VpcId"]
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name",
                                                          "Values": ["default"]}]
    )
    cluster_arn = None
    if cluster_name:
        ecs = client("ecs", endpoint_url, region)
        cluster_arn = ecs.create_cluster(clusterName=cluster_name)["cluster"]["clusterArn"]
    return Network(subnet_ids, groups["SecurityGroups"][0]["GroupId"], cluster_arn)


class Sandbox:
    """``with Sandbox(tick=0.05) as sb: ... sb.endpoint_url ...``

    Every Sandbox in a process shares moto's state and one simulator (the first one's
    ``tick`` wins); ``reset()`` therefore wipes them all.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        region: str = DEFAULT_REGION,
        tick: float = 0.2,
        throttle: bool = False,
        inactive_grace: float = 0.0,
    ) -> None:
        """``inactive_grace``: simulated seconds a deregistered task definition revision
        still works for CreateService/UpdateService/RunTask (ECS: up to ~10 minutes)."""
        if inactive_grace < 0:
            raise ValueError(f"inactive_grace must be 0 or more seconds, got {inactive_grace!r}")
        self.host = host
        self.port = port
        self.region = region
        self.tick = tick
        self.throttle = throttle
        self.inactive_grace = inactive_grace
        self._server: ThreadedMotoServer | None = None
        self._simulator: simulator.Simulator | None = None

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not started: call start() or use `with`")
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    def start(self) -> Sandbox:
        # werkzeug logs every request to stderr even when moto is told to be quiet.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._simulator = simulator.acquire(self.tick)
        CLOCK.throttle = self.throttle
        CLOCK.inactive_grace_seconds = self.inactive_grace
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._simulator is not None:
            self._simulator = None
            simulator.release()

    def reset(self) -> None:
        """Forget every resource (all of moto's state in this process)."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()

    def set_throttle(self, enabled: bool) -> None:
        with LOCK:
            CLOCK.throttle = enabled
            self.throttle = enabled

    def set_inactive_grace(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"inactive_grace must be 0 or more seconds, got {seconds!r}")
        with LOCK:
            CLOCK.inactive_grace_seconds = seconds
            self.inactive_grace = seconds

    def client(self, service: str, **config: Any) -> Any:
        return client(service, self.endpoint_url, self.region, **config)

    def seed_network(self, cluster_name: str | None = None) -> Network:
        return seed_network(self.endpoint_url, self.region, cluster_name)

    def environment(self) -> dict[str, str]:
        """The variables that point AWS SDKs and the AWS CLI at this sandbox."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        }

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
