"""``sandbox.seed``: the docs' tutorial resources, made once, found again, all real."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from sandbox import Sandbox, client
from sandbox.seed import CLUSTER, LOAD_BALANCER, SECURITY_GROUP, VPC_NAME, seed

ROOT = Path(__file__).resolve().parents[2]


def _counts(box: Sandbox, values: dict[str, str]) -> dict[str, int]:
    ec2, elbv2 = box.client("ec2"), box.client("elbv2")
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [VPC_NAME]}])["Vpcs"]
    vpc = vpcs[0]["VpcId"]
    in_vpc = [{"Name": "vpc-id", "Values": [vpc]}]
    groups = ec2.describe_security_groups(
        Filters=[*in_vpc, {"Name": "group-name", "Values": [SECURITY_GROUP]}])
    lbs = [lb for lb in elbv2.describe_load_balancers()["LoadBalancers"]
           if lb["LoadBalancerName"] == LOAD_BALANCER]
    return {
        "vpcs": len(vpcs),
        "subnets": len(ec2.describe_subnets(Filters=in_vpc)["Subnets"]),
        "security groups": len(groups["SecurityGroups"]),
        "load balancers": len(lbs),
        "target groups": len(elbv2.describe_target_groups()["TargetGroups"]),
        "listeners": len(elbv2.describe_listeners(
            LoadBalancerArn=values["<Load Balancer ARN>"])["Listeners"]),
        "clusters": len(box.client("ecs").list_clusters()["clusterArns"]),
        "roles": len(box.client("iam").list_roles()["Roles"]),
    }


def _forwards_to(elbv2: Any, listener: str) -> tuple[int, str]:
    found = elbv2.describe_listeners(ListenerArns=[listener])["Listeners"][0]
    return found["Port"], found["DefaultActions"][0]["TargetGroupArn"]


def test_seed_creates_what_the_examples_name_and_every_value_exists(sandbox: Sandbox) -> None:
    sandbox.reset()
    values = seed(sandbox.endpoint_url, sandbox.region)

    ecs, ec2, elbv2 = sandbox.client("ecs"), sandbox.client("ec2"), sandbox.client("elbv2")
    assert values["<Cluster>"] == CLUSTER
    assert ecs.describe_clusters(clusters=[CLUSTER])["clusters"][0]["status"] == "ACTIVE"
    subnets = ec2.describe_subnets(
        SubnetIds=[values["<Subnet Id>"], values["<Second Subnet Id>"]])["Subnets"]
    assert len({s["AvailabilityZone"] for s in subnets}) == 2  # an ALB needs two zones
    group = ec2.describe_security_groups(GroupIds=[values["<Security Group Id>"]])
    assert group["SecurityGroups"][0]["VpcId"] == subnets[0]["VpcId"]
    lb = elbv2.describe_load_balancers(Names=[values["<Load Balancer>"]])["LoadBalancers"][0]
    assert lb["LoadBalancerArn"] == values["<Load Balancer ARN>"]
    assert _forwards_to(elbv2, values["<Prod Listener ARN>"]) == (
        80, values["<Blue Target Group ARN>"])
    assert _forwards_to(elbv2, values["<Stage Listener ARN>"]) == (
        8080, values["<Green Target Group ARN>"])
    role = sandbox.client("iam").get_role(RoleName="ecsTaskExecutionRole")["Role"]
    assert role["Arn"] == values["<Execution Role ARN>"]
    assert values["<Account Id>"] in role["Arn"]
    assert values["<Region>"] == sandbox.region


def test_a_second_seed_returns_the_same_values_and_creates_nothing(sandbox: Sandbox) -> None:
    sandbox.reset()
    first = seed(sandbox.endpoint_url, sandbox.region)
    before = _counts(sandbox, first)

    second = seed(sandbox.endpoint_url, sandbox.region)

    assert second == first
    assert _counts(sandbox, second) == before
    assert before["subnets"] == 2 and before["listeners"] == 2
    assert before["target groups"] == 2 and before["load balancers"] == 1


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The process's first stdout line, or fail after ``timeout`` seconds (no hang)."""
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no output within {timeout}s") from None


def test_cli_seed_json_prints_the_placeholders_and_exports() -> None:
    # Its own process on a free port: its moto state is not the session sandbox's.
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "sandbox", "--port", "0", "--tick", "0.05", "--seed",
         "-o", "json"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        answer = json.loads(_first_line(process, 60))
        values, exports = answer["placeholders"], answer["exports"]
        assert exports["ACCOUNT_ID"] == values["<Account Id>"] == "123456789012"
        assert exports["AWS_DEFAULT_REGION"] == exports["AWS_REGION"] == values["<Region>"]
        assert {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(exports)
        elbv2 = client("elbv2", exports["AWS_ENDPOINT_URL"], exports["AWS_REGION"])
        listener = elbv2.describe_listeners(ListenerArns=[values["<Stage Listener ARN>"]])
        assert listener["Listeners"][0]["Port"] == 8080
        ec2 = client("ec2", exports["AWS_ENDPOINT_URL"], exports["AWS_REGION"])
        assert ec2.describe_subnets(SubnetIds=[values["<Subnet Id>"]])["Subnets"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_the_seeded_network_runs_a_fargate_task(sandbox: Sandbox) -> None:
    # Tasks in the seeded VPC need DNS hostnames there, or describing them fails.
    sandbox.reset()
    values = seed(sandbox.endpoint_url, sandbox.region)
    ecs = sandbox.client("ecs")
    ecs.register_task_definition(
        family="seeded", networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
        cpu="256", memory="512", executionRoleArn=values["<Execution Role ARN>"],
        containerDefinitions=[{"name": "app", "image": "nginx:1.27", "essential": True}])
    started = ecs.run_task(cluster=CLUSTER, taskDefinition="seeded", launchType="FARGATE",
                           networkConfiguration={"awsvpcConfiguration": {
                               "subnets": [values["<Subnet Id>"]],
                               "securityGroups": [values["<Security Group Id>"]]}})
    assert started["failures"] == []
    described = ecs.describe_tasks(cluster=CLUSTER, tasks=[started["tasks"][0]["taskArn"]])
    assert described["tasks"][0]["taskArn"] == started["tasks"][0]["taskArn"]
