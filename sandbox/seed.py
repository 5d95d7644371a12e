"""What the docs' examples need, made in the sandbox: ``seed(endpoint_url, region)``.

The examples (docs/tasks.md, README.md, cli/demo_files) name the cluster ``ecs-tutorial``
and leave placeholders such as ``<Subnet Id>`` or ``<Prod Listener ARN>`` for the reader's
own account. ``seed`` creates matching resources and returns placeholder -> value, so
``delegate sandbox --seed`` and ``delegate demo --keep`` can print what to put in them.

Every resource is looked up by its name or Name tag before it is created, so seeding the
same sandbox twice returns the same values and creates nothing new.
"""

from __future__ import annotations

import json
from typing import Any

from sandbox.server import client

CLUSTER = "ecs-tutorial"
VPC_NAME = "ecs-tutorial-vpc"
VPC_CIDR = "10.10.0.0/16"
SUBNETS = (("ecs-tutorial-a", "10.10.1.0/24", "a"), ("ecs-tutorial-b", "10.10.2.0/24", "b"))
SECURITY_GROUP = "ecs-tutorial-sg"
LOAD_BALANCER = "myapp-alb"
# The demo's blue/green step checks the prod listener moves from target1 to target2.
BLUE_TARGET_GROUP = "target1"
GREEN_TARGET_GROUP = "target2"
PROD_PORT = 80
STAGE_PORT = 8080
EXECUTION_ROLE = "ecsTaskExecutionRole"
_ASSUME_ECS_TASKS = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
})


def seed(endpoint_url: str, region: str) -> dict[str, str]:
    """Create (or find) the tutorial's resources; return placeholder text -> value."""
    cluster = _cluster(client("ecs", endpoint_url, region))
    ec2 = client("ec2", endpoint_url, region)
    vpc = _vpc(ec2)
    subnets = [_subnet(ec2, vpc, name, cidr, region + zone) for name, cidr, zone in SUBNETS]
    group = _security_group(ec2, vpc)
    elbv2 = client("elbv2", endpoint_url, region)
    lb = _load_balancer(elbv2, subnets, group)
    blue = _target_group(elbv2, BLUE_TARGET_GROUP, vpc)
    green = _target_group(elbv2, GREEN_TARGET_GROUP, vpc)
    prod = _listener(elbv2, lb, PROD_PORT, blue)
    stage = _listener(elbv2, lb, STAGE_PORT, green)
    role = _execution_role(client("iam", endpoint_url, region))
    account = client("sts", endpoint_url, region).get_caller_identity()["Account"]
    return {
        "<Cluster>": cluster,
        "<Subnet Id>": subnets[0],
        "<Second Subnet Id>": subnets[1],
        "<Security Group Id>": group,
        "<Load Balancer>": LOAD_BALANCER,
        "<Load Balancer ARN>": lb,
        "<Prod Listener ARN>": prod,
        "<Stage Listener ARN>": stage,
        "<Blue Target Group ARN>": blue,
        "<Green Target Group ARN>": green,
        "<Execution Role ARN>": role,
        "<Account Id>": account,
        "<Region>": region,
    }


def _cluster(ecs: Any) -> str:
    found = ecs.describe_clusters(clusters=[CLUSTER])["clusters"]
    if not any(c["status"] == "ACTIVE" for c in found):
        ecs.create_cluster(clusterName=CLUSTER)
    return CLUSTER


def _named(name: str) -> list[dict[str, Any]]:
    return [{"Name": "tag:Name", "Values": [name]}]


def _tags(kind: str, name: str) -> list[dict[str, Any]]:
    return [{"ResourceType": kind, "Tags": [{"Key": "Name", "Value": name}]}]


def _vpc(ec2: Any) -> str:
    found = ec2.describe_vpcs(Filters=_named(VPC_NAME))["Vpcs"]
    if found:
        return str(found[0]["VpcId"])
    made = ec2.create_vpc(CidrBlock=VPC_CIDR, TagSpecifications=_tags("vpc", VPC_NAME))
    vpc = str(made["Vpc"]["VpcId"])
    # Fargate tasks' network interfaces get DNS names only in such a VPC (moto fails to
    # describe the task without one, as ECS would report no private DNS name).
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    return vpc


def _subnet(ec2: Any, vpc: str, name: str, cidr: str, zone: str) -> str:
    found = ec2.describe_subnets(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}, *_named(name)])["Subnets"]
    if found:
        return str(found[0]["SubnetId"])
    made = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=zone,
                             TagSpecifications=_tags("subnet", name))
    return str(made["Subnet"]["SubnetId"])


def _security_group(ec2: Any, vpc: str) -> str:
    found = ec2.describe_security_groups(Filters=[
        {"Name": "vpc-id", "Values": [vpc]},
        {"Name": "group-name", "Values": [SECURITY_GROUP]}])["SecurityGroups"]
    if found:
        return str(found[0]["GroupId"])
    made = ec2.create_security_group(GroupName=SECURITY_GROUP, VpcId=vpc,
                                     Description="ecs-tutorial tasks and load balancer")
    return str(made["GroupId"])


def _load_balancer(elbv2: Any, subnets: list[str], group: str) -> str:
    found = [lb for lb in _all(elbv2, "describe_load_balancers", "LoadBalancers")
             if lb["LoadBalancerName"] == LOAD_BALANCER]
    if found:
        return str(found[0]["LoadBalancerArn"])
    made = elbv2.create_load_balancer(Name=LOAD_BALANCER, Subnets=subnets,
                                      SecurityGroups=[group])
    return str(made["LoadBalancers"][0]["LoadBalancerArn"])


def _target_group(elbv2: Any, name: str, vpc: str) -> str:
    found = [tg for tg in _all(elbv2, "describe_target_groups", "TargetGroups")
             if tg["TargetGroupName"] == name]
    if found:
        return str(found[0]["TargetGroupArn"])
    made = elbv2.create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId=vpc,
                                     TargetType="ip")
    return str(made["TargetGroups"][0]["TargetGroupArn"])


def _listener(elbv2: Any, lb: str, port: int, group: str) -> str:
    found = [li for li in elbv2.describe_listeners(LoadBalancerArn=lb)["Listeners"]
             if li["Port"] == port]
    if found:
        return str(found[0]["ListenerArn"])
    made = elbv2.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=port,
                                 DefaultActions=[{"Type": "forward",
                                                  "TargetGroupArn": group}])
    return str(made["Listeners"][0]["ListenerArn"])


def _execution_role(iam: Any) -> str:
    try:
        return str(iam.get_role(RoleName=EXECUTION_ROLE)["Role"]["Arn"])
    except iam.exceptions.NoSuchEntityException:
        made = iam.create_role(RoleName=EXECUTION_ROLE,
                               AssumeRolePolicyDocument=_ASSUME_ECS_TASKS)
        return str(made["Role"]["Arn"])


def _all(elbv2: Any, operation: str, key: str) -> list[dict[str, Any]]:
    # By name, describe_* raises NotFound; listing everything keeps the lookup one call.
    pages = elbv2.get_paginator(operation).paginate()
    return [item for page in pages for item in page[key]]


def table(values: dict[str, str]) -> str:
    """Placeholder and value, one pair a line, aligned for reading in a terminal."""
    width = max(len(k) for k in values)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in values.items())


def exports(environment: dict[str, str], values: dict[str, str]) -> dict[str, str]:
    """The sandbox's variables for SDKs and the CLI, plus ACCOUNT_ID as the docs use it."""
    return {**environment, "AWS_DEFAULT_REGION": values["<Region>"],
            "ACCOUNT_ID": values["<Account Id>"]}
