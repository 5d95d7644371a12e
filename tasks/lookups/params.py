"""Params of the look-up task types: where to look (Region, credentials) and what of."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from tasks.aws.credentials import Credentials, InheritCredentials


class LookupParams(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    region: str = Field(min_length=1, description="AWS region, e.g. us-east-1")
    credentials: Credentials = Field(default_factory=InheritCredentials,
                                     description="connector credentials")


class ClusterParams(LookupParams):
    cluster: str = Field(min_length=1, description="cluster name or ARN")


class LoadBalancerParams(LookupParams):
    load_balancer: str = Field(min_length=1, alias="loadBalancer",
                               description="load balancer name or ARN")


class OptionalLoadBalancerParams(LookupParams):
    load_balancer: str | None = Field(default=None, alias="loadBalancer",
                                      description="only the target groups of this load "
                                                  "balancer (name or ARN)")


class ListenerParams(LookupParams):
    listener: str = Field(min_length=1, description="listener ARN")


class RepositoryParams(LookupParams):
    repository: str = Field(min_length=1, description="ECR repository name")


class VpcParams(LookupParams):
    vpc: str | None = Field(default=None, description="only this VPC's (vpc-...)")
