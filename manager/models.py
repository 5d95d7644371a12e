"""What the HTTP API takes and returns. These models make the OpenAPI document."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from wire.durations import Timeout
from wire.protocol import DelegateState, TaskMessage, TaskStatus, UnitStatus


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --------------------------------------------------------------------------- input files


class TaskFile(_In):
    """A task file (YAML or JSON) as ``delegate submit`` sends it."""

    type: str = Field(min_length=1, description="task type, e.g. aws.validate_connector")
    selectors: list[str] = Field(default_factory=list,
                                 description="the delegate must have every one of these tags")
    params: dict[str, Any] = Field(default_factory=dict)
    timeout: Timeout = Field(default=3600.0, description="90s, 10m, 1h or seconds")
    secrets: dict[str, str] = Field(default_factory=dict,
                                    description="encrypted at rest, never returned")
    context: dict[str, Any] = Field(default_factory=dict,
                                    description="expression context for fetched manifests")
    account_id: str | None = Field(
        default=None, description="run only on delegates of this account; required when "
                                  "the manager serves several, else that one account")


class Infrastructure(BaseModel):
    model_config = ConfigDict(extra="allow")
    region: str | None = None
    cluster: str | None = None
    credentials: dict[str, Any] | None = None


class Environment(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str | None = None
    variables: dict[str, Any] = Field(default_factory=dict)


class Step(_In):
    id: str = Field(min_length=1)
    type: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    selectors: list[str] | None = Field(default=None,
                                        description="overrides the execution's selectors")
    timeout: Timeout | None = None


class RollbackStep(Step):
    rolls_back: str = Field(alias="rollsBack", description="id of the step this rolls back")


class Provisioner(_In):
    """Steps that create the infrastructure before the deployment (see
    manager/provisioning.py): their outputs are ``<+provisioner.NAME>``."""

    steps: list[Step] = Field(min_length=1)
    rollback_steps: list[RollbackStep] = Field(default_factory=list, alias="rollbackSteps")


class ExecutionFile(_In):
    """An execution file: ordered steps plus rollback steps (see docs/api.md)."""

    name: str = Field(min_length=1)
    selectors: list[str] = Field(default_factory=list)
    infrastructure: Infrastructure = Field(default_factory=Infrastructure)
    service: str = Field(min_length=1, description="deployments of one service never overlap")
    artifact: dict[str, Any] = Field(default_factory=dict)
    service_variables: dict[str, Any] = Field(default_factory=dict, alias="serviceVariables")
    env: Environment = Field(default_factory=Environment)
    secrets: dict[str, str] = Field(default_factory=dict)
    steps: list[Step] = Field(min_length=1)
    rollback_steps: list[RollbackStep] = Field(default_factory=list, alias="rollbackSteps")
    provisioner: Provisioner | None = None
    account_id: str | None = None
    # By reference (manager/effective.py): stored definitions instead of inline ones.
    environment: str | None = Field(
        default=None, description="a stored Environment's name: service, environment and "
                                  "infrastructure then come from stored definitions")
    infrastructure_ref: str | None = Field(
        default=None, alias="infrastructureRef",
        description="a stored Infrastructure's name (written `infrastructure: NAME`)")
    manifests: dict[str, Any] = Field(
        default_factory=dict, description="manifests offered to every step that takes "
                                          "manifests and gives none itself")

    @model_validator(mode="before")
    @classmethod
    def _infrastructure_by_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("infrastructure"), str):
            data = {**data, "infrastructureRef": data["infrastructure"]}
            del data["infrastructure"]
        return data

    @property
    def by_reference(self) -> bool:
        return self.environment is not None or self.infrastructure_ref is not None

    def _all_steps(self) -> list[tuple[str, Step]]:
        prov = self.provisioner
        return [*((f"provisioner.steps[{i}]", s) for i, s in
                  enumerate(prov.steps if prov else [])),
                *((f"provisioner.rollbackSteps[{i}]", s) for i, s in
                  enumerate(prov.rollback_steps if prov else [])),
                *((f"steps[{i}]", s) for i, s in enumerate(self.steps)),
                *((f"rollbackSteps[{i}]", s) for i, s in enumerate(self.rollback_steps))]

    @model_validator(mode="after")
    def _ids(self) -> ExecutionFile:
        seen: set[str] = set()
        for where, step in self._all_steps():
            if step.id in seen:
                raise ValueError(f"{where}.id: step id {step.id!r} is used twice")
            seen.add(step.id)
        prov_ids = {s.id for s in self.provisioner.steps} if self.provisioner else set()
        step_ids = {s.id for s in self.steps}
        groups = [("rollbackSteps", self.rollback_steps, step_ids)]
        if self.provisioner:
            groups.append(("provisioner.rollbackSteps", self.provisioner.rollback_steps,
                           prov_ids))
        for name, rollbacks, ids in groups:
            for i, rb in enumerate(rollbacks):
                if rb.rolls_back not in ids:
                    raise ValueError(
                        f"{name}[{i}].rollsBack: {rb.rolls_back!r} is not the id of a step "
                        f"in its section (steps: {', '.join(sorted(ids))})")
        if self.provisioner is None and "<+provisioner." in str(
                self.infrastructure.model_dump()):
            raise ValueError("infrastructure uses <+provisioner.NAME> but the execution has "
                             "no provisioner section to produce it")
        return self


# --------------------------------------------------------------------------- answers


class Submitted(BaseModel):
    task_id: str
    status: TaskStatus
    waiting_reason: str | None = None


class UnitView(BaseModel):
    name: str
    status: UnitStatus
    started_at: str | None = None
    ended_at: str | None = None


class TaskView(BaseModel):
    task_id: str
    type: str
    status: TaskStatus
    account_id: str | None
    selectors: list[str]
    params: dict[str, Any]
    timeout: float
    secret_names: list[str] = Field(description="names only; values are never returned")
    created_at: float
    assigned_at: float | None
    started_at: float | None
    ended_at: float | None
    delegate_id: str | None
    delegate_name: str | None
    waiting_reason: str | None
    units: list[UnitView]
    output: dict[str, Any] | None
    error: str | None
    last_seq: int
    log_truncated: bool
    execution_id: str | None
    step_id: str | None
    late_result: bool = Field(
        default=False, description="the result arrived after the task was marked LOST "
                                   "(its delegate came back late); the status is its result")


class TaskList(BaseModel):
    tasks: list[TaskView]


class DelegateView(BaseModel):
    delegate_id: str
    account_id: str
    name: str
    instance_id: str
    tags: list[str]
    version: str
    hostname: str
    state: DelegateState
    capacity: int
    task_types: list[str]
    running_tasks: int
    last_heartbeat: float | None
    connected_at: float | None


class DelegateList(BaseModel):
    delegates: list[DelegateView]


class TokenCreate(_In):
    account_id: str = Field(min_length=1)
    name: str = ""


class TokenView(BaseModel):
    token_id: str
    account_id: str
    name: str
    created_at: float
    revoked_at: float | None


class TokenCreated(TokenView):
    token: str = Field(description="shown once; the manager keeps only a derived key")


class TokenList(BaseModel):
    tokens: list[TokenView]


class ErrorAnswer(BaseModel):
    """Every 4xx but 422: what was wrong and what to do."""

    detail: str


class AbortRequest(_In):
    reason: str = "aborted by user"


class TaskAbortAnswer(BaseModel):
    """What an abort did, without the task's params (they can be megabytes, or secret)."""

    task_id: str
    status: TaskStatus
    already_finished: bool = Field(description="the task had ended before; nothing was done")
    message: str


class StepRunView(BaseModel):
    step_id: str
    phase: str = Field(description="'steps' or 'rollback'")
    rolls_back: str | None = None
    task_id: str | None = Field(description="none for a SKIPPED rollback step")
    status: TaskStatus | Literal["SKIPPED"] | None = Field(
        description="its task's status; SKIPPED: a rollback step whose step had recorded "
                    "nothing to roll back (error says why)")
    error: str | None = None
    output: dict[str, Any] | None = None


class ExecutionView(BaseModel):
    execution_id: str
    version: str = Field(description="changes whenever status or a step changes")
    name: str
    service: str
    account_id: str | None
    status: str
    phase: str
    rollback_requested: bool = Field(
        default=False, description="a rollback was asked for (POST .../rollback)")
    waiting_reason: str | None
    error: str | None
    created_at: float
    started_at: float | None
    ended_at: float | None
    runs: list[StepRunView]
    infrastructure: dict[str, Any] | None = Field(
        default=None, description="where it deploys: the execution's infrastructure, with "
                                  "<+provisioner.NAME> fields resolved once its provisioner "
                                  "steps have run")


class RollbackRequest(_In):
    force: bool = Field(default=False, description="roll back even though newer executions "
                                                   "of the service came after this one")


class RollbackAnswer(ExecutionView):
    plan: str = Field(description="what the rollback does, step by step")


class ExecutionList(BaseModel):
    executions: list[ExecutionView]


class ExecutionSubmitted(BaseModel):
    execution_id: str
    status: str
    waiting_reason: str | None = None


class FileInfo(BaseModel):
    account_id: str
    path: str
    size: int
    sha256: str
    updated_at: float


class FileList(BaseModel):
    files: list[FileInfo]


class LogBatch(_In):
    """A batch for the HTTP log service: the same sequenced messages as the websocket."""

    messages: list[TaskMessage] = Field(max_length=10_000)


class LogBatchAck(BaseModel):
    acks: dict[str, int] = Field(description="task_id -> highest contiguous seq stored")
    errors: dict[str, str] = Field(default_factory=dict)
