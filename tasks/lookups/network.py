"""Look-ups of the VPC, for a service's network configuration: subnets and security
groups, of every VPC or of one."""

from __future__ import annotations

from typing import Any

from agent.context import TaskContext
from tasks.aws.clients import AwsSessionFactory
from tasks.lookups.common import Items, name_tag, paged
from tasks.lookups.params import VpcParams


def _vpc_filter(vpc: str | None) -> dict[str, Any]:
    return {"Filters": [{"Name": "vpc-id", "Values": [vpc]}]} if vpc else {}


async def subnets(ctx: TaskContext[VpcParams], aws: AwsSessionFactory
                  ) -> tuple[Items, bool]:
    ec2 = await aws.ec2()
    found, truncated = await paged(ec2.get_paginator("describe_subnets"), "Subnets",
                                   "EC2 DescribeSubnets", **_vpc_filter(ctx.params.vpc))
    items = [{"subnetId": s.get("SubnetId"), "name": name_tag(s.get("Tags")),
              "vpcId": s.get("VpcId"), "availabilityZone": s.get("AvailabilityZone"),
              "cidr": s.get("CidrBlock"),
              "availableIps": s.get("AvailableIpAddressCount"),
              "default": bool(s.get("DefaultForAz"))} for s in found]
    return sorted(items, key=lambda i: (str(i["vpcId"]), str(i["availabilityZone"]))), \
        truncated


async def security_groups(ctx: TaskContext[VpcParams], aws: AwsSessionFactory
                          ) -> tuple[Items, bool]:
    ec2 = await aws.ec2()
    found, truncated = await paged(ec2.get_paginator("describe_security_groups"),
                                   "SecurityGroups", "EC2 DescribeSecurityGroups",
                                   **_vpc_filter(ctx.params.vpc))
    items = [{"groupId": g.get("GroupId"), "name": g.get("GroupName"),
              "vpcId": g.get("VpcId"), "description": g.get("Description")}
             for g in found]
    return sorted(items, key=lambda i: (str(i["vpcId"]), str(i["name"]))), truncated
