"""``instances.sync``: what runs in one cluster, for the manager's instance sync."""

from __future__ import annotations

from agent.context import TaskRegistry, TaskType
from tasks.instances.sync import InstanceSyncParams, instance_sync
from wire.lookups import INSTANCE_SYNC_TYPE


def register(registry: TaskRegistry) -> None:
    registry.register(TaskType(
        name=INSTANCE_SYNC_TYPE, handler=instance_sync,
        summary="Report the running tasks of the given services of one cluster: task "
                "ARN, revision, image and digest per container, launch type, zone, health, "
                "started at and deployment, plus each service's status and task "
                "definition. Tasks are listed per cluster and grouped by their group "
                "(ListTasks and DescribeTasks 100 at a time), services described 10 at a "
                "time through the shared describer.",
        params_model=InstanceSyncParams,
        outputs={"cluster": "the cluster", "region": "AWS region",
                 "services": "service name -> {status, taskDefinitionArn, desired, "
                             "running, deployments, groups: [{arnPrefix, "
                             "taskDefinitionArn, containers, tasks: [[id, deploymentId, "
                             "lastStatus, health, launchType, availabilityZone, "
                             "startedAt], ...]}]}; status MISSING when ECS does not "
                             "know it",
                 "calls": "AWS calls made, by operation",
                 "truncated": "true when the tasks of the largest services were left out "
                              "(they say tasksLeftOut) to fit one message"},
        units=("Sync Instances",),
    ))
