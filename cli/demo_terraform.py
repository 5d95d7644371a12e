"""`delegate demo`'s Terraform act: a plan, an apply of that plan whose outputs become the
execution's infrastructure, and a shell step that checks the cluster it was given. The
configuration (``demo_files/ecs-infra.tf``) uses only built-in ``terraform_data``
resources, so no provider is downloaded. Without a ``terraform`` binary on PATH the act
says so and adds no outcome: the demo is not failed for a tool the machine lacks."""

from __future__ import annotations

import shutil
from typing import Any

import yaml

CONFIGURATION = "ecs-infra.tf"


def terraform_act(client: Any, outcome: Any, show_logs: bool) -> None:
    from cli import demo
    from cli.demo import ACCOUNT, FILES_DIR

    if shutil.which("terraform") is None:
        demo._say("terraform is not on this machine's PATH: this act is skipped (install "
                  "terraform, or use the delegate's image, which has it)")
        return
    path = f"account:/{FILES_DIR}/{CONFIGURATION}"
    client.request("PUT", "/api/files", params={"account": ACCOUNT, "path": path},
                   content=demo.demo_file(CONFIGURATION).encode())
    demo._say(f"uploaded {path} to the manager's file store")
    spec = yaml.safe_load(demo.demo_file("terraform-execution.yaml"))
    created = client.request("POST", "/api/executions", json=spec)
    view = demo._follow(client, "execution", created["execution_id"], show_logs, outcome)
    runs = {r["step_id"]: r for r in view["runs"]}
    status = {k: r["status"] for k, r in runs.items()}
    applied = runs.get("apply", {}).get("output") or {}
    infra = view.get("infrastructure") or {}
    outcome.check("terraform plan, then apply of that plan, succeed",
                  status.get("plan") == status.get("apply") == "SUCCESS", str(status))
    outcome.check("the apply's outputs are the execution's infrastructure",
                  infra.get("cluster") == "ecs-tutorial" == applied.get("cluster_name")
                  and infra.get("region") == "us-east-1", f"infrastructure {infra}")
    outcome.check("its sensitive output is masked and marked sensitive",
                  applied.get("sensitiveOutputs") == ["connection_token"]
                  and applied.get("connection_token") == "(sensitive)",
                  f"sensitiveOutputs {applied.get('sensitiveOutputs')}")
    where = runs.get("where", {}).get("output") or {}
    outcome.check("the shell step found the cluster it was given ACTIVE",
                  view["status"] == "SUCCESS" and where.get("CLUSTER_STATUS") == "ACTIVE",
                  f"{view['status']}, {where.get('CLUSTER_STATUS')}")
