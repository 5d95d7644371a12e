"""Unreplaced example placeholders and CloudFormation-shaped manifests are refused with
the file, the line and what to write instead, before any AWS call."""

from __future__ import annotations

import pytest

from tasks.manifests import FetchedFile, FetchedManifests, ManifestError, Variables, build_manifests
from tasks.manifests.cloudformation import check_not_cloudformation
from tasks.manifests.model import REGISTER_TASK_DEFINITION
from tasks.manifests.parse import parse_manifest
from tasks.manifests.placeholders import find_placeholders

SERVICE = """\
serviceName: web
# replace <Subnet Id> below with your subnet
networkConfiguration:
  awsvpcConfiguration:
    securityGroups:
      - <Security Group Id>
    subnets:
      - <Subnet Id>
      - <Subnet Id>
tags:
  - key: secret
    value: <+secrets.getValue("x")>
  - key: page
    value: echo <html>
"""


def test_placeholders_are_found_with_line_and_path_not_in_comments_or_expressions() -> None:
    errors = find_placeholders(parse_manifest(SERVICE, "svc.yaml"), file="svc.yaml",
                               raw=SERVICE)
    found = [(e.line, e.path, str(e).split(": ", 2)[-1][:20]) for e in errors]
    assert found == [
        (6, "networkConfiguration.awsvpcConfiguration.securityGroups[0]",
         "<Security Group Id> "),
        (8, "networkConfiguration.awsvpcConfiguration.subnets[0]", "<Subnet Id> is a pla"),
        (9, "networkConfiguration.awsvpcConfiguration.subnets[1]", "<Subnet Id> is a pla"),
    ]
    assert "`delegate sandbox` prints it" in str(errors[0])
    assert "your AWS account" in str(errors[0])


def test_upper_case_slots_of_the_product_document_count_too() -> None:
    doc = {"environment": [{"name": "ACCOUNT_ID", "value": "<ACCOUNT_ID>"}]}
    [error] = find_placeholders(doc, file="inline")
    assert error.path == "environment[0].value" and error.line is None


def test_a_placeholder_fails_the_build_with_file_and_line() -> None:
    fetched = FetchedManifests(service_definition=[FetchedFile("svc.yaml", SERVICE)])
    with pytest.raises(ManifestError) as info:
        build_manifests(fetched, Variables(), cluster="c")
    lines = str(info.value).splitlines()
    assert len(lines) == 3
    assert lines[1].startswith("svc.yaml:8: networkConfiguration.awsvpcConfiguration."
                               "subnets[0]: <Subnet Id> is a placeholder")


CFN_TASK = """\
Family: web
Cpu: 256
Memory: 512
ContainerDefinitions:
  - Name: app
    Image: nginx
"""


def test_cloudformation_property_names_are_recognised() -> None:
    fetched = FetchedManifests(task_definition=[FetchedFile("td.yaml", CFN_TASK)])
    with pytest.raises(ManifestError) as info:
        build_manifests(fetched, Variables(), cluster="c")
    text = str(info.value)
    assert text.count("\n") == 0, text  # one error, not one per field
    assert "CloudFormation's property names (AWS::ECS::TaskDefinition)" in text
    assert "Family -> family" in text and "ContainerDefinitions -> containerDefinitions" in text


def test_a_cloudformation_resource_and_template_are_recognised() -> None:
    resource = {"Type": "AWS::ECS::TaskDefinition",
                "Properties": {"Family": "web", "ContainerDefinitions": []}}
    with pytest.raises(ManifestError, match="drop the Type/Properties wrapper"):
        check_not_cloudformation(resource, REGISTER_TASK_DEFINITION, file="td.yaml")
    with pytest.raises(ManifestError, match="a CloudFormation template"):
        check_not_cloudformation({"Resources": {}}, REGISTER_TASK_DEFINITION, file="t.yaml")


def test_one_misspelt_capital_is_left_to_the_model_check() -> None:
    doc = {"family": "web", "Cpu": "256", "memory": "512", "containerDefinitions": []}
    check_not_cloudformation(doc, REGISTER_TASK_DEFINITION, file="td.yaml")
