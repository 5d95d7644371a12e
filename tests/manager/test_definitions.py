"""Stored definitions through the real manager's API: apply is idempotent and keeps a
revision per change, show/list/delete, a definition an unfinished execution uses cannot
be deleted, and an execution by reference records the revisions it ran with."""

from __future__ import annotations

from typing import Any

from tests.manager.conftest import Manager

SERVICE = {"kind": "Service", "name": "myapp", "spec": {
    "manifests": {"taskDefinition": {"store": "inline", "content": {"family": "myapp"}},
                  "serviceDefinition": {"store": "inline",
                                        "content": {"serviceName": "myapp",
                                                    "desiredCount": 1}}},
    "variables": {"LOG_LEVEL": "info", "REPLICAS": 1}}}
PROD = {"kind": "Environment", "name": "production",
        "spec": {"type": "Production", "variables": {"LOG_LEVEL": "warn"}}}
PROD_EAST = {"kind": "Infrastructure", "name": "prod-east",
             "spec": {"environment": "production", "region": "us-east-1",
                      "cluster": "prod"}}
PROD_OVERRIDE = {"kind": "Override", "name": "production-myapp", "spec": {
    "service": "myapp", "environment": "production", "variables": {"REPLICAS": 3},
    "manifests": {"serviceDefinition": {"store": "inline", "content": {
        "serviceName": "myapp", "desiredCount": 3}}}}}
EAST_OVERRIDE = {"kind": "Override", "name": "prod-east-myapp", "spec": {
    "service": "myapp", "infrastructure": "prod-east", "variables": {"REGION_TAG": "east"}}}
ALL = [SERVICE, PROD, PROD_EAST, PROD_OVERRIDE, EAST_OVERRIDE]


async def _apply(m: Manager, docs: list[dict[str, Any]], **kw: Any) -> Any:
    assert m.client is not None
    return await m.client.post("/api/definitions/apply",
                               json={"documents": docs, "account_id": "acme", **kw})


async def test_apply_twice_is_unchanged_and_a_change_adds_a_revision(manager: Manager) -> None:
    first = (await _apply(manager, ALL)).json()["results"]
    assert [(r["name"], r["action"], r["revision"]) for r in first] == [
        ("myapp", "created", 1), ("production", "created", 1), ("prod-east", "created", 1),
        ("production-myapp", "created", 1), ("prod-east-myapp", "created", 1)]
    again = (await _apply(manager, ALL)).json()["results"]
    assert {r["action"] for r in again} == {"unchanged"}
    changed = {**PROD, "spec": {"type": "Production", "variables": {"LOG_LEVEL": "error"}}}
    third = (await _apply(manager, [changed])).json()["results"]
    assert third == [{"kind": "Environment", "name": "production", "action": "updated",
                      "revision": 2}]
    assert manager.client is not None
    shown = (await manager.client.get("/api/definitions/environment/production",
                                      params={"account": "acme"})).json()
    assert shown["revision"] == 2 and shown["spec"]["variables"] == {"LOG_LEVEL": "error"}
    assert [r["revision"] for r in shown["revisions"]] == [1, 2]
    old = (await manager.client.get("/api/definitions/Environment/production",
                                    params={"account": "acme", "revision": 1})).json()
    assert old["spec"]["variables"] == {"LOG_LEVEL": "warn"}


async def test_dry_run_stores_nothing_and_answers_both_specs(manager: Manager) -> None:
    await _apply(manager, [PROD])
    changed = {**PROD, "spec": {"type": "Production", "variables": {"LOG_LEVEL": "x"}}}
    answer = (await _apply(manager, [changed], dry_run=True)).json()["results"][0]
    assert answer["action"] == "updated"
    assert answer["stored"]["variables"] == {"LOG_LEVEL": "warn"}
    assert answer["spec"]["variables"] == {"LOG_LEVEL": "x"}
    assert (await _apply(manager, [PROD])).json()["results"][0]["action"] == "unchanged"


async def test_a_bad_document_stores_none_and_says_where(manager: Manager) -> None:
    bad = {"kind": "Override", "name": "both", "spec": {"service": "myapp"}}
    r = await _apply(manager, [SERVICE, bad], sources=["a.yaml", "b.yaml (document 2)"])
    assert r.status_code == 400
    assert "b.yaml (document 2) (Override both)" in r.json()["detail"]
    assert "exactly one of environment" in r.json()["detail"]
    unknown = await _apply(manager, [{"kind": "Servce", "name": "x"}])
    assert unknown.status_code == 400 and "kinds: Service" in unknown.json()["detail"]
    assert manager.client is not None
    listed = (await manager.client.get("/api/definitions",
                                       params={"account": "acme"})).json()
    assert listed["definitions"] == []


def _by_reference(step_type: str = "test.nobody-runs-this") -> dict[str, Any]:
    return {"name": "deploy myapp to production", "service": "myapp",
            "environment": "production", "account_id": "acme",
            "selectors": ["nowhere"], "steps": [{"id": "deploy", "type": step_type}]}


async def test_render_explains_every_value_and_which_override_won(manager: Manager) -> None:
    await _apply(manager, ALL)
    assert manager.client is not None
    body = (await manager.client.post("/api/executions/render",
                                      json=_by_reference())).json()
    assert body["manifests"]["taskDefinition"]["from"] == "service myapp revision 1"
    assert body["manifests"]["serviceDefinition"] == {
        "value": PROD_OVERRIDE["spec"]["manifests"]["serviceDefinition"],  # type: ignore[index]
        "from": "override production-myapp (environment production) revision 1"}
    assert {k: (v["value"], v["from"]) for k, v in body["variables"].items()} == {
        "LOG_LEVEL": ("warn", "environment production revision 1"),
        "REPLICAS": (3, "override production-myapp (environment production) revision 1"),
        "REGION_TAG": ("east", "override prod-east-myapp (infrastructure prod-east) "
                               "revision 1")}
    assert body["infrastructure"]["cluster"] == "prod"


async def test_a_missing_reference_is_refused_naming_what_is_stored(manager: Manager) -> None:
    await _apply(manager, [SERVICE, PROD, PROD_EAST])
    assert manager.client is not None
    r = await manager.client.post("/api/executions",
                                  json={**_by_reference(), "environment": "staging"})
    assert r.status_code == 400
    assert r.json()["detail"] == ("environment: no Environment named 'staging' is stored "
                                  "(stored: production); apply it with `delegate apply -f "
                                  "FILE` first")


async def test_an_execution_records_revisions_and_blocks_deleting_them(
        manager: Manager) -> None:
    await _apply(manager, ALL)
    assert manager.client is not None
    r = await manager.client.post("/api/executions", json=_by_reference())
    assert r.status_code == 201, r.text
    eid = r.json()["execution_id"]
    inputs = (await manager.client.get(f"/api/executions/{eid}/inputs")).json()
    assert {(d["kind"], d["name"], d["revision"]) for d in inputs["definitions"]} == {
        ("Service", "myapp", 1), ("Environment", "production", 1),
        ("Infrastructure", "prod-east", 1), ("Override", "production-myapp", 1),
        ("Override", "prod-east-myapp", 1)}
    refused = await manager.client.delete("/api/definitions/service/myapp",
                                          params={"account": "acme"})
    assert refused.status_code == 409 and eid in refused.json()["detail"]
    await manager.client.post(f"/api/executions/{eid}/abort", json={"reason": "test"})
    deleted = await manager.client.delete("/api/definitions/service/myapp",
                                          params={"account": "acme"})
    assert deleted.json() == {"kind": "Service", "name": "myapp", "action": "deleted",
                              "revision": 2}
    gone = await manager.client.get("/api/definitions/service/myapp",
                                    params={"account": "acme"})
    assert gone.status_code == 404
    again = (await _apply(manager, [SERVICE])).json()["results"][0]
    assert (again["action"], again["revision"]) == ("created", 3)


async def test_infrastructure_by_name_and_inline_variables_win(manager: Manager) -> None:
    other = {"kind": "Infrastructure", "name": "prod-west",
             "spec": {"environment": "production", "region": "us-west-2", "cluster": "w"}}
    await _apply(manager, [*ALL, other])
    assert manager.client is not None
    ambiguous = await manager.client.post("/api/executions/render", json=_by_reference())
    assert ambiguous.status_code == 400
    assert "has 2 infrastructure definitions (prod-east, prod-west)" in \
        ambiguous.json()["detail"]
    spec = {**_by_reference(), "infrastructure": "prod-west",
            "serviceVariables": {"LOG_LEVEL": "trace"}}
    body = (await manager.client.post("/api/executions/render", json=spec)).json()
    assert body["infrastructure"]["region"] == "us-west-2"
    assert body["variables"]["LOG_LEVEL"] == {"value": "trace", "from": "execution file"}
    assert "REGION_TAG" not in body["variables"]  # prod-east's override does not apply
    wrong = await manager.client.post("/api/executions/render",
                                      json={**spec, "environment": "staging"})
    assert wrong.status_code == 400
