"""ECS's service-side rules end to end: the real manager process, a real delegate and the
sandbox. A rolling deploy whose service names a container port the task definition does
not map fails in Fetch Manifests with the rule's message, and nothing is created in AWS
(no RegisterTaskDefinition call is made)."""

from __future__ import annotations

from testkit.sandbox_fixture import Aws
from testkit.stack import DelegateRunner, ManagerApi

TASK_DEFINITION = """\
family: rules-e2e
requiresCompatibilities: [FARGATE]
networkMode: awsvpc
cpu: 256
memory: 512
containerDefinitions:
  - name: web
    image: nginx:1.27
    portMappings:
      - containerPort: 80
"""


def service_definition(aws: Aws) -> str:
    return f"""\
serviceName: rules-e2e
desiredCount: 1
launchType: FARGATE
networkConfiguration:
  awsvpcConfiguration:
    subnets: [{aws.subnets[0]}]
    securityGroups: [{aws.security_group}]
loadBalancers:
  - targetGroupArn: arn:aws:elasticloadbalancing:{aws.region}:123456789012:targetgroup/t/1
    containerName: web
    containerPort: 8080
"""



async def test_a_rule_fails_the_step_in_fetch_manifests_and_creates_nothing(
        aws: Aws, api: ManagerApi, aws_delegate: DelegateRunner) -> None:
    task_id = await api.submit({
        "type": "ecs.rolling_deploy", "selectors": ["ecs"], "timeout": "2m",
        "params": {"region": aws.region, "cluster": aws.cluster, "pollInterval": "0.1s",
                   "manifests": {
                       "taskDefinition": {"store": "inline", "content": TASK_DEFINITION},
                       "serviceDefinition": {"store": "inline",
                                             "content": service_definition(aws)}}}})
    done = await api.wait_finished(task_id, timeout=60)
    assert done["status"] == "FAILED"
    assert ("inline EcsServiceDefinition:11: loadBalancers[0].containerPort: container "
            "'web' maps no containerPort 8080; add it to its portMappings or use one of 80"
            in done["error"]), done["error"]
    assert done["units"][0] == {**done["units"][0], "name": "Fetch Manifests",
                                "status": "FAILURE"}
    ecs = aws.client("ecs")
    assert ecs.list_services(cluster=aws.cluster)["serviceArns"] == []
    assert ecs.list_task_definitions(familyPrefix="rules-e2e")["taskDefinitionArns"] == []
