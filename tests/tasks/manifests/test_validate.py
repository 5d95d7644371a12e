from __future__ import annotations

import pytest

from tasks.manifests import (
    CREATE_SERVICE,
    PUT_SCALING_POLICY,
    REGISTER_TASK_DEFINITION,
    ManifestError,
    ManifestErrors,
    validate_request,
)

RAW = """family: web
containerDefinitions:
  - name: nginx
    image: nginx
    portMapings:
      - containerPort: 80
networkMode: awsvpx
"""


def test_unknown_field_names_path_line_and_suggestion() -> None:
    doc = {"family": "web", "containerDefinitions": [
        {"name": "nginx", "image": "nginx", "portMapings": [{"containerPort": 80}]}]}
    with pytest.raises(ManifestError) as info:
        validate_request(doc, REGISTER_TASK_DEFINITION, file="td.yaml", raw=RAW)
    err = info.value
    assert err.path == "containerDefinitions[0].portMapings"
    assert err.line == 5
    assert "unknown field; did you mean portMappings?" in str(err)
    assert str(err).startswith("td.yaml:5: containerDefinitions[0].portMapings:")


def test_every_problem_is_reported_at_once() -> None:
    doc = {"containerDefinitions": [{"name": "n", "image": "i", "Memory": 128}],
           "networkMode": "awsvpx"}
    with pytest.raises(ManifestErrors) as info:
        validate_request(doc, REGISTER_TASK_DEFINITION, file="td.yaml", raw=RAW)
    text = str(info.value)
    assert "networkMode: 'awsvpx' is not an accepted value; did you mean awsvpc?" in text
    assert "family: required field is missing" in text
    assert "containerDefinitions[0].Memory: unknown field; did you mean memory?" in text


def test_scalars_are_coerced_to_the_model_types() -> None:
    out = validate_request({"serviceName": "web", "desiredCount": "2",
                            "enableExecuteCommand": "true"}, CREATE_SERVICE, file="s")
    assert out == {"serviceName": "web", "desiredCount": 2, "enableExecuteCommand": True}
    out = validate_request({"family": "f", "cpu": 256, "memory": 512, "containerDefinitions": [
        {"name": "n", "image": "i", "memory": "128"}]}, REGISTER_TASK_DEFINITION, file="t")
    assert out["cpu"] == "256" and out["memory"] == "512"
    assert out["containerDefinitions"][0]["memory"] == 128


def test_wrong_type_is_explained() -> None:
    with pytest.raises(ManifestError, match=r"desiredCount: must be an integer, not a string"):
        validate_request({"serviceName": "web", "desiredCount": "two"}, CREATE_SERVICE,
                         file="s")


def test_placeholders_pass_only_when_allowed() -> None:
    doc = {"serviceName": "web", "desiredCount": "<+execution.steps.a.output.count>"}
    assert validate_request(doc, CREATE_SERVICE, file="s", allow_placeholders=True) == doc
    with pytest.raises(ManifestError):
        validate_request(doc, CREATE_SERVICE, file="s")


def test_pascal_case_request_is_checked_against_autoscaling() -> None:
    with pytest.raises(ManifestError, match="PolicyNme: unknown field; did you mean PolicyName"):
        validate_request({"PolicyNme": "p", "ServiceNamespace": "ecs", "ResourceId": "r",
                          "ScalableDimension": "ecs:service:DesiredCount"},
                         PUT_SCALING_POLICY, file="p")
