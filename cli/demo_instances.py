"""The demo's last act: instance sync. One more deployment of myapp whose image fails to
start, this time with no rollback step — ECS's circuit breaker alone rolls the service
back, as it would for a deployment nobody watches — then a sync, and the instances of
every service the demo deployed: myapp shown as drift (running the old revision, not the
one we deployed), the deleted canary service marked deleted."""

from __future__ import annotations

from typing import Any

import click

from cli.instances_cmd import print_instances

TITLE = ("10. Instance sync: myapp's circuit breaker rolls back on its own, then what runs "
         "where (drift shown)")


def instances_act(client: Any, outcome: Any, show_logs: bool) -> None:
    from cli.demo import CLUSTER, _execution, _follow, _service

    spec = _execution("nginx:fail-to-start")
    spec["rollbackSteps"] = []  # the circuit breaker is all that undoes it
    spec["name"] = "deploy myapp (no rollback step)"
    created = client.request("POST", "/api/executions", json=spec)
    view = _follow(client, "execution", created["execution_id"], show_logs, outcome)
    before = _service(client).get("taskDefinition", "")
    sent = client.request("POST", "/api/instances/sync", params={"wait": 60})
    services = client.request("GET", "/api/instances")["services"]
    click.echo()
    print_instances(services)
    by_name = {(s["cluster"], s["service"]): s for s in services}
    myapp = by_name.get((CLUSTER, "myapp"), {})
    outcome.check("the deployment fails and ECS's circuit breaker rolls myapp back",
                  view["status"] == "FAILED", view["status"])
    # Every act's deployments share selectors and credentials: one reach per cluster.
    clusters = {(s["region"], s["cluster"]) for s in services}
    outcome.check("one sync task per cluster, none unreachable",
                  len(sent["submitted"]) == len(clusters) and not sent["unreachable"],
                  f"{len(sent['submitted'])} sent for {len(clusters)} clusters, "
                  f"{sent['unreachable']}")
    outcome.check("myapp is shown as drift: it runs the old revision, not the one deployed",
                  myapp.get("state") == "drift"
                  and myapp.get("service_revision") == before.rsplit("/", 1)[-1]
                  and {t["revision"] for t in myapp.get("instances", [])}
                  == {myapp.get("service_revision")},
                  str(myapp.get("reason")))
    _check_running(outcome, services, by_name)


def _check_running(outcome: Any, services: list[dict[str, Any]],
                   by_name: dict[tuple[str, str], dict[str, Any]]) -> None:
    from cli.demo import CLUSTER

    live = [s for s in services if s["state"] != "deleted"]
    right = all(s["instances"] and len(s["instances"]) == s["running"]
                and all(t["revision"] == s["service_revision"] for t in s["instances"])
                for s in live)
    outcome.check("every deployed service's running tasks are listed with their revision",
                  right and {s["service"] for s in live} >= {"myapp", "myapp__1"},
                  ", ".join(f"{s['service']}: {len(s['instances'])} on "
                            f"{s['service_revision']}" for s in live))
    canary = by_name.get((CLUSTER, "myappCanary"), {})
    outcome.check("the deleted canary service myappCanary is marked deleted",
                  canary.get("state") == "deleted", str(canary.get("state")))
