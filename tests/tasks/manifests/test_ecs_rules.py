"""ECS's service-side rules (tasks/manifests/ecs_rules.py): one test per rule, each with a
request ECS refuses and the nearest one it accepts, and the rules through build_manifests
(file, line and field path in the message)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tasks.manifests import (
    FetchedFile,
    FetchedManifests,
    ManifestError,
    Variables,
    build_manifests,
)
from tasks.manifests.ecs_rules import FARGATE_SIZES, RULES, SERVICE, TASK, check

TASK_DEF: dict[str, Any] = {
    "family": "web", "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc",
    "cpu": "256", "memory": "512", "executionRoleArn": "arn:aws:iam::1:role/exec",
    "containerDefinitions": [{"name": "app", "image": "nginx", "essential": True,
                              "memory": 256,
                              "portMappings": [{"containerPort": 80, "hostPort": 80}]}],
}
SERVICE_DEF: dict[str, Any] = {
    "serviceName": "web", "desiredCount": 1, "launchType": "FARGATE",
    "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"]}},
    "loadBalancers": [{"targetGroupArn": "arn:tg", "containerName": "app",
                       "containerPort": 80}],
    "healthCheckGracePeriodSeconds": 30,
    "deploymentConfiguration": {"minimumHealthyPercent": 50, "maximumPercent": 200},
}


def td(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(TASK_DEF)
    out.update(changes)
    return out


def svc(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(SERVICE_DEF)
    out.update(changes)
    return out


def container(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(TASK_DEF["containerDefinitions"][0])
    out.update(changes)
    return out


def paths(task: dict[str, Any] | None, service: dict[str, Any] | None) -> list[str]:
    return [f"{f.manifest}:{f.path}" for f in check(task, service)]


def test_the_valid_pair_passes_every_rule() -> None:
    assert check(td(), svc()) == []
    assert check(None, None) == []


@pytest.mark.parametrize(("cpu", "memory"), [
    ("256", "512"), ("256", "2048"), ("1 vCPU", "2 GB"), ("4096", "30720"),
    ("8192", "16384"), ("8192", "61440"), ("16 vCPU", "120 GB"), ("16384", "32768"),
])
def test_fargate_accepts_its_sizes(cpu: str, memory: str) -> None:
    assert check(td(cpu=cpu, memory=memory, containerDefinitions=[container(memory=None)]),
                 None) == []


@pytest.mark.parametrize(("cpu", "memory", "path", "says"), [
    ("256", "4096", "memory", "with cpu 256 use 0.5 GB, 1 GB, 2 GB"),
    ("8192", "18432", "memory", "16 GB to 60 GB in 4 GB steps"),
    ("16384", "36864", "memory", "32 GB to 120 GB in 8 GB steps"),
    ("384", "1024", "cpu", "not a Fargate task CPU size"),
])
def test_fargate_refuses_other_sizes(cpu: str, memory: str, path: str, says: str) -> None:
    findings = check(td(cpu=cpu, memory=memory), None)
    assert [(f.manifest, f.path) for f in findings] == [(TASK, path)]
    assert says in findings[0].message


def test_fargate_table_has_the_8_and_16_vcpu_sizes() -> None:
    assert FARGATE_SIZES[8192][0] == 16384 and FARGATE_SIZES[8192][-1] == 61440
    assert FARGATE_SIZES[16384][-1] == 122880


def test_fargate_needs_task_cpu_and_memory() -> None:
    task = td()
    del task["cpu"], task["memory"]
    assert paths(task, None) == ["taskDefinition:cpu", "taskDefinition:memory"]


def test_fargate_through_the_service_launch_type_needs_awsvpc() -> None:
    task = td(networkMode="bridge", requiresCompatibilities=["EC2"])
    findings = check(task, svc())
    assert [f.path for f in findings if f.path == "networkMode"] == ["networkMode"]
    assert "set networkMode: awsvpc" in findings[0].message


def test_a_load_balancer_names_a_container_of_the_task_definition() -> None:
    service = svc(loadBalancers=[{"targetGroupArn": "arn:tg", "containerName": "web",
                                  "containerPort": 80}])
    findings = check(td(), service)
    assert [(f.manifest, f.path) for f in findings] == [
        (SERVICE, "loadBalancers[0].containerName")]
    assert "no container 'web'; use one of 'app'" in findings[0].message


def test_a_load_balancer_port_is_one_the_container_maps() -> None:
    service = svc(loadBalancers=[{"targetGroupArn": "arn:tg", "containerName": "app",
                                  "containerPort": 8080}])
    findings = check(td(), service)
    assert [f.path for f in findings] == ["loadBalancers[0].containerPort"]
    assert "maps no containerPort 8080" in findings[0].message


def test_at_least_one_essential_container() -> None:
    task = td(containerDefinitions=[container(essential=False)])
    assert paths(task, None) == ["taskDefinition:containerDefinitions"]
    # Left out, `essential` is true.
    unset = container()
    del unset["essential"]
    assert check(td(containerDefinitions=[unset]), None) == []


def test_container_names_are_unique() -> None:
    task = td(containerDefinitions=[container(memory=128), container(memory=128)])
    assert paths(task, None) == ["taskDefinition:containerDefinitions[1].name"]


def test_every_container_has_an_image() -> None:
    bare = container()
    del bare["image"]
    assert paths(td(containerDefinitions=[bare]), None) == [
        "taskDefinition:containerDefinitions[0].image"]


def test_awsvpc_host_port_equals_container_port() -> None:
    task = td(containerDefinitions=[container(portMappings=[{"containerPort": 80,
                                                             "hostPort": 8080}])])
    assert paths(task, None) == ["taskDefinition:containerDefinitions[0].portMappings[0].hostPort"]
    bridge = td(requiresCompatibilities=["EC2"], networkMode="bridge",
                containerDefinitions=[container(portMappings=[{"containerPort": 80,
                                                               "hostPort": 8080}])])
    assert check(bridge, None) == []


def test_container_memory_fits_the_task_memory() -> None:
    task = td(containerDefinitions=[container(memory=400),
                                    container(name="side", memory=None, memoryReservation=200)])
    findings = check(task, None)
    assert [f.path for f in findings] == ["containerDefinitions"]
    assert "600 MiB, over the task's memory 512 MiB" in findings[0].message


def test_an_awsvpc_service_needs_subnets() -> None:
    assert paths(td(), svc(networkConfiguration={})) == [
        "serviceDefinition:networkConfiguration.awsvpcConfiguration.subnets"]


def test_launch_type_and_capacity_providers_exclude_each_other() -> None:
    service = svc(capacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}])
    assert paths(td(), service) == ["serviceDefinition:launchType"]
    del service["launchType"]
    assert check(td(), service) == []


@pytest.mark.parametrize(("low", "high", "path"), [
    (150, 200, "minimumHealthyPercent"), (50, 90, "maximumPercent"),
    (100, 100, "maximumPercent"),
])
def test_deployment_percents_stay_in_bounds(low: int, high: int, path: str) -> None:
    service = svc(deploymentConfiguration={"minimumHealthyPercent": low,
                                           "maximumPercent": high})
    assert paths(td(), service) == [f"serviceDefinition:deploymentConfiguration.{path}"]


def test_grace_period_only_with_a_load_balancer() -> None:
    service = svc()
    del service["loadBalancers"]
    assert paths(td(), service) == ["serviceDefinition:healthCheckGracePeriodSeconds"]


@pytest.mark.parametrize("extra", [
    {"secrets": [{"name": "DB", "valueFrom": "arn:aws:ssm:::parameter/db"}]},
    {"logConfiguration": {"logDriver": "awslogs", "options": {}}},
])
def test_secrets_and_awslogs_on_fargate_need_an_execution_role(extra: dict[str, Any]) -> None:
    task = td(containerDefinitions=[container(**extra)])
    del task["executionRoleArn"]
    findings = check(task, None)
    assert [f.path for f in findings] == ["executionRoleArn"]
    assert "set executionRoleArn" in findings[0].message


def test_runtime_expressions_are_not_judged() -> None:
    task = td(cpu="<+serviceVariables.cpu>", memory="<+serviceVariables.memory>")
    assert check(task, svc(loadBalancers=[{"targetGroupArn": "<+targetGroupArn>",
                                           "containerName": "<+serviceVariables.c>",
                                           "containerPort": 80}])) == []


def test_every_rule_has_a_name_and_a_summary_for_the_docs() -> None:
    names = [rule.name for rule in RULES]
    assert len(names) == len(set(names)) == 13
    assert all(rule.summary.endswith(".") for rule in RULES)


TD_YAML = """\
family: web
requiresCompatibilities: [FARGATE]
networkMode: awsvpc
cpu: 256
memory: 4096
containerDefinitions:
  - name: app
    image: nginx
    portMappings:
      - containerPort: 80
"""
SVC_YAML = """\
serviceName: web
desiredCount: 1
networkConfiguration:
  awsvpcConfiguration:
    subnets: [subnet-1]
loadBalancers:
  - targetGroupArn: arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/t/1
    containerName: web
    containerPort: 80
"""


def test_build_manifests_reports_rules_with_file_line_and_path() -> None:
    fetched = FetchedManifests(task_definition=[FetchedFile("td.yaml", TD_YAML)],
                               service_definition=[FetchedFile("svc.yaml", SVC_YAML)])
    with pytest.raises(ManifestError) as info:
        build_manifests(fetched, Variables(), cluster="c")
    text = str(info.value).splitlines()
    assert text[0].startswith("td.yaml:5: memory: memory '4096' does not go with cpu 256")
    assert text[1].startswith("svc.yaml:8: loadBalancers[0].containerName: the task "
                              "definition has no container 'web'")


def test_an_awsvpc_run_task_needs_subnets_and_one_launcher() -> None:
    run = {"count": 1, "launchType": "FARGATE",
           "capacityProviderStrategy": [{"capacityProvider": "FARGATE"}]}
    assert paths(td(), None) == []
    assert check(td(), None, run)[0].manifest == "runTaskRequest"
    assert [f"{f.manifest}:{f.path}" for f in check(td(), None, run)] == [
        "runTaskRequest:networkConfiguration.awsvpcConfiguration.subnets",
        "runTaskRequest:launchType"]
