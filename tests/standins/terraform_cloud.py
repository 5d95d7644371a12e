"""A local stand-in for the Terraform Cloud API v2 endpoints ``terraform_cloud.run`` calls,
the way moto stands in for AWS: real HTTP on a loopback port, JSON:API documents, a bearer
token, and runs that move through the documented statuses.

A run advances one status each time it is read (so a test needs no clock), and its plan
and apply logs grow as it goes. A workspace's "configuration" is simple: applying a run
sets the workspace's outputs to its ``outputs`` plus the run's variables (as strings), so
a test can see that the values it passed came back as outputs."""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from testkit.stack import wait_for

Policy = Literal["none", "passed", "soft_failed", "hard_failed"]


@dataclass
class Workspace:
    organization: str
    name: str
    id: str
    outputs: dict[str, Any] = field(default_factory=dict)
    sensitive: set[str] = field(default_factory=set)
    policy: Policy = "none"
    plan_fails: bool = False
    hang_in_planning: bool = False
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class StandinRun:
    id: str
    workspace: Workspace
    attributes: dict[str, Any]
    status: str = "pending"
    plan_log: list[str] = field(default_factory=list)
    apply_log: list[str] = field(default_factory=list)
    policy_status: str = ""
    actions_seen: list[str] = field(default_factory=list)

    @property
    def variables(self) -> dict[str, str]:
        return {v["key"]: json.loads(v["value"]) for v in self.attributes.get("variables", [])}


def _errors(code: int, title: str) -> JSONResponse:
    return JSONResponse({"errors": [{"status": str(code), "title": title}]}, status_code=code)


class TerraformCloudStandin:
    def __init__(self, token: str = "tfc-token-for-tests") -> None:
        self.token = token
        self.workspaces: dict[tuple[str, str], Workspace] = {}
        self.runs: dict[str, StandinRun] = {}
        self.log_requests_with_auth = 0
        self.url = ""
        self._ids = itertools.count(1)
        self.app = self._build()

    def add_workspace(self, organization: str, name: str, **kw: Any) -> Workspace:
        ws = Workspace(organization, name, f"ws-{next(self._ids):04d}", **kw)
        self.workspaces[(organization, name)] = ws
        return ws

    # -- the run's life -------------------------------------------------------------
    def _advance(self, run: StandinRun) -> None:
        ws, s = run.workspace, run.status
        if s == "pending":
            run.status = "plan_queued"
        elif s == "plan_queued":
            run.status = "planning"
            run.plan_log.append("Terraform v1.11.4")
        elif s == "planning" and not ws.hang_in_planning:
            self._finish_plan(run)
        elif s == "policy_checking":
            run.policy_status = {"passed": "passed", "soft_failed": "soft_failed",
                                 "hard_failed": "hard_failed"}[ws.policy]
            run.status = {"passed": "policy_checked", "soft_failed": "policy_soft_failed",
                          "hard_failed": "errored"}[ws.policy]
            if run.status == "policy_checked" and run.attributes.get("plan-only"):
                run.status = "planned_and_finished"
        elif s in ("confirmed", "apply_queued"):
            run.status = {"confirmed": "apply_queued", "apply_queued": "applying"}[s]
            if run.status == "applying":
                run.apply_log.append("terraform_data.cluster: Creating...")
        elif s == "applying":
            self._finish_apply(run)

    def _finish_plan(self, run: StandinRun) -> None:
        if run.workspace.plan_fails:
            run.plan_log += ["Error: Invalid reference", "  on main.tf line 3"]
            run.status = "errored"
            return
        verb = "destroy" if run.attributes.get("is-destroy") else "add"
        run.plan_log.append(f"Plan: 1 to {verb}, 0 to change, 0 to destroy.")
        if run.workspace.policy != "none":
            run.status = "policy_checking"
        elif run.attributes.get("plan-only"):
            run.status = "planned_and_finished"
        else:
            run.status = "planned"

    def _finish_apply(self, run: StandinRun) -> None:
        ws = run.workspace
        if run.attributes.get("is-destroy"):
            ws.state = {}
        else:
            ws.state = {**ws.outputs, **run.variables}
        run.apply_log.append("Apply complete! Resources: 1 added, 0 changed, 0 destroyed.")
        run.status = "applied"

    def _document(self, run: StandinRun) -> dict[str, Any]:
        confirmable = run.status in ("planned", "policy_checked", "policy_override")
        return {"data": {"id": run.id, "type": "runs", "attributes": {
            **run.attributes, "status": run.status, "has-changes": True,
            "actions": {"is-confirmable": confirmable,
                        "is-discardable": confirmable or run.status == "policy_soft_failed",
                        "is-cancelable": run.status in ("pending", "plan_queued", "planning",
                                                        "apply_queued", "applying")}}}}

    # -- the HTTP face ----------------------------------------------------------------
    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.middleware("http")
        async def auth(request: Request, call_next: Any) -> Response:
            if request.url.path.startswith("/api/v2/"):
                if request.headers.get("authorization") != f"Bearer {self.token}":
                    return _errors(401, "unauthorized")
            elif request.headers.get("authorization"):
                self.log_requests_with_auth += 1
            response: Response = await call_next(request)
            return response

        self._workspace_routes(app)
        self._run_routes(app)
        self._action_routes(app)
        self._output_routes(app)
        return app

    def _run(self, run_id: str) -> StandinRun | None:
        return self.runs.get(run_id)

    def _workspace_routes(self, app: FastAPI) -> None:
        @app.get("/api/v2/organizations/{org}/workspaces/{name}")
        async def workspace(org: str, name: str) -> Response:
            ws = self.workspaces.get((org, name))
            if ws is None:
                return _errors(404, "not found")
            return JSONResponse({"data": {"id": ws.id, "type": "workspaces", "attributes": {
                "name": name, "terraform-version": "1.11.4", "auto-apply": True}}})

        @app.post("/api/v2/runs")
        async def create(request: Request) -> Response:
            if request.headers.get("content-type") != "application/vnd.api+json":
                return _errors(415, "unsupported media type")
            data = (await request.json())["data"]
            ws_id = data["relationships"]["workspace"]["data"]["id"]
            ws = next((w for w in self.workspaces.values() if w.id == ws_id), None)
            if ws is None:
                return _errors(404, "workspace not found")
            run = StandinRun(f"run-{secrets.token_hex(4)}", ws, dict(data["attributes"]))
            self.runs[run.id] = run
            return JSONResponse(self._document(run), status_code=201)

    def _run_routes(self, app: FastAPI) -> None:
        @app.get("/api/v2/runs/{run_id}")
        async def read(run_id: str) -> Response:
            run = self._run(run_id)
            if run is None:
                return _errors(404, "not found")
            self._advance(run)
            return JSONResponse(self._document(run))

        @app.get("/api/v2/runs/{run_id}/{phase}")
        async def phase(run_id: str, phase: str) -> Response:
            run = self._run(run_id)
            if run is None:
                return _errors(404, "not found")
            if phase == "policy-checks":
                checks = ([{"id": f"polchk-{run.id}", "type": "policy-checks", "attributes": {
                    "status": run.policy_status or "queued",
                    "result": {"passed": int(run.policy_status == "passed"),
                               "soft-failed": int(run.policy_status == "soft_failed"),
                               "hard-failed": int(run.policy_status == "hard_failed")}}}]
                          if run.workspace.policy != "none" else [])
                return JSONResponse({"data": checks})
            url = f"{self.url}/_archivist/{run.id}/{phase}"
            return JSONResponse({"data": {"id": f"{phase}-{run.id}", "attributes": {
                "log-read-url": url, "resource-additions": 1, "resource-changes": 0,
                "resource-destructions": 0}}})

        @app.get("/_archivist/{run_id}/{phase}")
        async def archived_log(run_id: str, phase: str) -> Response:
            run = self._run(run_id)
            if run is None:
                return PlainTextResponse("", status_code=404)
            lines = run.plan_log if phase == "plan" else run.apply_log
            done = run.status not in ("planning", "applying")
            return PlainTextResponse("\x02" + "".join(f"{ln}\n" for ln in lines)
                                     + ("\x03" if done else ""))

    def _action_routes(self, app: FastAPI) -> None:
        @app.post("/api/v2/runs/{run_id}/actions/{action}")
        async def act(run_id: str, action: str) -> Response:
            run = self._run(run_id)
            if run is None:
                return _errors(404, "not found")
            run.actions_seen.append(action)
            doc = self._document(run)["data"]["attributes"]["actions"]
            allowed = {"apply": "is-confirmable", "discard": "is-discardable",
                       "cancel": "is-cancelable"}.get(action)
            if allowed is None or not doc[allowed]:
                return _errors(409, f"transition not allowed from {run.status}")
            run.status = {"apply": "confirmed", "discard": "discarded",
                          "cancel": "canceled"}[action]
            return Response(status_code=202)

        @app.post("/api/v2/policy-checks/{check_id}/actions/override")
        async def override(check_id: str) -> Response:
            run = self._run(check_id.removeprefix("polchk-"))
            if run is None or run.status != "policy_soft_failed":
                return _errors(409, "nothing to override")
            run.policy_status, run.status = "overridden", "policy_override"
            return JSONResponse({"data": {"id": check_id}})

    def _output_routes(self, app: FastAPI) -> None:
        @app.get("/api/v2/workspaces/{ws_id}/current-state-version-outputs")
        async def outputs(ws_id: str) -> Response:
            ws = next((w for w in self.workspaces.values() if w.id == ws_id), None)
            if ws is None:
                return _errors(404, "not found")
            return JSONResponse({"data": [
                {"id": f"wsout-{ws.id}-{name}", "type": "state-version-outputs", "attributes": {
                    "name": name, "sensitive": name in ws.sensitive,
                    "value": None if name in ws.sensitive else value}}
                for name, value in ws.state.items()]})

        @app.get("/api/v2/state-version-outputs/{output_id}")
        async def one_output(output_id: str) -> Response:
            for ws in self.workspaces.values():
                prefix = f"wsout-{ws.id}-"
                if output_id.startswith(prefix) and output_id[len(prefix):] in ws.state:
                    name = output_id[len(prefix):]
                    return JSONResponse({"data": {"id": output_id, "attributes": {
                        "name": name, "sensitive": name in ws.sensitive,
                        "value": ws.state[name]}}})
            return _errors(404, "not found")


@asynccontextmanager
async def serve_standin(standin: TerraformCloudStandin) -> AsyncIterator[str]:
    """Serve ``standin`` on a loopback port chosen now; yields its address."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(standin.app, log_level="warning", lifespan="off"))
    standin.url = f"http://127.0.0.1:{port}"
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await wait_for(lambda: server.started or task.done(), timeout=10,
                       what="the Terraform Cloud stand-in to listen")
        if task.done():
            task.result()
        yield standin.url
    finally:
        server.should_exit = True
        await task
        sock.close()
