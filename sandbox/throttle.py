"""ECS API request throttling: one token bucket per account, Region and category."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

# category -> (burst, sustained per second)
BUCKETS: dict[str, tuple[float, float]] = {
    "service-read": (100, 20),
    "service-modify": (50, 5),
    "cluster-resource-read": (100, 20),
    "cluster-resource-modify": (100, 40),
    "task-definition-modify": (20, 1),
    "task-definition-read": (50, 20),
    "cluster-read": (50, 20),
    "service-deployment": (50, 20),
}

CATEGORIES: dict[str, str] = {
    "DescribeServices": "service-read",
    "ListServices": "service-read",
    "CreateService": "service-modify",
    "UpdateService": "service-modify",
    "DeleteService": "service-modify",
    "DescribeTasks": "cluster-resource-read",
    "ListTasks": "cluster-resource-read",
    "DescribeContainerInstances": "cluster-resource-read",
    "ListContainerInstances": "cluster-resource-read",
    "RunTask": "cluster-resource-modify",
    "StartTask": "cluster-resource-modify",
    "StopTask": "cluster-resource-modify",
    "RegisterTaskDefinition": "task-definition-modify",
    "DeregisterTaskDefinition": "task-definition-modify",
    "DescribeTaskDefinition": "task-definition-read",
    "ListTaskDefinitions": "task-definition-read",
    "ListTaskDefinitionFamilies": "task-definition-read",
    "DescribeClusters": "cluster-read",
    "ListClusters": "cluster-read",
    "DescribeServiceDeployments": "service-deployment",
    "ListServiceDeployments": "service-deployment",
}


@dataclass
class Bucket:
    burst: float
    rate: float
    tokens: float
    stamp: float = field(default_factory=time.monotonic)

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Throttle:
    def __init__(self) -> None:
        self._buckets: dict[tuple[str, str, str], Bucket] = {}

    def allow(self, account: str, region: str, action: str) -> bool:
        category = CATEGORIES.get(action)
        if category is None:
            return True
        key = (account, region, category)
        bucket = self._buckets.get(key)
        if bucket is None:
            burst, rate = BUCKETS[category]
            bucket = self._buckets[key] = Bucket(burst, rate, burst)
        return bucket.take()

    def reset(self) -> None:
        self._buckets.clear()
