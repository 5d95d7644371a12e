from __future__ import annotations

from collections.abc import Callable, Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

from agent.context import TaskContext
from tasks.aws.clients import aws_session
from tasks.aws.credentials import AccessKeyCredentials
from tasks.manifests import ManifestError, ManifestSpecs, load_manifests
from tasks.manifests.parse import MAX_BYTES

from .conftest import Recorder, data

REGION = "us-east-1"
BUCKET = "manifests"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def bucket(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto_endpoint,
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    if BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="ecs/td.json",
                  Body=data("RegisterTaskDefinitionRequest.json"))
    s3.put_object(Bucket=BUCKET, Key="ecs/service.yaml", Body=data("CreateServiceRequest.yaml"))
    s3.put_object(Bucket=BUCKET, Key="ecs/big.yaml", Body=b"a: 1\n" * (MAX_BYTES // 4))
    return s3


CREDS = AccessKeyCredentials.model_validate({"type": "access_key", "accessKeyId": "testing",
                                             "secretKeyRef": "awsSecret"})


async def test_manifests_from_s3(make_ctx: Callable[..., TaskContext], recorder: Recorder,
                                 bucket: object) -> None:
    ctx = make_ctx(secrets={"awsSecret": "testing"},
                   context={"artifact": {"image": "nginx:1.27"}})
    specs = ManifestSpecs.model_validate({
        "taskDefinition": {"store": "s3", "bucket": BUCKET, "key": "ecs/td.json"},
        "serviceDefinition": {"store": "s3", "bucket": BUCKET, "key": "ecs/service.yaml",
                              "region": REGION},
    })
    async with aws_session(ctx, CREDS, REGION) as aws, ctx.log.unit("Fetch Manifests") as log:
        manifests = await load_manifests(specs, ctx, aws, log, region=REGION, cluster="c")
    assert manifests.task_definition is not None
    assert manifests.task_definition["containerDefinitions"][0]["image"] == "nginx:1.27"
    assert manifests.service_name == "myapp"
    assert "Fetching EcsTaskDefinition from S3" in recorder.lines()
    assert f"- s3://{BUCKET}/ecs/td.json" in recorder.lines()


@pytest.mark.parametrize(("key", "message"), [
    ("ecs/absent.yaml", "does not exist; check the bucket, key and region"),
    ("ecs/big.yaml", "over the 1048576-byte limit"),
])
async def test_s3_errors_name_the_object(make_ctx: Callable[..., TaskContext], bucket: object,
                                         key: str, message: str) -> None:
    ctx = make_ctx(secrets={"awsSecret": "testing"})
    specs = ManifestSpecs.model_validate(
        {"serviceDefinition": {"store": "s3", "bucket": BUCKET, "key": key}})
    async with aws_session(ctx, CREDS, REGION) as aws:
        with pytest.raises(ManifestError, match=message) as info:
            async with ctx.log.unit("Fetch Manifests") as log:
                await load_manifests(specs, ctx, aws, log, region=REGION, cluster="c")
    assert info.value.file == f"s3://{BUCKET}/{key}"
