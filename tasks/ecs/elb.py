"""The ELBv2 side of blue/green: which target group a listener (or one of its rules)
forwards to, and pointing it at another one.

A listener's default action and a rule's actions have the same shape, so both are kept as
a :class:`Route`: where the actions live (the listener's default or a rule) and the
actions as ELBv2 described them, so a rollback can put back exactly what was there,
weights included.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from agent.context import TaskFailed, UnitLog
from tasks.aws.ports import Elbv2Client
from tasks.ecs.errors import aws_errors


@dataclass(frozen=True)
class Route:
    role: str  # "Prod" or "Stage"
    listener_arn: str
    rule_arn: str | None  # the rule given, or the listener's default rule when known
    is_default: bool  # the actions are the listener's default actions
    actions: tuple[dict[str, Any], ...]
    target_group_arn: str

    def as_output(self) -> dict[str, Any]:
        return {"listenerArn": self.listener_arn, "ruleArn": self.rule_arn,
                "isDefault": self.is_default, "actions": list(self.actions),
                "targetGroupArn": self.target_group_arn}


def forward_target(actions: list[dict[str, Any]] | tuple[dict[str, Any], ...]) -> str | None:
    """The target group a forward action sends traffic to: its ``TargetGroupArn``, or in
    a weighted forward the heaviest group (the first of equals)."""
    for action in sorted(actions, key=lambda a: int(a.get("Order") or 0)):
        if action.get("Type") != "forward":
            continue
        if action.get("TargetGroupArn"):
            return str(action["TargetGroupArn"])
        groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
        best: dict[str, Any] | None = None
        for group in groups:
            if best is None or int(group.get("Weight", 1)) > int(best.get("Weight", 1)):
                best = group
        if best is not None:
            return str(best["TargetGroupArn"])
    return None


def forward_to(actions: tuple[dict[str, Any], ...] | list[dict[str, Any]],
               target_group_arn: str) -> list[dict[str, Any]]:
    """The same actions with the forward action sending everything to one target group;
    actions before it (authentication) are kept."""
    result: list[dict[str, Any]] = []
    replaced = False
    for action in actions:
        if action.get("Type") == "forward" and not replaced:
            new: dict[str, Any] = {"Type": "forward", "TargetGroupArn": target_group_arn}
            if action.get("Order") is not None:
                new["Order"] = action["Order"]
            result.append(new)
            replaced = True
        elif action.get("Type") != "forward":
            result.append(dict(action))
    if not replaced:
        result.append({"Type": "forward", "TargetGroupArn": target_group_arn})
    return result


@contextmanager
def _not_found(code: str, message: str) -> Iterator[None]:
    """Say ``message`` when ELBv2 answers ``code``; other errors go to the caller's
    ``aws_errors``."""
    try:
        yield
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == code:
            raise TaskFailed(message) from None
        raise


async def load_balancer_arn(elbv2: Elbv2Client, name_or_arn: str) -> str:
    key = "LoadBalancerArns" if name_or_arn.startswith("arn:") else "Names"
    with _not_found("LoadBalancerNotFound",
                    f"loadBalancer: load balancer {name_or_arn} does not exist in this "
                    "account and region; give the name or ARN of the load balancer that "
                    "holds the prod and stage listeners"):
        answer = await elbv2.describe_load_balancers(**{key: [name_or_arn]})
    balancers = answer.get("LoadBalancers") or []
    if not balancers:
        raise TaskFailed(f"loadBalancer: load balancer {name_or_arn} does not exist in this "
                         "account and region")
    return str(balancers[0]["LoadBalancerArn"])


async def _rules(elbv2: Elbv2Client, listener_arn: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    marker: str | None = None
    while True:
        kwargs: dict[str, Any] = {"ListenerArn": listener_arn}
        if marker:
            kwargs["Marker"] = marker
        answer = await elbv2.describe_rules(**kwargs)
        rules.extend(answer.get("Rules") or [])
        marker = answer.get("NextMarker")
        if not marker:
            return rules


async def resolve_route(elbv2: Elbv2Client, log: UnitLog, *, role: str, balancer_arn: str,
                        listener_arn: str, rule_arn: str | None) -> Route:
    """Read a listener (and rule) and the target group it forwards to."""
    field = role.lower()
    with _not_found("ListenerNotFound", f"{field}ListenerArn: listener {listener_arn} does "
                    "not exist; choose a listener of the load balancer"):
        answer = await elbv2.describe_listeners(ListenerArns=[listener_arn])
    listener = (answer.get("Listeners") or [{}])[0]
    if listener.get("LoadBalancerArn") != balancer_arn:
        raise TaskFailed(f"{field}ListenerArn: listener {listener_arn} belongs to load "
                         f"balancer {listener.get('LoadBalancerArn')}, not {balancer_arn}; "
                         "choose a listener of the load balancer given in loadBalancer")
    with aws_errors(f"DescribeRules for listener {listener_arn}"):
        try:
            rules = await _rules(elbv2, listener_arn)
        except ClientError:
            if rule_arn:
                raise
            rules = []  # a listener without rules (NLB): its default actions are enough
    default = next((r for r in rules if r.get("IsDefault")), None)
    if rule_arn:
        rule = next((r for r in rules if str(r.get("RuleArn", "")).lower() == rule_arn.lower()),
                    None)
        if rule is None:
            raise TaskFailed(f"{field}ListenerRuleArn: listener rule {rule_arn} is not a rule "
                             f"of listener {listener_arn}; choose one of its rules, or leave "
                             "it out to use the listener's default action")
        is_default = bool(rule.get("IsDefault"))
        actions = tuple(rule.get("Actions") or [])
    else:
        rule = default
        is_default = True
        actions = tuple(listener.get("DefaultActions") or [])
        if default is not None:
            log.info(f"{role} Listener Rule is not provided. Using default listener rule "
                     f"{default['RuleArn']}")
    target = forward_target(actions)
    if target is None:
        where = f"listener rule {rule_arn}" if rule_arn else f"listener {listener_arn}"
        raise TaskFailed(f"No action is present in {where} or there is no target group "
                         f"attached: the {field} listener must forward to a target group")
    return Route(role=role, listener_arn=listener_arn,
                 rule_arn=str(rule["RuleArn"]) if rule is not None else None,
                 is_default=is_default, actions=actions, target_group_arn=target)


async def current_actions(elbv2: Elbv2Client, route: Route) -> list[dict[str, Any]]:
    """The route's actions as they are now."""
    if route.is_default:
        with aws_errors(f"DescribeListeners {route.listener_arn}"):
            listeners = await elbv2.describe_listeners(ListenerArns=[route.listener_arn])
        return list((listeners.get("Listeners") or [{}])[0].get("DefaultActions") or [])
    rule_arn = _rule_of(route)
    with aws_errors(f"DescribeRules {rule_arn}"):
        rules = await elbv2.describe_rules(RuleArns=[rule_arn])
    return list((rules.get("Rules") or [{}])[0].get("Actions") or [])


async def set_actions(elbv2: Elbv2Client, route: Route, actions: list[dict[str, Any]]) -> None:
    if route.is_default:
        with aws_errors(f"ModifyListener {route.listener_arn}"):
            await elbv2.modify_listener(ListenerArn=route.listener_arn, DefaultActions=actions)
    else:
        rule_arn = _rule_of(route)
        with aws_errors(f"ModifyRule {rule_arn}"):
            await elbv2.modify_rule(RuleArn=rule_arn, Actions=actions)


def _rule_of(route: Route) -> str:
    """A route that is not a listener's default is a rule; saved rollback data that says
    otherwise is refused here rather than sent to ELB as a null ARN."""
    if route.rule_arn is None:
        raise TaskFailed(f"the {route.role.lower()} route of listener {route.listener_arn} "
                         "is not its default action but names no listener rule; the saved "
                         "blue/green data is incomplete, so the swap cannot be made or undone")
    return route.rule_arn


def describe_change(route: Route, target_group_arn: str) -> str:
    """The document's line for a swap of this route."""
    if route.is_default:
        text = f"Modifying the default Listener: {route.listener_arn}\n"
        if route.rule_arn:
            text += f" with listener rule: {route.rule_arn}\n"
        return text + f" to forward traffic to TargetGroup: {target_group_arn}"
    return (f"Modifying the Listener rule: {route.rule_arn}\n"
            f" to forward traffic to TargetGroup: {target_group_arn}")


async def target_group(elbv2: Elbv2Client, arn: str) -> dict[str, Any]:
    missing = f"Target group {arn}, which a listener forwards to, does not exist"
    with _not_found("TargetGroupNotFound", missing):
        answer = await elbv2.describe_target_groups(TargetGroupArns=[arn])
    groups: list[dict[str, Any]] = answer.get("TargetGroups") or []
    if not groups:
        raise TaskFailed(missing)
    return groups[0]


def check_port(target_group_arn: str, port: int | None,
               container_definitions: list[dict[str, Any]]) -> None:
    """Some container must map the target group's port (the document's error)."""
    if port is None:
        return  # a lambda target group has no port
    for container in container_definitions:
        for mapping in container.get("portMappings") or []:
            if mapping.get("containerPort") == port:
                return
    raise TaskFailed(
        f"No container definition has port mapping that matches the target port: {port} "
        f"for target group:\n{target_group_arn}\nCorrect the port numbers (a containerPort "
        "in the task definition's portMappings must equal the target group's port) and run "
        "the deployment again.")
