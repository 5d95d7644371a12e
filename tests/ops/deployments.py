"""ecs.rolling_deploy tasks against the sandbox, as a user would submit them."""

from __future__ import annotations

from typing import Any

from testkit.sandbox_fixture import Aws

FAST_IMAGE = "public.ecr.aws/nginx/nginx:1.27"
# The sandbox keeps these tasks PENDING for 15 ticks: the deployment reaches steady state
# no sooner than ~0.75 s after the service is created at the tests' 0.05 s tick.
SLOW_IMAGE = "example.com/slow-start:1"


def rolling_deploy(aws: Aws, *, image: str = FAST_IMAGE, name: str = "web",
                   selectors: tuple[str, ...] = ("ops",), desired: int = 1,
                   timeout: str = "60s") -> dict[str, Any]:
    service = {
        "launchType": "FARGATE", "serviceName": name, "desiredCount": desired,
        "networkConfiguration": aws.network_configuration,
        "deploymentConfiguration": {"maximumPercent": 200, "minimumHealthyPercent": 100},
    }
    task_definition = {
        "family": f"{name}-td", "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc", "cpu": "256", "memory": "512",
        "containerDefinitions": [{"name": "web", "image": image, "essential": True,
                                  "portMappings": [{"containerPort": 80}]}],
    }
    return {
        "type": "ecs.rolling_deploy",
        "selectors": list(selectors),
        "timeout": timeout,
        "params": {
            "region": aws.region, "cluster": aws.cluster, "credentials": {"type": "inherit"},
            "pollInterval": "0.05s", "steadyStateTimeout": "45s",
            "manifests": {
                "taskDefinition": {"store": "inline", "content": task_definition},
                "serviceDefinition": {"store": "inline", "content": service},
            },
        },
    }
