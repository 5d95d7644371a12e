"""A saved route that is not a listener's default but names no rule is refused before any
ELB call: sending ``RuleArn=None`` would only fail later as a botocore parameter error."""

from __future__ import annotations

import pytest

from agent.context import TaskFailed
from tasks.ecs import elb

ROUTE = elb.Route(role="Prod", listener_arn="arn:aws:elasticloadbalancing:l/app/x/1/2",
                  rule_arn=None, is_default=False, actions=(), target_group_arn="tg")


async def test_a_rule_route_without_its_rule_is_refused_before_any_call() -> None:
    # No client is needed: the refusal comes before one would be used.
    with pytest.raises(TaskFailed, match="names no listener rule"):
        await elb.set_actions(None, ROUTE, [])  # type: ignore[arg-type]
    with pytest.raises(TaskFailed, match="names no listener rule"):
        await elb.current_actions(None, ROUTE)  # type: ignore[arg-type]
