"""The frame every ECS handler runs in, written once.

Each ECS step records where it works (cluster, Region) in its outputs first, so even a
step that fails at once reports them; then works inside one AWS session; opens its
clients, where assuming a role can fail, with that failure said as "Connecting to AWS
failed: ..." rather than a traceback; and watches services through the shared
describer of its credentials, Region and cluster. ``ecs_step`` does all of that:

    async def canary_deploy(ctx: TaskContext[CanaryDeployParams]) -> dict[str, Any]:
        async with ecs_step(ctx) as step:
            async with ctx.log.unit("Fetch Manifests") as log:
                requests = await step.fetch_manifests(log, ctx.params.manifests, "...")
            ecs = await step.ecs()
            async with ctx.log.unit("Deploy") as log, step.describer(ecs) as describer:
                ...
        return dict(ctx.output)

What the handler decides (its units, what it checks before the first change, its
rollback data) stays in the handler.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from agent.context import TaskContext, UnitLog
from tasks.aws.clients import AwsSessionFactory, aws_session
from tasks.aws.ports import AutoScalingClient, EcsClient, Elbv2Client
from tasks.ecs.describe import SharedDescriber, shared_describer
from tasks.ecs.errors import aws_errors
from tasks.ecs.fetch import fetch_step_manifests
from tasks.ecs.params import EcsTarget
from tasks.manifests import Manifests, ManifestSpecs

E = TypeVar("E", bound=EcsTarget)

CONNECTING = "Connecting to AWS"


@dataclass(frozen=True)
class EcsStep(Generic[E]):
    """One ECS step's access to AWS, for the life of its session."""

    ctx: TaskContext[E]
    aws: AwsSessionFactory

    @property
    def params(self) -> E:
        return self.ctx.params

    # The session keeps one client per service, so asking again costs nothing.
    async def ecs(self) -> EcsClient:
        with aws_errors(CONNECTING):
            return await self.aws.ecs()

    async def autoscaling(self) -> AutoScalingClient:
        with aws_errors(CONNECTING):
            return await self.aws.autoscaling()

    async def elbv2(self) -> Elbv2Client:
        with aws_errors(CONNECTING):
            return await self.aws.elbv2()

    def describer(self, ecs: EcsClient) -> AbstractAsyncContextManager[SharedDescriber]:
        """Join the DescribeServices coalescer of this step's credentials, Region and
        cluster for the block."""
        params = self.params
        return shared_describer(ecs, credentials=params.credentials, region=params.region,
                                cluster=params.cluster)

    async def fetch_manifests(self, log: UnitLog, specs: ManifestSpecs, step: str, *,
                              needs_service: bool = True) -> Manifests:
        """The step's manifests, checked as ``fetch_step_manifests`` says."""
        return await fetch_step_manifests(self.ctx, self.aws, log, self.params, specs, step,
                                          needs_service=needs_service)


@asynccontextmanager
async def ecs_step(ctx: TaskContext[E], **outputs: Any) -> AsyncIterator[EcsStep[E]]:
    """Record the step's cluster and Region (and ``outputs``, such as ``rolledBack=False``)
    in its outputs, then open its AWS session for the block. Opening the session calls
    nothing: a step that finds nothing to do makes no AWS call."""
    params = ctx.params
    ctx.output.update(cluster=params.cluster, region=params.region, **outputs)
    async with aws_session(ctx, params.credentials, params.region) as aws:
        yield EcsStep(ctx, aws)
