"""What blue/green needs from ELBv2 works through the sandbox unpatched."""

from __future__ import annotations

from testkit.sandbox_fixture import Aws


def test_listener_and_rule_weights_can_be_shifted(aws: Aws) -> None:
    elbv2 = aws.client("elbv2")
    vpc = aws.client("ec2").describe_subnets(SubnetIds=aws.subnets[:1])["Subnets"][0]["VpcId"]
    lb = elbv2.create_load_balancer(Name="web", Subnets=aws.subnets[:2],
                                    SecurityGroups=[aws.security_group])
    lb_arn = lb["LoadBalancers"][0]["LoadBalancerArn"]
    blue, green = (
        elbv2.create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId=vpc,
                                  TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
        for name in ("blue", "green")
    )
    listener = elbv2.create_listener(
        LoadBalancerArn=lb_arn, Protocol="HTTP", Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": blue}],
    )["Listeners"][0]["ListenerArn"]
    rule = elbv2.create_rule(
        ListenerArn=listener, Priority=10,
        Conditions=[{"Field": "path-pattern", "Values": ["/api/*"]}],
        Actions=[{"Type": "forward", "TargetGroupArn": blue}],
    )["Rules"][0]["RuleArn"]

    weighted = [{"Type": "forward", "ForwardConfig": {"TargetGroups": [
        {"TargetGroupArn": blue, "Weight": 90}, {"TargetGroupArn": green, "Weight": 10}]}}]
    elbv2.modify_rule(RuleArn=rule, Actions=weighted)
    elbv2.modify_listener(ListenerArn=listener,
                          DefaultActions=[{"Type": "forward", "TargetGroupArn": green}])

    rules = elbv2.describe_rules(ListenerArn=listener)["Rules"]
    default = next(r for r in rules if r["IsDefault"])
    assert default["Actions"][0]["TargetGroupArn"] == green
    shifted = next(r for r in rules if r["RuleArn"] == rule)
    weights = {g["TargetGroupArn"]: g["Weight"]
               for g in shifted["Actions"][0]["ForwardConfig"]["TargetGroups"]}
    assert weights == {blue: 90, green: 10}
    groups = elbv2.describe_target_groups(LoadBalancerArn=lb_arn)["TargetGroups"]
    assert {g["TargetGroupArn"] for g in groups} == {blue, green}
