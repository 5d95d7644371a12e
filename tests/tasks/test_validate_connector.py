"""aws.validate_connector against the sandbox: inherited credentials, an access key whose
secret comes from the task's secrets, a role to assume, and the errors users hit."""

from __future__ import annotations

import pytest

from agent.context import TaskFailed
from tasks.aws_validate import ValidateConnectorParams, validate_connector
from testkit.sandbox_fixture import Aws
from tests.tasks.ecs.support import make_ctx


@pytest.fixture(autouse=True)
def point_at_sandbox(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in aws.environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")


async def test_inherited_credentials_list_the_clusters(aws: Aws) -> None:
    params = ValidateConnectorParams.model_validate({"region": aws.region})
    ctx, recorded = make_ctx("aws.validate_connector", params)
    out = await validate_connector(ctx)
    assert out["account"] == "123456789012"
    assert aws.cluster_arn in out["clusters"]
    assert recorded.unit_status() == {"Validate Credentials": "SUCCESS",
                                      "List Clusters": "SUCCESS"}


async def test_access_key_with_secret_from_task_secrets_and_a_role(aws: Aws) -> None:
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    params = ValidateConnectorParams.model_validate({
        "region": aws.region,
        "credentials": {"type": "access_key", "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
                        "secretKeyRef": "aws_secret",
                        "roleArn": "arn:aws:iam::123456789012:role/deployer"}})
    masked: list[str] = []
    ctx, recorded = make_ctx("aws.validate_connector", params,
                             secrets={"aws_secret": secret})
    ctx.add_secret = masked.append
    out = await validate_connector(ctx)
    assert "assumed-role/deployer" in out["arn"]
    assert len(masked) == 2  # the assumed role's secret key and session token
    assert secret not in recorded.text()


async def test_a_missing_secret_is_named(aws: Aws) -> None:
    params = ValidateConnectorParams.model_validate({
        "region": aws.region,
        "credentials": {"type": "access_key", "accessKeyId": "AKIA1",
                        "secretKeyRef": "nope"}})
    ctx, _ = make_ctx("aws.validate_connector", params)
    with pytest.raises(TaskFailed, match="secret 'nope', which the task does not have"):
        await validate_connector(ctx)


def test_params_are_checked() -> None:
    with pytest.raises(ValueError, match="region"):
        ValidateConnectorParams.model_validate({"credentials": {"type": "inherit"}})
    with pytest.raises(ValueError, match="secretKeyRef"):
        ValidateConnectorParams.model_validate(
            {"region": "us-east-1", "credentials": {"type": "access_key",
                                                    "accessKeyId": "AKIA1"}})
