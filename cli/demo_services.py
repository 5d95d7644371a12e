"""``delegate demo``'s act for issue 11: one service, two environments.

Pushes two images to the sandbox's ECR, applies the webapp service, the pre-production
and production environments, their infrastructure definitions and production's
overrides (twice: the second apply changes nothing), shows what each environment will
deploy and which override decided it (``delegate execution render``), then deploys the
same service to both by reference, the image resolved by tag and pinned to its digest."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import yaml

from cli.render_cmd import explain

REPOSITORY = "myorg/webapp"
CLUSTERS = {"pre-production": "ecs-preprod", "production": "ecs-prod"}
WANTED = {"pre-production": (1, "256", "debug"), "production": (2, "512", "warn")}


def _push_images(aws: Any) -> dict[str, str]:
    ecr = aws("ecr")
    ecr.create_repository(repositoryName=REPOSITORY)
    digests = {}
    for tag in ("1.0.0", "1.1.0"):
        # ECR's digest (moto's too) covers the layers: one per tag, so each tag differs.
        layer = "sha256:" + hashlib.sha256(f"{REPOSITORY}:{tag}".encode()).hexdigest()
        manifest = json.dumps({"schemaVersion": 2, "layers": [{"digest": layer, "size": 1}],
                               "mediaType":
                               "application/vnd.docker.distribution.manifest.v2+json"})
        image = ecr.put_image(repositoryName=REPOSITORY, imageManifest=manifest,
                              imageTag=tag)["image"]
        digests[tag] = image["imageId"]["imageDigest"]
    return digests


def _deployed(aws: Any, cluster: str) -> tuple[int, str, dict[str, str], str]:
    ecs = aws("ecs")
    services = ecs.describe_services(cluster=cluster, services=["webapp"])["services"]
    if not services:
        return 0, "", {}, ""
    td = ecs.describe_task_definition(taskDefinition=services[0]["taskDefinition"])[
        "taskDefinition"]
    container = td["containerDefinitions"][0]
    env = {e["name"]: e["value"] for e in container.get("environment", [])}
    return services[0]["desiredCount"], td.get("cpu", ""), env, container["image"]


def _apply(client: Any, outcome: Any, text: str, say: Any) -> None:
    docs = list(yaml.safe_load_all(text))
    for attempt in ("first", "second"):
        results = client.request("POST", "/api/definitions/apply",
                                 json={"documents": docs})["results"]
        say(f"delegate apply -f webapp-definitions.yaml ({attempt} time):")
        for r in results:
            say(f"  {r['kind'].lower()}/{r['name']} {r['action']} (revision {r['revision']})")
    outcome.check("applying the same definitions again reports every one unchanged",
                  {r["action"] for r in results} == {"unchanged"},
                  ", ".join(sorted({r["action"] for r in results})))


def services_act(client: Any, outcome: Any, show_logs: bool, *, network: Any) -> None:
    from cli import demo

    aws = demo._aws
    for cluster in CLUSTERS.values():
        aws("ecs").create_cluster(clusterName=cluster)
    digests = _push_images(aws)
    demo._say(f"pushed {REPOSITORY}:1.0.0 and :1.1.0 to the sandbox's ECR")

    def filled(name: str) -> str:
        return (demo.demo_file(name).replace("<Security Group Id>", network.security_group)
                .replace("<Subnet Id>", network.subnet))

    for name in ("webapp-task.yaml", "webapp-service.yaml"):
        client.request("PUT", "/api/files", content=filled(name).encode(),
                       params={"account": demo.ACCOUNT,
                               "path": f"account:/{demo.FILES_DIR}/{name}"})
    _apply(client, outcome, filled("webapp-definitions.yaml"), demo._say)
    base = yaml.safe_load(demo.demo_file("webapp-execution.yaml"))
    for env, cluster in CLUSTERS.items():
        spec = {**base, "name": f"deploy webapp to {env}", "environment": env}
        demo._say(f"\ndelegate execution render (environment {env}):")
        for line in explain(client.request("POST", "/api/executions/render", json=spec)):
            demo._say("  " + line)
        created = client.request("POST", "/api/executions", json=spec)
        view = demo._follow(client, "execution", created["execution_id"], show_logs, outcome)
        count, cpu, variables, image = _deployed(aws, cluster)
        want_count, want_cpu, want_level = WANTED[env]
        outcome.check(f"webapp in {env} ({cluster}): {want_count} task(s), cpu {want_cpu}, "
                      f"LOG_LEVEL={want_level}, its overrides applied",
                      view["status"] == "SUCCESS" and (count, cpu) == (want_count, want_cpu)
                      and variables.get("LOG_LEVEL") == want_level
                      and variables.get("GREETING") == f"hello from {env}",
                      f"{view['status']}, {count} task(s), cpu {cpu}, {variables}")
        outcome.check(f"webapp in {env} runs {REPOSITORY}:1.1.0 pinned to its digest",
                      digests["1.1.0"] != digests["1.0.0"]
                      and image.endswith(f"/{REPOSITORY}@{digests['1.1.0']}")
                      and variables.get("IMAGE_TAG") == "1.1.0", image)
