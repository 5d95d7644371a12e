"""ELBv2 as AWS keeps it: a target group belongs to every load balancer whose listener
default action or rule forwards to it, whatever created, modified or deleted that action.

moto 5.2 links a target group to a load balancer only when a listener or rule is created
(once per reference), never on ModifyListener/ModifyRule, so DescribeTargetGroups with
``LoadBalancerArn`` misses a green target group a blue/green shift has just put in place.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from moto.elbv2.models import ELBv2Backend

_WRAPPED = (
    "create_listener",
    "modify_listener",
    "delete_listener",
    "create_rule",
    "modify_rule",
    "delete_rule",
    "delete_load_balancer",
)
_installed = False


def relink(backend: ELBv2Backend) -> None:
    links: dict[str, list[str]] = {}
    for balancer in backend.load_balancers.values():
        for listener in balancer.listeners.values():
            actions = [a for rule in listener.rules.values() for a in rule.actions]
            for action in [*listener.default_actions, *actions]:
                if action.type != "forward":
                    continue
                for arn in backend._get_target_group_arns_from(action_data=action.data):
                    linked = links.setdefault(arn, [])
                    if balancer.arn not in linked:
                        linked.append(balancer.arn)
    for target_group in backend.target_groups.values():
        target_group.load_balancer_arns = links.get(target_group.arn, [])


def _relinking(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def wrapper(self: ELBv2Backend, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        relink(self)
        return result

    return wrapper


def install() -> None:
    global _installed
    if _installed:
        return
    for name in _WRAPPED:
        setattr(ELBv2Backend, name, _relinking(getattr(ELBv2Backend, name)))
    _installed = True
