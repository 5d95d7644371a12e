"""The look-up kinds, named once for the manager's API, the delegate's task types and the
CLI's tables: what each asks for, which task type answers it, and the columns it shows.

A look-up is a short read-only task (``lookup.<kind>``) whose output is
``{"kind", "region", "items": [...], "truncated"}``; ``items`` are flat JSON objects
whose keys include the kind's ``columns``."""

from __future__ import annotations

import re
from dataclasses import dataclass

LOOKUP_TIMEOUT = 10.0  # seconds: a look-up is read-only and answers in well under this
MAX_LOOKUP_TIMEOUT = 60.0
MAX_ITEMS = 1000  # more than this is cut (and said): the answer must fit one frame
INSTANCE_SYNC_TYPE = "instances.sync"
# An instances.sync answer lists each task as one row of these, under a group of the tasks
# that share a task ARN prefix, task definition and containers (image and digest): a
# cluster of 4,000 tasks must fit one result message, which a JSON object per task with
# its ARNs and containers does not (about 1.8 MB).
SERVICES_ENCODING = "zlib+base64"  # how the answer's ``services`` JSON is packed
SYNC_TASK_FIELDS = ("id", "deploymentId", "lastStatus", "health", "launchType",
                    "availabilityZone", "startedAt")


@dataclass(frozen=True)
class LookupKind:
    kind: str  # the URL segment and CLI argument
    summary: str
    required: tuple[str, ...] = ()  # params besides region, in lowerCamel
    optional: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()

    @property
    def task_type(self) -> str:
        return "lookup." + self.kind.replace("-", "_")


def cli_flag(param: str) -> str:
    """The ``delegate lookup`` option of a parameter: loadBalancer -> --load-balancer."""
    return "--" + re.sub(r"(?<!^)(?=[A-Z])", "-", param).lower()


KINDS: dict[str, LookupKind] = {k.kind: k for k in (
    LookupKind("clusters", "ECS clusters with their status and counts",
               columns=("name", "status", "activeServices", "runningTasks", "pendingTasks")),
    LookupKind("services", "ECS services of a cluster", required=("cluster",),
               columns=("name", "status", "desired", "running", "taskDefinition",
                        "launchType")),
    LookupKind("load-balancers", "application and network load balancers",
               columns=("name", "type", "scheme", "state", "dnsName", "arn")),
    LookupKind("listeners", "listeners of a load balancer (name or ARN)",
               required=("loadBalancer",),
               columns=("port", "protocol", "defaultTargetGroups", "arn")),
    LookupKind("listener-rules", "rules of a listener", required=("listener",),
               columns=("priority", "isDefault", "conditions", "targetGroups", "arn")),
    LookupKind("target-groups", "target groups with the health of their targets",
               optional=("loadBalancer",),
               columns=("name", "protocol", "port", "targetType", "healthy", "unhealthy",
                        "targets", "arn")),
    LookupKind("repositories", "ECR repositories",
               columns=("name", "uri", "createdAt")),
    LookupKind("images", "images of an ECR repository", required=("repository",),
               columns=("tags", "digest", "pushedAt", "sizeBytes")),
    LookupKind("subnets", "VPC subnets for the network configuration", optional=("vpc",),
               columns=("subnetId", "name", "vpcId", "availabilityZone", "cidr",
                        "availableIps")),
    LookupKind("security-groups", "VPC security groups for the network configuration",
               optional=("vpc",), columns=("groupId", "name", "vpcId", "description")),
)}
