"""`delegate validate` checks every step's type and params against that type's own model,
offline, as the delegate will (issue 10 part 4): a misspelt option or an unknown type
fails with the field path and a suggestion; the execution's infrastructure is offered
only to types that declare it; provisioner steps are checked too."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from cli.exitcodes import ExitCode
from cli.validate import validate

TEMPLATE = ("AWSTemplateFormatVersion: '2010-09-09'\nResources: {}\nOutputs:\n"
            "  region_name: {Value: !Ref AWS::Region}\n  cluster_name: {Value: c1}\n")


def _execution(**changes: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "name": "provisioned", "service": "myapp",
        "infrastructure": {"region": "<+provisioner.region_name>",
                           "cluster": "<+provisioner.cluster_name>"},
        "provisioner": {"steps": [{"id": "provision", "type": "cloudformation.create_stack",
                                   "params": {"region": "us-east-1", "stackName": "infra",
                                              "template": TEMPLATE}}]},
        "steps": [{"id": "hello", "type": "shell.script",
                   "params": {"script": "echo <+infra.cluster>"}}],
        "rollbackSteps": [{"id": "undo", "type": "cloudformation.rollback_stack",
                           "rollsBack": "hello", "params": {
                               "region": "us-east-1", "stackName": "infra",
                               "rollbackData": "<+execution.steps.provision.output."
                                               "rollbackData>"}}]}
    doc.update(changes)
    return doc


def _run(tmp_path: Path, doc: dict[str, object]) -> tuple[int, str]:
    path = tmp_path / "execution.yaml"
    path.write_text(yaml.safe_dump(doc))
    result = CliRunner().invoke(validate, [str(path)])
    return result.exit_code, result.output


def test_a_provisioned_execution_with_expressions_is_valid(tmp_path: Path) -> None:
    code, out = _run(tmp_path, _execution())
    assert code == ExitCode.OK, out


def test_a_misspelt_option_is_named_with_a_suggestion(tmp_path: Path) -> None:
    doc = _execution(steps=[{"id": "hello", "type": "shell.script",
                             "params": {"script": "true", "shel": "bash"}}])
    code, out = _run(tmp_path, doc)
    assert code != ExitCode.OK
    assert "hello.params.shel: Extra inputs are not permitted; did you mean 'shell'?" in out


def test_an_unknown_step_type_gets_the_nearest_name(tmp_path: Path) -> None:
    doc = _execution(steps=[{"id": "hello", "type": "shell.scrpit",
                             "params": {"script": "true"}}])
    code, out = _run(tmp_path, doc)
    assert code != ExitCode.OK
    assert "unknown step type 'shell.scrpit'; did you mean 'shell.script'?" in out


def test_provisioner_steps_are_checked_too(tmp_path: Path) -> None:
    doc = _execution()
    doc["provisioner"] = {"steps": [{"id": "provision", "type": "cloudformation.create_stack",
                                     "params": {"region": "us-east-1",
                                                "template": TEMPLATE}}]}
    code, out = _run(tmp_path, doc)
    assert code != ExitCode.OK
    assert "provision.params.stackName: Field required" in out


def test_infrastructure_is_not_forced_on_a_type_without_a_cluster(tmp_path: Path) -> None:
    # A CloudFormation step declares region but no cluster: the execution's cluster is
    # offered, not imposed (it used to be merged in and the step rejected).
    doc = _execution(infrastructure={"region": "us-east-1", "cluster": "prod"})
    doc["steps"] = [{"id": "stack", "type": "cloudformation.create_stack",
                     "params": {"stackName": "infra", "template": TEMPLATE}}]
    doc["rollbackSteps"] = []
    code, out = _run(tmp_path, doc)
    assert code == ExitCode.OK, out


DOC_TEMPLATE = (Path(__file__).resolve().parents[1] / "tasks" / "manifests" / "data"
                / "cloudformation-ecs-cluster.yaml").read_text()


def _declared(cluster_expr: str) -> dict[str, object]:
    doc = _execution()
    doc["infrastructure"] = {"region": "<+provisioner.region_name>", "cluster": cluster_expr}
    doc["provisioner"] = {"steps": [{"id": "provision", "type": "cloudformation.create_stack",
                                     "params": {"region": "us-east-1", "stackName": "infra",
                                                "template": DOC_TEMPLATE}}]}
    return doc


def test_an_output_the_inline_template_does_not_declare_is_an_error(tmp_path: Path) -> None:
    code, out = _run(tmp_path, _declared("<+provisioner.cluster_nam>"))
    assert code != ExitCode.OK
    assert ("infrastructure.cluster: <+provisioner.cluster_nam>: no provisioner step "
            "declares output 'cluster_nam'; did you mean 'cluster_name'?") in out


def test_declared_outputs_pass_and_undeclarable_ones_are_noted(tmp_path: Path) -> None:
    code, out = _run(tmp_path, _declared("<+provisioner.cluster_name>"))
    assert code == ExitCode.OK, out
    # A template from the file store is only known at run time: said, not refused.
    code, out = _run(tmp_path, _execution(provisioner={"steps": [{
        "id": "provision", "type": "cloudformation.create_stack",
        "params": {"region": "us-east-1", "stackName": "infra",
                   "template": {"store": "files", "paths": ["account:/t.yaml"]}}}]}))
    assert code == ExitCode.OK, out
    assert "resolve at run time" in out
