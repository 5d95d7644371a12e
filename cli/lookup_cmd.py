"""``delegate lookup KIND``: ask the manager what a delegate sees in the account —
clusters, services, load balancers, listeners, rules, target groups, ECR repositories
and images, subnets, security groups. A table by default, ``--output json`` for scripts."""

from __future__ import annotations

from typing import Any

import click

from cli.client import Client, client_options, emit
from wire.lookups import KINDS, LOOKUP_TIMEOUT, MAX_LOOKUP_TIMEOUT, cli_flag

_KIND_HELP = "\n".join(f"  {k:16} {v.summary}" + (f" (needs {cli_flag(v.required[0])})"
                                                   if v.required else "")
                       for k, v in KINDS.items())


@click.command(epilog="\b\nKinds:\n" + _KIND_HELP)
@click.argument("kind", type=click.Choice(list(KINDS)), metavar="KIND")
@click.option("--region", envvar="AWS_REGION", show_envvar=True, required=True,
              help="AWS region to look in.")
@click.option("--selectors", "-s", multiple=True,
              help="Tags the answering delegate must have (repeat, or comma-separate).")
@click.option("--cluster", help="services: the cluster.")
@click.option("--load-balancer", "load_balancer",
              help="listeners, target-groups: the load balancer (name or ARN).")
@click.option("--listener", help="listener-rules: the listener ARN.")
@click.option("--repository", help="images: the ECR repository.")
@click.option("--vpc", help="subnets, security-groups: only this VPC's.")
@click.option("--role-arn", help="A role the delegate assumes to look (default: its own "
                                 "credentials).")
@click.option("--timeout", type=click.FloatRange(0, MAX_LOOKUP_TIMEOUT, min_open=True),
              default=LOOKUP_TIMEOUT, show_default=True, help="Seconds to wait for the answer.")
@client_options
def lookup(kind: str, region: str, selectors: tuple[str, ...], cluster: str | None,
           load_balancer: str | None, listener: str | None, repository: str | None,
           vpc: str | None, role_arn: str | None, timeout: float, client: Client,
           output: str) -> None:
    """Look something up in AWS through a delegate chosen by --selectors.

    Answers in seconds, or fails at once when no connected delegate has the selectors'
    tags (the error names them)."""
    spec = KINDS[kind]
    given = {"cluster": cluster, "loadBalancer": load_balancer, "listener": listener,
             "repository": repository, "vpc": vpc}
    params: dict[str, Any] = {"region": region, "timeout": timeout,
                              **client.account_params(),
                              **{k: v for k, v in given.items() if v}}
    tags = [t for s in selectors for t in s.split(",") if t]
    if tags:
        params["selectors"] = tags
    if role_arn:
        params["roleArn"] = role_arn
    body = client.request("GET", f"/api/lookups/{kind}", params=params)
    if output != "json" and body.get("truncated"):
        click.echo(f"(more than {len(body['items'])} found; only these are shown)", err=True)
    emit(body, output, table=(body["items"], list(spec.columns)))
