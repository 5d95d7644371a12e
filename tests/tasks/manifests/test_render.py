from __future__ import annotations

import pytest

from tasks.manifests import ManifestError, ManifestErrors, Variables
from tasks.manifests.render import render

CONTEXT = {
    "artifact": {"image": "library/nginx:perl"},
    "serviceVariables": {"replicas": 3, "team": "web"},
    "env": {"name": "prod", "variables": {"domain": "example.org"}},
    "execution": {"steps": {"deploy": {"output": {"serviceName": "myapp"}}}},
}


def test_context_expressions_resolve() -> None:
    variables = Variables(context=CONTEXT, region="us-west-2", cluster="ecs-tutorial",
                          extra={"targetGroupArn": "arn:tg"})
    doc = {"image": "<+primary.artifact.image>", "count": "<+serviceVariables.replicas>",
           "name": "<+serviceVariables.team>-<+env.name>",
           "host": "api.<+env.variables.domain>", "where": "<+infra.region>/<+infra.cluster>",
           "lb": [{"targetGroupArn": "<+targetGroupArn>"}],
           "svc": "<+execution.steps.deploy.output.serviceName>"}
    assert render(doc, variables, file="f") == {
        "image": "library/nginx:perl", "count": 3, "name": "web-prod",
        "host": "api.example.org", "where": "us-west-2/ecs-tutorial",
        "lb": [{"targetGroupArn": "arn:tg"}], "svc": "myapp"}


def test_secret_value_is_registered_for_masking() -> None:
    seen: list[str] = []
    variables = Variables(secrets={"dbPassword": "s3cr3t-value"}, on_secret=seen.append)
    out = render({"environment": [{"name": "P", "value": '<+secrets.getValue("dbPassword")>'}],
                  "x": "pw=<+secrets.getValue('dbPassword')>"}, variables, file="f")
    assert out["environment"][0]["value"] == "s3cr3t-value"
    assert out["x"] == "pw=s3cr3t-value"
    assert seen == ["s3cr3t-value", "s3cr3t-value"]


def test_value_with_quotes_cannot_change_the_structure() -> None:
    variables = Variables(context={"serviceVariables": {"cmd": 'a", "b": "c\nd: e'}})
    out = render({"command": ["<+serviceVariables.cmd>"]}, variables, file="f")
    assert out == {"command": ['a", "b": "c\nd: e']}


def test_unresolved_expressions_name_file_and_line() -> None:
    raw = "family: web\ncontainerDefinitions:\n  - image: <+primary.artifact.imag>\n" \
          "    name: <+foo.bar>\n"
    doc = {"family": "web", "containerDefinitions": [
        {"image": "<+primary.artifact.imag>", "name": "<+foo.bar>"}]}
    with pytest.raises(ManifestErrors) as info:
        render(doc, Variables(context=CONTEXT), file="td.yaml", raw=raw)
    first, second = info.value.errors
    assert (first.file, first.line, first.path) == ("td.yaml", 3,
                                                    "containerDefinitions[0].image")
    assert "<+primary.artifact.imag> does not resolve" in str(first)
    assert str(first).startswith("td.yaml:3: containerDefinitions[0].image:")
    assert second.line == 4 and "<+foo.bar> is not a known expression" in str(second)


def test_missing_secret_is_an_error_without_a_value() -> None:
    with pytest.raises(ManifestError, match="secret 'nope' is not among the task's secrets"):
        render({"v": '<+secrets.getValue("nope")>'}, Variables(), file="f")


def test_placeholder_roots_are_left_as_written() -> None:
    variables = Variables(placeholder_roots=frozenset({"execution", "secrets"}))
    doc = {"a": "<+execution.steps.x.output.y>", "b": '<+secrets.getValue("k")>'}
    assert render(doc, variables, file="f") == doc


def test_process_environment_is_never_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME_SECRET", "x")
    with pytest.raises(ManifestError, match="does not resolve"):
        render({"v": "<+env.HOME_SECRET>"}, Variables(), file="f")
    with pytest.raises(ManifestError, match="not a known expression"):
        render({"v": "<+HOME_SECRET>"}, Variables(), file="f")
