"""AWS clients in ``tasks/`` are typed by their ports (tasks/aws/ports.py), enforced.

aiobotocore makes its client methods at run time, so an unannotated or ``Any`` client lets
a misspelt operation or keyword through to a failed deployment. A parameter named like a
client (``ecs``, ``elbv2``, ``aas``, ``client``, ``*_client`` ...) must be annotated, and
not with ``Any`` or ``object``: with the port of the calls it makes, or the session
(``AwsSessionFactory`` / ``AwsClients``) for ``aws``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLIENT_NAMES = frozenset({
    "aws", "client", "cfn", "cloudformation", "ecs", "elb", "elbv2", "aas", "autoscaling",
    "application_autoscaling", "cloudwatch", "logs", "s3", "sts", "ec2", "iam", "ssm",
    "secretsmanager",
})
UNTYPED = frozenset({"Any", "object"})


def _is_client(name: str) -> bool:
    return name in CLIENT_NAMES or name.endswith("_client")


def _untyped(annotation: ast.expr | None) -> bool:
    if annotation is None:
        return True
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        annotation = ast.parse(annotation.value, mode="eval").body
    for node in ast.walk(annotation):
        if isinstance(node, ast.Name) and node.id in UNTYPED:
            return True
        if isinstance(node, ast.Attribute) and node.attr in UNTYPED:
            return True
    return False


def untyped_clients(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        args = node.args
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
            if _is_client(arg.arg) and _untyped(arg.annotation):
                shown = ("has no annotation" if arg.annotation is None
                         else f"is annotated {ast.unparse(arg.annotation)}")
                found.append(f"{path.relative_to(root)}:{arg.lineno}: parameter {arg.arg} "
                             f"of {node.name} {shown}; annotate it with its port from "
                             "tasks/aws/ports.py")
    return found


def test_aws_client_parameters_in_tasks_are_typed() -> None:
    found = [problem for path in sorted((ROOT / "tasks").rglob("*.py"))
             for problem in untyped_clients(path)]
    assert not found, "\n".join(found)


def test_the_check_sees_untyped_clients(tmp_path: Path) -> None:
    # The check itself must be able to fail, and must not flag a typed client.
    sample = tmp_path / "probe.py"
    sample.write_text(
        "from typing import Any\n"
        "import typing\n"
        "async def f(ecs: Any, aas, *, s3_client: typing.Any | None = None,\n"
        "            elbv2: 'Any', client: EcsClient | None = None,\n"
        "            cluster: Any = None) -> None: ...\n")
    problems = untyped_clients(sample, root=tmp_path)
    assert [p.split(": parameter ")[1].split(" of ")[0] for p in problems] == [
        "ecs", "aas", "s3_client", "elbv2"]
    assert problems[0] == ("probe.py:3: parameter ecs of f is annotated Any; annotate it "
                           "with its port from tasks/aws/ports.py")
    assert "parameter aas of f has no annotation;" in problems[1]
