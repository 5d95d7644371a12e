"""The task role policy grants what the step code in tasks/ calls, and nothing else.

The scan reads every module under tasks/ with ``ast`` and collects:

* attributes named like an AWS operation (``ecs.update_service(...)``, but also
  ``partial(ecs.describe_tasks, ...)`` and ``lambda: ecs.run_task(...)``: the attribute is
  what counts, not whether it is called on the spot);
* ``X.get_paginator("op")`` and ``X.get_waiter("name")`` (a waiter calls its operation).

The receiver's name says which service it is (``ecs``, ``elbv2``, ``aas``, ``sts``,
``s3``); any other name (``client``) is resolved from the operation name when exactly one
of the services has it. Operation names and their PascalCase come from botocore's own
service models, not from a hand-made conversion.

Limits (what this cannot see, so reviewers must): operations reached through ``getattr``
or a name held in a variable; an unknown receiver calling an operation that several of
the services share (the scan fails and asks for a clearer name rather than guess); calls
made outside tasks/; and permissions AWS checks implicitly, which are the short allow-list
below, each with its reason (docs/permissions.md explains them too). Resource scoping and
conditions are not checked: only that some statement allows the action.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path

import botocore.session
from botocore import xform_name

ROOT = Path(__file__).resolve().parents[2]
TASKS = ROOT / "tasks"
TASK_ROLE_POLICY = ROOT / "deploy" / "iam" / "task-role-policy.json"

# botocore service name -> IAM action prefix.
SERVICES = {
    "ecs": "ecs",
    "elbv2": "elasticloadbalancing",
    "application-autoscaling": "application-autoscaling",
    "s3": "s3",
    "sts": "sts",
    "cloudformation": "cloudformation",
    "ecr": "ecr",
}
# The names the step code gives its clients (find them with `aws.client("...")`).
RECEIVERS = {
    "ecs": "ecs",
    "elbv2": "elbv2",
    "aas": "application-autoscaling",
    "autoscaling": "application-autoscaling",
    "s3": "s3",
    "sts": "sts",
    "cfn": "cloudformation",
    "ecr": "ecr",
}
# Operations whose IAM action is not named after them.
ACTION_OF = {
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3", "ListObjects"): "s3:ListBucket",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
}
# Granted although no code names them: AWS checks them as part of other calls.
IMPLICIT = {
    "iam:PassRole": "RegisterTaskDefinition / RunTask naming a task or execution role",
    "iam:CreateServiceLinkedRole": "first CreateService / RegisterScalableTarget in an account",
    "s3:ListBucket": "HeadObject on a missing key answers 404 instead of 403",
    "cloudwatch:DescribeAlarms": "Application Auto Scaling for ECS services (AWS-documented)",
    "cloudwatch:PutMetricAlarm": "Application Auto Scaling for ECS services (AWS-documented)",
    "cloudwatch:DeleteAlarms": "Application Auto Scaling for ECS services (AWS-documented)",
}


@dataclass(frozen=True)
class Call:
    action: str
    where: str  # file:line, for the failure message


@cache
def _operations(service: str) -> dict[str, str]:
    """snake_case method name -> PascalCase operation name."""
    model = botocore.session.get_session().get_service_model(service)
    return {xform_name(name): name for name in model.operation_names}


@cache
def _waiter_operations(service: str) -> dict[str, str]:
    session = botocore.session.get_session()
    try:
        waiters = session.get_waiter_model(service)
    except Exception:  # a service without waiters: botocore raises its own not-found
        return {}
    return {xform_name(name): waiters.get_waiter(name).operation for name in waiters.waiter_names}


def _action(service: str, operation: str) -> str:
    return ACTION_OF.get((service, operation), f"{SERVICES[service]}:{operation}")


def _receiver(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):  # self.ecs.describe_services
        return node.attr
    return None


def _services_having(method: str) -> list[str]:
    return [s for s in SERVICES if method in _operations(s)]


def _resolve(receiver: str | None, method: str, where: str) -> str | None:
    """The service of ``receiver.method``, None when it is no AWS operation."""
    service = RECEIVERS.get(receiver or "")
    if service is not None:
        return service if method in _operations(service) else None
    having = _services_having(method)
    if len(having) > 1:
        raise AssertionError(
            f"{where}: {receiver}.{method} is an operation of {', '.join(having)}; name the "
            f"client after its service ({', '.join(sorted(RECEIVERS))}) so the permission "
            "check knows which one it is"
        )
    return having[0] if having else None


def scan_source(source: str, filename: str) -> Iterator[Call]:
    """The AWS calls one module makes, as IAM actions."""
    tree = ast.parse(source, filename)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"get_paginator", "get_waiter"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            where = f"{filename}:{node.lineno}"
            name = node.args[0].value
            receiver = _receiver(node.func.value)
            if node.func.attr == "get_paginator":
                service = _resolve(receiver, name, where)
                assert service is not None, f"{where}: no paginator for operation {name!r}"
                yield Call(_action(service, _operations(service)[name]), where)
            else:
                found = [
                    (s, _waiter_operations(s)[name])
                    for s in SERVICES
                    if name in _waiter_operations(s) and RECEIVERS.get(receiver or "", s) == s
                ]
                assert len(found) == 1, f"{where}: cannot tell which waiter {name!r} is"
                yield Call(_action(*found[0]), where)
        elif isinstance(node, ast.Attribute):
            where = f"{filename}:{node.lineno}"
            service = _resolve(_receiver(node.value), node.attr, where)
            if service is not None:
                yield Call(_action(service, _operations(service)[node.attr]), where)


def scan_tasks(root: Path = TASKS) -> list[Call]:
    calls: list[Call] = []
    for path in sorted(root.rglob("*.py")):
        calls.extend(scan_source(path.read_text(), str(path.relative_to(ROOT))))
    return calls


def _granted() -> set[str]:
    actions: set[str] = set()
    for statement in json.loads(TASK_ROLE_POLICY.read_text())["Statement"]:
        assert statement["Effect"] == "Allow", statement
        declared = statement["Action"]
        actions.update([declared] if isinstance(declared, str) else declared)
    return actions


def _allowed(action: str, granted: Iterable[str]) -> bool:
    # IAM matches actions case-insensitively, with * and ? wildcards.
    return any(fnmatchcase(action.lower(), pattern.lower()) for pattern in granted)


# ---- the scanner sees what it must ---------------------------------------------------------


def test_scanner_finds_calls_in_every_form_the_code_uses() -> None:
    source = """
async def f(ecs, aas, elbv2, client, aws):
    await ecs.update_service(cluster="c", service="s")            # direct call
    await unthrottled(lambda: ecs.run_task(**request))            # inside a lambda
    await unthrottled(partial(ecs.describe_tasks, cluster="c"))   # a bound method, uncalled
    ecs.get_paginator("list_tasks")                               # a paginator
    aas.get_paginator("describe_scalable_targets")
    await elbv2.modify_listener(ListenerArn="x", DefaultActions=[])
    s3 = await aws.client("s3")
    await client.head_object(Bucket="b", Key="k")                 # unknown name, unique op
    ecs.get_waiter("services_stable")                             # a waiter
    log.info("ecs.delete_service(...) in a string is not a call")
    ecs.meta.region_name                                           # not an operation
"""
    found = {call.action for call in scan_source(source, "example.py")}
    assert found == {
        "ecs:UpdateService",
        "ecs:RunTask",
        "ecs:DescribeTasks",
        "ecs:ListTasks",
        "application-autoscaling:DescribeScalableTargets",
        "elasticloadbalancing:ModifyListener",
        "s3:GetObject",
        "ecs:DescribeServices",
    }


def test_a_new_call_without_its_permission_is_caught() -> None:
    source = "async def f(ecs):\n    await ecs.deregister_task_definition(taskDefinition='x')\n"
    (call,) = scan_source(source, "new_step.py")
    assert call.action == "ecs:DeregisterTaskDefinition"
    assert not _allowed(call.action, _granted())


def test_an_ambiguous_receiver_is_refused_not_guessed() -> None:
    # tag_resource is both an ECS and an Application Auto Scaling operation.
    source = "async def f(client):\n    await client.tag_resource(resourceArn='x', tags=[])\n"
    try:
        list(scan_source(source, "ambiguous.py"))
    except AssertionError as exc:
        assert "client.tag_resource" in str(exc)
    else:
        raise AssertionError("an ambiguous call was attributed to one service")


def test_scan_of_tasks_sees_the_known_calls() -> None:
    # A guard on the guard: if the scan silently found nothing, the checks below would
    # pass vacuously.
    found = {call.action for call in scan_tasks()}
    assert {
        "sts:AssumeRole",
        "sts:GetCallerIdentity",
        "ecs:ListClusters",
        "ecs:RunTask",
        "ecs:DescribeTasks",
        "ecs:ListTasks",
        "ecs:TagResource",
        "s3:GetObject",
        "elasticloadbalancing:ModifyRule",
        "application-autoscaling:PutScalingPolicy",
    } <= found


# ---- the policy matches the code -----------------------------------------------------------


def test_every_aws_call_in_tasks_is_granted_to_the_task_role() -> None:
    granted = _granted()
    missing = sorted(
        {f"{c.action} ({c.where})" for c in scan_tasks() if not _allowed(c.action, granted)}
    )
    assert not missing, (
        "deploy/iam/task-role-policy.json does not grant these AWS calls made in tasks/: "
        f"{', '.join(missing)}. Add each action to the policy, to the TaskRole in "
        "deploy/cloudformation/ecs-delegate.yaml and to the table in docs/permissions.md."
    )


def test_every_granted_action_is_called_or_needed_implicitly() -> None:
    called = {c.action.lower() for c in scan_tasks()}
    implicit = {a.lower() for a in IMPLICIT}
    unused = sorted(a for a in _granted() if a.lower() not in called | implicit)
    assert not unused, (
        f"the task role grants {', '.join(unused)}, which no code in tasks/ calls and "
        "which is not on the IMPLICIT list of this test. Remove it from "
        "deploy/iam/task-role-policy.json, the template and docs/permissions.md, or add "
        "it to IMPLICIT with the reason AWS needs it."
    )


def test_implicit_actions_are_granted_and_documented() -> None:
    granted = _granted()
    doc = (ROOT / "docs" / "permissions.md").read_text()
    for action in IMPLICIT:
        assert action in granted, f"{action} is listed as implicit but not granted"
        assert f"`{action}`" in doc, f"{action} is not explained in docs/permissions.md"
