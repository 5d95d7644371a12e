"""What a Terraform step keeps at the manager besides the state (``manager.tf_state``):
apply records (configuration and variables of an apply that succeeded), attempts (an
apply about to run) and saved plans, all sealed there. :class:`RunSpec` is the part of a
run that such a record must give back exactly."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import httpx

from agent.context import TaskContext, TaskFailed
from tasks.terraform.state_proxy import AUDIENCE, ManagerCalls

Kind = Literal["apply", "attempt", "plan"]


@dataclass(frozen=True)
class RunSpec:
    source: dict[str, Any]  # a configuration (see tasks.terraform.params.Configuration)
    variables: dict[str, Any] = field(default_factory=dict)  # rendered: may hold secrets
    var_files: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)  # rendered too
    backend_config: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunSpec:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def manager_of(ctx: TaskContext) -> ManagerCalls:
    if not isinstance(ctx.files, ManagerCalls):
        raise TaskFailed("this delegate cannot reach the manager's Terraform state "
                         "endpoints (its file store has no call()); run the step on a "
                         "delegate connected to a manager")
    return ctx.files


class Records:
    def __init__(self, ctx: TaskContext, provisioner: str, workspace: str) -> None:
        self.manager = manager_of(ctx)
        self.query = {"provisioner": provisioner, "workspace": workspace,
                      "task": ctx.task_id}
        self.where = f"provisioner {provisioner!r} workspace {workspace!r}"

    async def _call(self, method: str, kind: Kind, params: dict[str, str],
                    body: bytes | None = None) -> httpx.Response:
        try:
            return await self.manager.call(method, f"/api/delegate/tfstate/records/{kind}",
                                           audience=AUDIENCE, params={**self.query, **params},
                                           content=body)
        except httpx.HTTPError as exc:
            raise TaskFailed(f"cannot reach the manager to keep the {kind} record of "
                             f"{self.where}: {exc}") from exc

    async def add(self, kind: Kind, body: dict[str, Any]) -> int:
        import json

        resp = await self._call("POST", kind, {}, json.dumps(body).encode())
        if resp.status_code != 200:
            raise TaskFailed(f"the manager refused the {kind} record of {self.where} "
                             f"(HTTP {resp.status_code}): {resp.text[:300]}")
        return int(resp.json()["id"])

    async def get(self, kind: Kind, **match: int | str | None) -> dict[str, Any] | None:
        """The record of ``kind`` with ``id``/``ofTask``, or the newest (``before`` an id);
        None when there is none."""
        params = {k: str(v) for k, v in match.items() if v is not None}
        resp = await self._call("GET", kind, params)
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise TaskFailed(f"the manager refused to read the {kind} record of "
                             f"{self.where} (HTTP {resp.status_code}): {resp.text[:300]}")
        found: dict[str, Any] = resp.json()
        return found
