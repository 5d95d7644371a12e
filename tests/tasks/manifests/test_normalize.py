from __future__ import annotations

import pytest

from tasks.manifests import ManifestError, drop_nulls, retarget, update_service_request
from tasks.manifests.normalize import (
    normalize_run_task_request,
    normalize_scalable_targets,
    normalize_scaling_policies,
    normalize_service_definition,
    normalize_task_definition,
)


def test_drop_nulls_keeps_falsy_values() -> None:
    doc = {"a": None, "b": 0, "c": False, "d": [], "e": "", "f": {"g": None, "h": [None, 1]},
           "i": [{"j": None, "k": 0}]}
    assert drop_nulls(doc) == {"b": 0, "c": False, "d": [], "e": "", "f": {"h": [None, 1]},
                               "i": [{"k": 0}]}


DESCRIBED_TASK_DEFINITION = {
    "taskDefinition": {
        "taskDefinitionArn": "arn:aws:ecs:us-west-2:123456789012:task-definition/web:6",
        "family": "web", "revision": 6, "status": "ACTIVE",
        "containerDefinitions": [{"name": "nginx", "image": "nginx", "essential": True}],
        "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.docker-remote-api.1.18"}],
        "compatibilities": ["EC2", "FARGATE"], "registeredAt": "2022-10-06T23:03:45Z",
        "registeredBy": "arn:aws:iam::123456789012:user/me", "cpu": "256", "memory": "512",
    },
    "tags": [{"key": "team", "value": "web"}],
}


def test_describe_task_definition_output_is_unwrapped_with_one_warning() -> None:
    request, warnings = normalize_task_definition(DESCRIBED_TASK_DEFINITION, "td.json")
    assert request == {"family": "web", "cpu": "256", "memory": "512",
                       "containerDefinitions": [{"name": "nginx", "image": "nginx",
                                                 "essential": True}],
                       "tags": [{"key": "team", "value": "web"}]}
    dropped = [w for w in warnings if "only describe output has" in w]
    assert len(dropped) == 1
    for name in ("compatibilities", "registeredAt", "registeredBy", "requiresAttributes",
                 "revision", "status", "taskDefinitionArn"):
        assert name in dropped[0]
    assert dropped[0].startswith("td.json:")


DESCRIBED_SERVICES = {
    "services": [{
        "serviceArn": "arn:aws:ecs:us-east-1:123456789012:service/c/web",
        "serviceName": "web", "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/c",
        "status": "ACTIVE", "desiredCount": 2, "runningCount": 2, "pendingCount": 0,
        "launchType": "FARGATE",
        "taskDefinition": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1",
        "deployments": [{"id": "ecs-svc/0410909316449095426"}],
        "events": [{"id": "e1", "message": "(service web) has reached a steady state."}],
        "createdAt": "2022-10-06T23:03:45Z", "roleArn": "arn:aws:iam::1:role/x",
        "deploymentConfiguration": {"maximumPercent": 200, "minimumHealthyPercent": 100},
        "platformFamily": "Linux",
    }],
    "failures": [],
}


def test_describe_services_output_is_unwrapped_and_task_definition_ignored() -> None:
    request, warnings = normalize_service_definition(DESCRIBED_SERVICES, "svc.json",
                                                     cluster="c")
    assert request == {"serviceName": "web", "desiredCount": 2, "launchType": "FARGATE",
                       "deploymentConfiguration": {"maximumPercent": 200,
                                                   "minimumHealthyPercent": 100}}
    text = "\n".join(warnings)
    for name in ("serviceArn", "clusterArn", "status", "runningCount", "pendingCount",
                 "deployments", "events", "createdAt", "roleArn", "platformFamily"):
        assert name in text
    assert "taskDefinition in the service definition is ignored" in text


def test_service_wrapper_and_foreign_cluster() -> None:
    request, warnings = normalize_service_definition(
        {"service": {"serviceName": "web", "cluster": "other"}}, "s.yaml", cluster="c")
    assert request == {"serviceName": "web"}
    assert any("cluster 'other'" in w for w in warnings)


def test_several_described_services_are_refused() -> None:
    with pytest.raises(ManifestError, match="holds 2 services"):
        normalize_service_definition({"services": [{}, {}]}, "s.json")


def test_document_autoscaling_lower_camel_becomes_pascal_with_resource_id() -> None:
    target = {"serviceNamespace": "ecs", "scalableDimension": "ecs:service:DesiredCount",
              "minCapacity": 1, "maxCapacity": 3, "roleArn": "arn:aws:iam::1:role/as"}
    [request], warnings = normalize_scalable_targets(target, "t.yaml", cluster="c",
                                                     service_name="myapp")
    assert request == {"ServiceNamespace": "ecs",
                       "ScalableDimension": "ecs:service:DesiredCount",
                       "MinCapacity": 1, "MaxCapacity": 3, "RoleARN": "arn:aws:iam::1:role/as",
                       "ResourceId": "service/c/myapp"}
    assert warnings == []
    policy = {"scalableDimension": "ecs:service:DesiredCount", "serviceNamespace": "ecs",
              "policyName": "P1", "policyType": "TargetTrackingScaling",
              "targetTrackingScalingPolicyConfiguration": {
                  "targetValue": 60,
                  "predefinedMetricSpecification": {
                      "predefinedMetricType": "ECSServiceAverageCPUUtilization"},
                  "scaleOutCooldown": 300, "scaleInCooldown": 300}}
    [request], _ = normalize_scaling_policies(policy, "p.yaml", cluster="c",
                                              service_name="myapp")
    assert request["TargetTrackingScalingPolicyConfiguration"] == {
        "TargetValue": 60,
        "PredefinedMetricSpecification": {
            "PredefinedMetricType": "ECSServiceAverageCPUUtilization"},
        "ScaleOutCooldown": 300, "ScaleInCooldown": 300}
    assert request["ResourceId"] == "service/c/myapp"
    assert request["PolicyName"] == "P1"


def test_describe_scalable_targets_output_is_unwrapped() -> None:
    described = {"ScalableTargets": [
        {"ServiceNamespace": "ecs", "ResourceId": "service/old/web",
         "ScalableDimension": "ecs:service:DesiredCount", "MinCapacity": 1, "MaxCapacity": 4,
         "RoleARN": "arn:aws:iam::1:role/as", "CreationTime": "2022-10-06T23:03:45Z",
         "ScalableTargetARN": "arn:aws:application-autoscaling:us-east-1:1:scalable-target/x",
         "SuspendedState": {"DynamicScalingInSuspended": False}},
    ], "NextToken": None}
    [request], warnings = normalize_scalable_targets(described, "t.json", cluster="c",
                                                     service_name="web")
    assert "CreationTime" not in request and "ScalableTargetARN" not in request
    assert request["SuspendedState"] == {"DynamicScalingInSuspended": False}
    assert request["ResourceId"] == "service/c/web"
    text = "\n".join(warnings)
    assert "CreationTime, ScalableTargetARN" in text
    assert "'service/old/web' replaced by 'service/c/web'" in text


def test_describe_scaling_policies_output_drops_arn_and_alarms() -> None:
    described = {"ScalingPolicies": [
        {"PolicyARN": "arn:x", "PolicyName": "P1", "ServiceNamespace": "ecs",
         "ResourceId": "service/c/web", "ScalableDimension": "ecs:service:DesiredCount",
         "PolicyType": "TargetTrackingScaling", "Alarms": [{"AlarmName": "a", "AlarmARN": "b"}],
         "CreationTime": "2022-10-06T23:03:45Z",
         "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 60.0}}]}
    [request], warnings = normalize_scaling_policies(described, "p.json", cluster="c",
                                                     service_name="web")
    assert set(request) == {"PolicyName", "ServiceNamespace", "ResourceId",
                            "ScalableDimension", "PolicyType",
                            "TargetTrackingScalingPolicyConfiguration"}
    assert any("Alarms, CreationTime, PolicyARN" in w for w in warnings)


def test_run_task_request_loses_task_definition_with_warning() -> None:
    request, warnings = normalize_run_task_request(
        {"count": 1, "taskDefinition": "x", "launchType": None}, "r.yaml", cluster="c")
    assert request == {"count": 1}
    assert any("run task request is ignored" in w for w in warnings)


def test_update_service_request_keeps_what_update_service_accepts() -> None:
    create = {"cluster": "c", "serviceName": "web", "taskDefinition": "td:1",
              "desiredCount": 2, "launchType": "FARGATE", "schedulingStrategy": "REPLICA",
              "role": "r", "clientToken": "t", "tags": [], "deploymentConfiguration": {},
              "networkConfiguration": {}}
    update, dropped = update_service_request(create)
    assert update == {"cluster": "c", "service": "web", "taskDefinition": "td:1",
                      "desiredCount": 2, "deploymentConfiguration": {},
                      "networkConfiguration": {}}
    assert dropped == ["clientToken", "launchType", "role", "schedulingStrategy", "tags"]


def test_retarget_for_a_canary_service() -> None:
    assert retarget([{"ResourceId": "service/c/web", "MinCapacity": 1}], "c", "webCanary") == [
        {"ResourceId": "service/c/webCanary", "MinCapacity": 1}]
