"""``delegate demo``: the whole path on embedded defaults, end to end.

Starts the sandbox (moto + ECS simulator), the reference manager and a delegate in this
process, seeds a cluster and network, uploads the product document's manifests to the
file store, and runs what a user would run: a connector check, a rolling deployment that
succeeds, and one whose image fails to start — the circuit breaker rolls ECS back, the
delegate reports FAILURE (not success), and the rollback step restores the service.
Exits 0 only when every expected outcome was seen. Everything it starts is stopped on
the way out, Ctrl-C included.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import shlex
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import click
import yaml

from cli.console_link import print_console_link
from cli.demo_services import services_act
from cli.demo_terraform import terraform_act

ACCOUNT = "demo"
CLUSTER = "ecs-tutorial"
FILES_DIR = "ECS Tutorial"


@dataclass
class Check:
    what: str
    ok: bool
    detail: str = ""


@dataclass
class Outcome:
    checks: list[Check] = field(default_factory=list)
    # What the running step submitted, so a step past its deadline can be aborted.
    current: tuple[str, str] | None = None

    def check(self, what: str, ok: bool, detail: str = "") -> bool:
        self.checks.append(Check(what, ok, detail))
        return ok


def _say(text: str = "", *, bold: bool = False) -> None:
    click.secho(text, bold=bold)


def _banner(text: str) -> None:
    _say()
    _say("=" * 78, bold=True)
    _say(f" {text}", bold=True)
    _say("=" * 78, bold=True)


def demo_file(name: str) -> str:
    return resources.files("cli").joinpath("demo_files", name).read_text()


@click.command()
@click.option("--tick", default=0.1, show_default=True,
              help="Seconds per simulator step (how fast the embedded ECS moves).")
@click.option("--quiet", is_flag=True, help="Print only the step results and the summary.")
@click.option("--keep", is_flag=True,
              help="Keep the sandbox, manager and delegate running after the demo, to try "
                   "`delegate submit` and the other commands against them (Ctrl-C stops).")
def demo(tick: float, quiet: bool, keep: bool) -> None:
    """Run the embedded sandbox, the manager and a delegate, and deploy through them."""
    try:
        import moto  # noqa: F401 - only to fail early with the fix, not mid-demo
    except ModuleNotFoundError:
        raise click.ClickException(
            "'delegate demo' needs the 'sandbox' extra (moto is not installed): "
            "pip install 'ecs-delegate[sandbox]'") from None
    try:
        code = asyncio.run(run_demo(tick=tick, show_logs=not quiet, keep=keep))
    except (KeyboardInterrupt, asyncio.CancelledError):
        click.echo("\ndemo interrupted; everything it started has been stopped", err=True)
        code = 130
    sys.exit(code)


async def run_demo(*, tick: float = 0.1, show_logs: bool = True, keep: bool = False) -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    _quiet_process_logs()
    main = asyncio.current_task()
    assert main is not None
    # SIGTERM unwinds like Ctrl-C: every component started below is stopped in order.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
    started = time.monotonic()
    outcome = Outcome()
    async with contextlib.AsyncExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="delegate-demo-")))
        env = await _start_sandbox(stack, tick)
        url, admin = await _start_manager(stack, tmp)
        env.update(MANAGER_HOST_AND_PORT=url, MANAGER_ADMIN_TOKEN=admin)
        os.environ.update(env)  # the delegate's AWS chain and the CLI client read these
        client = _client(url)
        # The manager serves from this event loop: blocking HTTP calls go to a thread.
        created = await asyncio.to_thread(client.request, "POST", "/api/tokens",
                                          json={"account_id": ACCOUNT, "name": "demo"})
        token = created["token"]
        await _start_delegate(stack, url, token)
        _say(f"sandbox AWS at {env['AWS_ENDPOINT_URL']}; manager at {url}; "
             f"delegate 'demo-delegate' registered with tags [ecs, demo]")
        network, values = await asyncio.to_thread(_seed, env["AWS_ENDPOINT_URL"])
        await asyncio.to_thread(_upload_manifests, client, network)

        steps: list[tuple[str, Callable[..., Any]]] = [
            ("1. Check the AWS connector (aws.validate_connector)", _validate_connector),
            ("2. Rolling deployment of nginx:1.27 (succeeds)", _rolling_ok),
            ("3. Rolling deployment of an image that fails to start (fails, rolls back)",
             _rolling_fails),
            ("4. Canary: one task as myappCanary, delete it, then roll out nginx:1.28",
             _canary),
            ("5. Blue/green: create the stage service, then swap the listeners",
             functools.partial(_blue_green, network=network)),
            ("6. One-off task: a database migration that exits 0 (ecs.run_task)",
             _migration),
            ("7. Provisioned: CloudFormation creates the cluster, deploy there, then a "
             "shell step attaches a CloudWatch alarm", _provisioned),
            ("8. Terraform: plan, apply that plan, check the cluster its outputs name",
             terraform_act),
            ("9. One service, two environments: apply definitions, render, deploy both",
             functools.partial(services_act, network=network)),
        ]
        from cli.demo_instances import TITLE, instances_act  # instance sync, the last act
        steps.append((TITLE, instances_act))
        for title, step in steps:
            _banner(title)
            await _run_step(title, step, client, outcome, show_logs)
        code = _summary(outcome, time.monotonic() - started)
        if keep:
            _keep_running_notice(env, values)
            await print_console_link(client, url, _say)  # the web console, one-time link
            await asyncio.Event().wait()  # until Ctrl-C
    return code


STEP_DEADLINE = 120.0


async def _run_step(title: str, step: Callable[..., Any], client: Any, outcome: Outcome,
                    show_logs: bool) -> None:
    """Run one step (blocking HTTP, so in a thread) with a deadline: a step that cannot
    finish (say, no delegate can take its task) is aborted and counted as failed."""
    outcome.current = None
    work = asyncio.ensure_future(asyncio.to_thread(step, client, outcome, show_logs))
    # Interrupted, the step's thread fails once the manager is gone; that is expected.
    work.add_done_callback(lambda f: f.cancelled() or f.exception())
    try:
        await asyncio.wait_for(asyncio.shield(work), STEP_DEADLINE)
        return
    except TimeoutError:
        pass
    reason = ""
    if outcome.current is not None:
        kind, ident = outcome.current
        view = await asyncio.to_thread(client.request, "GET", f"/api/{kind}s/{ident}")
        reason = view.get("waiting_reason") or view.get("status", "")
        await asyncio.to_thread(client.request, "POST", f"/api/{kind}s/{ident}/abort")
    outcome.check(f"{title}: finished within {STEP_DEADLINE:.0f}s", False, reason)
    await work


def _keep_running_notice(env: dict[str, str], values: dict[str, str]) -> None:
    from sandbox.seed import exports, table

    _say()
    _say("The examples' placeholders, in this sandbox:", bold=True)
    _say(table(values))
    _say()
    _say("Still running (Ctrl-C stops everything). In another shell:", bold=True)
    for name, value in exports(env, values).items():
        _say(f"  export {name}={shlex.quote(value)}")
    _say("  delegate delegates")
    _say("  delegate submit docs/examples/validate-connector.yaml --follow")
    _say("  delegate submit docs/examples/rolling-execution.yaml --follow")


# ----------------------------------------------------------------------------- plumbing


def _quiet_process_logs() -> None:
    """The demo prints deployment logs; the components' own logs only when they warn."""
    import structlog

    structlog.configure(
        processors=[structlog.processors.add_log_level,
                    structlog.dev.ConsoleRenderer(colors=False)],
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )


async def _start_sandbox(stack: contextlib.AsyncExitStack, tick: float) -> dict[str, str]:
    from sandbox import Sandbox

    box = await asyncio.to_thread(lambda: Sandbox(tick=tick).start())
    stack.callback(box.stop)
    return dict(box.environment())


async def _start_manager(stack: contextlib.AsyncExitStack, tmp: Path) -> tuple[str, str]:
    from manager.app import ManagerServer
    from manager.settings import Settings

    admin = secrets.token_urlsafe(24)
    settings = Settings(db_path=tmp / "manager.db", admin_token=admin,
                        secret_key=secrets.token_urlsafe(32), heartbeat_interval=2.0,
                        lease_ttl=10.0)
    server = ManagerServer(settings, host="127.0.0.1", port=0)
    url = await server.start()
    stack.push_async_callback(server.stop)
    return url, admin


async def _start_delegate(stack: contextlib.AsyncExitStack, url: str, token: str) -> None:
    from agent.app import Delegate
    from agent.config import load_settings

    settings = load_settings(account_id=ACCOUNT, delegate_token=token,
                             delegate_name="demo-delegate", delegate_tags=["ecs", "demo"],
                             manager_url=url, max_concurrent_tasks=10)
    delegate = Delegate(settings, reconnect_min=0.1)
    task = asyncio.create_task(delegate.run(), name="demo-delegate")

    async def stop() -> None:
        await delegate.shutdown(grace=5)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)

    stack.push_async_callback(stop)
    deadline = time.monotonic() + 20
    while not delegate.session.registered.is_set():
        if task.done():
            task.result()
        if time.monotonic() > deadline:
            raise click.ClickException("the delegate did not register within 20s")
        await asyncio.sleep(0.02)


def _client(url: str) -> Any:
    from cli.client import Client

    return Client(url)


@dataclass(frozen=True)
class Network:
    subnet: str
    security_group: str
    load_balancer: str
    prod_listener: str
    stage_listener: str


def _seed(endpoint: str) -> tuple[Network, dict[str, str]]:
    """A cluster, a VPC with two subnets and a security group, and an ALB with a prod
    listener (:80 -> target1) and a stage listener (:8080 -> target2), as the document
    sets them up; the same resources ``delegate sandbox --seed`` makes."""
    from sandbox.seed import seed

    values = seed(endpoint, os.environ.get("AWS_REGION", "us-east-1"))
    _say(f"seeded cluster {CLUSTER}, subnet {values['<Subnet Id>']}, security group "
         f"{values['<Security Group Id>']}, load balancer {values['<Load Balancer>']} with "
         f"listeners :80 -> target1 (prod) and :8080 -> target2 (stage)")
    network = Network(values["<Subnet Id>"], values["<Security Group Id>"],
                      values["<Load Balancer>"], values["<Prod Listener ARN>"],
                      values["<Stage Listener ARN>"])
    return network, values


def _upload_manifests(client: Any, network: Network) -> None:
    def filled(name: str) -> str:
        return (demo_file(name).replace("<Security Group Id>", network.security_group)
                .replace("<Subnet Id>", network.subnet))

    files = {name: filled(name) for name in (
        "RegisterTaskDefinitionRequest.yaml", "CreateServiceRequest.yaml",
        "ScalableTarget.yaml", "ScalingPolicy.yaml", "BlueGreenServiceRequest.yaml",
        "RunTaskRequest.yaml", "ecs-cluster.yaml", "attach-alarm.sh")}
    for name, text in files.items():
        path = f"account:/{FILES_DIR}/{name}"
        client.request("PUT", "/api/files", params={"account": ACCOUNT, "path": path},
                       content=text.encode())
        _say(f"uploaded {path} to the manager's file store")


def _follow(client: Any, kind: str, ident: str, show_logs: bool,
            outcome: Outcome) -> dict[str, Any]:
    from cli.client import follow_execution as _follow_execution
    from cli.client import follow_task as _follow_task

    outcome.current = (kind, ident)
    if kind == "task":
        _follow_task(client, ident, show_logs)
        return dict(client.request("GET", f"/api/tasks/{ident}"))
    return _follow_execution(client, ident, show_logs)


def _execution(image: str, name: str = "rolling-execution.yaml",
               network: Network | None = None) -> dict[str, Any]:
    text = demo_file(name)
    if network is not None:
        text = (text.replace("<Load Balancer>", network.load_balancer)
                .replace("<Prod Listener ARN>", network.prod_listener)
                .replace("<Stage Listener ARN>", network.stage_listener))
    spec: dict[str, Any] = yaml.safe_load(text)
    spec["artifact"]["image"] = image
    return spec


def _aws(service: str) -> Any:
    from sandbox import client as sandbox_client

    return sandbox_client(service, os.environ["AWS_ENDPOINT_URL"], os.environ["AWS_REGION"])


def _service(client: Any, name: str = "myapp") -> dict[str, Any]:
    services: list[dict[str, Any]] = _aws("ecs").describe_services(
        cluster=CLUSTER, services=[name])["services"]
    return services[0] if services else {}


def _prod_target(network: Network) -> str:
    listener = _aws("elbv2").describe_listeners(ListenerArns=[network.prod_listener])
    arn: str = listener["Listeners"][0]["DefaultActions"][0]["TargetGroupArn"]
    return arn.split("/")[-2]  # the target group's name


def _policies() -> list[str]:
    aas = _aws("application-autoscaling")
    found = aas.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"]
    return [p["PolicyName"] for p in found
            if p["ResourceId"] == f"service/{CLUSTER}/myapp"]


# ----------------------------------------------------------------------------- the steps


def _validate_connector(client: Any, outcome: Outcome, show_logs: bool) -> None:
    created = client.request("POST", "/api/tasks", json={
        "type": "aws.validate_connector", "selectors": ["ecs"],
        "params": {"region": os.environ["AWS_REGION"], "credentials": {"type": "inherit"}}})
    task = _follow(client, "task", created["task_id"], show_logs, outcome)
    clusters = (task.get("output") or {}).get("clusters", [])
    outcome.check("connector check succeeds and lists the cluster",
                  task["status"] == "SUCCESS" and any(CLUSTER in c for c in clusters),
                  f"{task['status']}, clusters {clusters}")


def _rolling_ok(client: Any, outcome: Outcome, show_logs: bool) -> None:
    created = client.request("POST", "/api/executions", json=_execution("nginx:1.27"))
    view = _follow(client, "execution", created["execution_id"], show_logs, outcome)
    service = _service(client)
    td = service.get("taskDefinition", "")
    outcome.check("rolling deployment succeeds", view["status"] == "SUCCESS",
                  view["status"])
    outcome.check("service myapp is steady on the new task definition",
                  service.get("runningCount") == service.get("desiredCount") == 1
                  and len(service.get("deployments", [])) == 1,
                  f"{td.rsplit('/', 1)[-1]}, {service.get('runningCount')}/"
                  f"{service.get('desiredCount')} running")
    outcome.check("scaling policy P1 attached after steady state", _policies() == ["P1"],
                  f"{_policies()}")
    _LAST_GOOD["td"] = td


_LAST_GOOD: dict[str, str] = {}


def _rolling_fails(client: Any, outcome: Outcome, show_logs: bool) -> None:
    created = client.request("POST", "/api/executions",
                             json=_execution("nginx:fail-to-start"))
    view = _follow(client, "execution", created["execution_id"], show_logs, outcome)
    runs = {r["step_id"]: r for r in view["runs"]}
    deploy = client.request("GET", f"/api/tasks/{runs['deploy']['task_id']}")
    service = _service(client)
    outcome.check("the failed deployment is reported as FAILED, not success",
                  deploy["status"] == "FAILED", f"{deploy['status']}: {deploy.get('error')}")
    outcome.check("the rollback step ran and succeeded",
                  "rollback" in runs and runs["rollback"]["status"] == "SUCCESS",
                  str({k: r["status"] for k, r in runs.items()}))
    outcome.check("the execution ends rolled back", view["status"] in ("FAILED",
                                                                       "ROLLED_BACK"),
                  view["status"])
    outcome.check("service myapp is back on the previous task definition",
                  service.get("taskDefinition") == _LAST_GOOD.get("td")
                  and service.get("runningCount") == service.get("desiredCount"),
                  f"{service.get('taskDefinition', '').rsplit('/', 1)[-1]}, "
                  f"{service.get('runningCount')}/{service.get('desiredCount')} running")
    outcome.check("scaling policy restored by the rollback", _policies() == ["P1"],
                  f"{_policies()}")


def _canary(client: Any, outcome: Outcome, show_logs: bool) -> None:
    created = client.request("POST", "/api/executions",
                             json=_execution("nginx:1.28", "canary-execution.yaml"))
    view = _follow(client, "execution", created["execution_id"], show_logs, outcome)
    runs = {r["step_id"]: r for r in view["runs"]}
    canary = client.request("GET", f"/api/tasks/{runs['canary']['task_id']}") \
        if "canary" in runs else {}
    deleted = client.request("GET", f"/api/tasks/{runs['canaryDelete']['task_id']}") \
        if "canaryDelete" in runs else {}
    outcome.check("canary deployed as myappCanary with one task",
                  canary.get("status") == "SUCCESS"
                  and (canary.get("output") or {}).get("canaryServiceName") == "myappCanary",
                  str(canary.get("status")))
    outcome.check("canary service deleted (INACTIVE)",
                  (deleted.get("output") or {}).get("deleted") is True
                  and _service(client, "myappCanary").get("status") == "INACTIVE",
                  str(_service(client, "myappCanary").get("status")))
    service = _service(client)
    outcome.check("then the rolling deployment of nginx:1.28 succeeds",
                  view["status"] == "SUCCESS" and service.get("runningCount") == 1,
                  f"{view['status']}, {service.get('taskDefinition', '').rsplit('/', 1)[-1]}")


def _blue_green(client: Any, outcome: Outcome, show_logs: bool, network: Network) -> None:
    before = _prod_target(network)
    _say(f"prod listener :80 forwards to {before}")
    created = client.request("POST", "/api/executions", json=_execution(
        "nginx:1.28", "bluegreen-execution.yaml", network))
    view = _follow(client, "execution", created["execution_id"], show_logs, outcome)
    after = _prod_target(network)
    _say(f"\nprod listener :80 forwarded to {before} before the swap, to {after} after it")
    outcome.check("blue/green create and swap succeed", view["status"] == "SUCCESS",
                  view["status"])
    outcome.check("prod traffic moved to the new service's target group",
                  before == "target1" and after == "target2", f"{before} -> {after}")
    new = _service(client, "myapp__1")
    tags = {t["key"]: t["value"] for t in _aws("ecs").list_tags_for_resource(
        resourceArn=new.get("serviceArn", "arn:aws:ecs:::service/none"))["tags"]} \
        if new else {}
    outcome.check("the new service is tagged BG_VERSION=BLUE and runs 2 tasks",
                  tags.get("BG_VERSION") == "BLUE" and new.get("runningCount") == 2,
                  f"{new.get('serviceName')}: {tags}, {new.get('runningCount')} running")


def _migration(client: Any, outcome: Outcome, show_logs: bool) -> None:
    spec = yaml.safe_load(demo_file("migration-task.yaml"))
    created = client.request("POST", "/api/tasks", json=spec)
    task = _follow(client, "task", created["task_id"], show_logs, outcome)
    tasks = (task.get("output") or {}).get("tasks", [])
    outcome.check("the migration task ran and exited 0",
                  task["status"] == "SUCCESS" and len(tasks) == 1,
                  f"{task['status']}: {tasks}")


def _provisioned(client: Any, outcome: Outcome, show_logs: bool) -> None:
    spec = yaml.safe_load(demo_file("provisioned-execution.yaml"))
    created = client.request("POST", "/api/executions", json=spec)
    view = _follow(client, "execution", created["execution_id"], show_logs, outcome)
    runs = {r["step_id"]: r for r in view["runs"]}
    infra = view.get("infrastructure") or {}
    outcome.check("the stack creates cluster ecs-provisioned and the infrastructure maps "
                  "to its outputs",
                  runs.get("provision", {}).get("status") == "SUCCESS"
                  and infra.get("cluster") == "ecs-provisioned",
                  f"{runs.get('provision', {}).get('status')}, infrastructure {infra}")
    live = _aws("ecs").describe_services(cluster="ecs-provisioned", services=["myapp"])
    service = (live["services"] or [{}])[0]
    outcome.check("myapp deploys to the provisioned cluster",
                  runs.get("deploy", {}).get("status") == "SUCCESS"
                  and service.get("runningCount") == 1, str(service.get("status")))
    alarms = _aws("cloudwatch").describe_alarms(AlarmNames=["myapp-cpu-high"])["MetricAlarms"]
    policies = _aws("application-autoscaling").describe_scaling_policies(
        ServiceNamespace="ecs", ResourceId="service/ecs-provisioned/myapp")["ScalingPolicies"]
    outcome.check("the shell step's AWS CLI attached alarm myapp-cpu-high to the policy",
                  view["status"] == "SUCCESS" and bool(alarms) and bool(policies)
                  and alarms[0].get("AlarmActions") == [policies[0]["PolicyARN"]],
                  f"{view['status']}, alarms {[a['AlarmName'] for a in alarms]}")


# ----------------------------------------------------------------------------- summary


def _summary(outcome: Outcome, seconds: float) -> int:
    _banner(f"Summary ({seconds:.1f}s)")
    for c in outcome.checks:
        mark = click.style("ok  ", fg="green") if c.ok else click.style("FAIL", fg="red")
        click.echo(f" {mark} {c.what}" + (f"  [{c.detail}]" if c.detail else ""))
    failed = [c for c in outcome.checks if not c.ok]
    _say()
    if failed:
        _say(f"{len(failed)} of {len(outcome.checks)} expected outcomes were not seen.")
        return 1
    _say(f"All {len(outcome.checks)} expected outcomes seen.")
    return 0
