"""Look-ups of ECS: the clusters (DescribeClusters 100 at a time, its own limit) and
the services of a cluster (DescribeServices 10 at a time)."""

from __future__ import annotations

from agent.context import TaskContext
from tasks.aws.clients import AwsSessionFactory
from tasks.ecs.errors import aws_errors
from tasks.lookups.common import Items, chunks, paged
from tasks.lookups.params import ClusterParams, LookupParams


async def clusters(ctx: TaskContext[LookupParams], aws: AwsSessionFactory
                   ) -> tuple[Items, bool]:
    ecs = await aws.ecs()
    arns, truncated = await paged(ecs.get_paginator("list_clusters"), "clusterArns",
                                  "ECS ListClusters")
    items: Items = []
    for batch in chunks([str(a) for a in arns], 100):
        with aws_errors("ECS DescribeClusters"):
            answer = await ecs.describe_clusters(clusters=batch)
        items.extend({
            "name": c.get("clusterName"), "arn": c.get("clusterArn"),
            "status": c.get("status"),
            "activeServices": c.get("activeServicesCount", 0),
            "runningTasks": c.get("runningTasksCount", 0),
            "pendingTasks": c.get("pendingTasksCount", 0),
        } for c in answer.get("clusters", []))
    return sorted(items, key=lambda i: str(i["name"])), truncated


async def services(ctx: TaskContext[ClusterParams], aws: AwsSessionFactory
                   ) -> tuple[Items, bool]:
    ecs = await aws.ecs()
    cluster = ctx.params.cluster
    arns, truncated = await paged(ecs.get_paginator("list_services"), "serviceArns",
                                  f"ECS ListServices of cluster {cluster}", cluster=cluster)
    items: Items = []
    for batch in chunks([str(a) for a in arns], 10):
        with aws_errors(f"ECS DescribeServices in cluster {cluster}"):
            answer = await ecs.describe_services(cluster=cluster, services=batch)
        items.extend({
            "name": s.get("serviceName"), "arn": s.get("serviceArn"),
            "status": s.get("status"), "desired": s.get("desiredCount", 0),
            "running": s.get("runningCount", 0), "pending": s.get("pendingCount", 0),
            "taskDefinition": str(s.get("taskDefinition", "")).rsplit("/", 1)[-1],
            "taskDefinitionArn": s.get("taskDefinition"),
            "launchType": s.get("launchType", ""),
        } for s in answer.get("services", []))
    return sorted(items, key=lambda i: str(i["name"])), truncated
