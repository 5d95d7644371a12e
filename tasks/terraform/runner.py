"""One Terraform (or Terragrunt) session of a step: a fresh folder with the
configuration, the binary found and its version logged, the state backend chosen and
initialised, then commands run through ``tasks.shell.process.run_process`` (lines
streamed through the task's masking; abort and timeout stop the whole process group).

State: a configuration that declares a backend (or a ``cloud`` block) keeps its state
there, untouched. One that does not gets Terraform's ``http`` backend pointed at a
loopback proxy to the manager (``tasks.terraform.state_proxy``), so the state lives
under the step's provisioner identifier and workspace, locked while a run holds it.
Terragrunt steps keep their state where ``terragrunt.hcl`` says (its ``remote_state``):
Terragrunt generates the backend of every module itself."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.context import TaskContext, TaskFailed, UnitLog
from tasks.shell.process import Finished, run_process
from tasks.shell.script import aws_environment
from tasks.terraform.commands import Invocation, RunOptions
from tasks.terraform.config import declares_backend, materialize, var_file_paths
from tasks.terraform.params import (
    Configuration,
    TerraformParams,
    TerragruntOptions,
)
from tasks.terraform.records import RunSpec, manager_of
from tasks.terraform.state_proxy import StateProxy

_PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME",
                   "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy",
                   "no_proxy", "SSL_CERT_FILE", "TF_PLUGIN_CACHE_DIR")
_BACKEND_FILE = "zz_delegate_state_backend.tf"
SENSITIVE = "(sensitive)"  # a sensitive output's value, as the step's output shows it


def invocation(params: TerraformParams, tool: str) -> Invocation:
    binary = params.binary or shutil.which(tool)
    if binary is None or not os.access(binary, os.X_OK):
        raise TaskFailed(f"{params.binary or tool} is not an executable on this delegate"
                         + ("" if params.binary else "'s PATH")
                         + f"; install {tool} on it, or set binary to its path")
    grunt = params if isinstance(params, TerragruntOptions) else None
    return Invocation("terragrunt" if tool == "terragrunt" else "terraform", binary,
                      run_all=bool(grunt and grunt.run_all),
                      working_directory=grunt.working_directory if grunt else None)


def _write_private(path: Path, text: str) -> str:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return str(path)


def _hcl_settings(values: dict[str, str]) -> str:
    return "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())


@dataclass
class Session:
    ctx: TaskContext[Any]
    params: TerraformParams
    inv: Invocation
    log: UnitLog
    workdir: Path
    spec: RunSpec
    folder: Path | None = None
    env: dict[str, str] | None = None
    opts: RunOptions | None = None
    source: dict[str, Any] | None = None  # the configuration as fetched (for records)
    proxy: StateProxy | None = None

    async def run(self, argv: list[str], *, ok: tuple[int, ...] = (0,),
                  capture: bool = False) -> tuple[int, list[str]]:
        """Run ``argv`` in the configuration's folder; its lines go to the log (stdout
        is kept instead when ``capture``: output -json holds sensitive values)."""
        assert self.folder is not None and self.env is not None
        kept: list[str] = []

        def line(text: str, is_err: bool) -> None:
            if capture and not is_err:
                kept.append(text)
            else:
                (self.log.warn if is_err else self.log.info)(text)

        finished: Finished = await run_process(argv, cwd=str(self.folder), env=self.env,
                                               sink=line, grace=self.params.kill_grace)
        if finished.exit_code not in ok:
            code = finished.exit_code
            how = f"was killed by signal {-code}" if code < 0 else f"exited with {code}"
            tail = "\n".join(finished.last_lines)
            raise TaskFailed(f"{self.inv.tool} {argv[1]} {how}.{self._locked()}"
                             + (f" Its last lines:\n{tail}" if tail else ""))
        return finished.exit_code, kept

    def _locked(self) -> str:
        holder = self.proxy.holder() if self.proxy is not None else None
        if holder is None:
            return ""
        return (f" The state of provisioner {self.params.provisioner_identifier!r} "
                f"workspace {self.params.workspace!r} is locked: {holder}. Wait for that "
                "run to end, or set lockTimeout to wait for it; a lock whose task has "
                "ended is broken by the next run, and an admin can break one with "
                "DELETE /api/tfstate/lock.")

    async def outputs(self) -> dict[str, Any]:
        """``output -json`` as step outputs; sensitive values are registered for masking
        (so they read ``****`` in logs), replaced by ``(sensitive)`` in the outputs, and
        listed in ``sensitiveOutputs``."""
        _, lines = await self.run(self.inv.output(), capture=True)
        found = json.loads("\n".join(lines) or "{}")
        sensitive = sorted(k for k, v in found.items() if v.get("sensitive"))
        for name in sensitive:
            for text in _strings(found[name].get("value")):
                self.ctx.add_secret(text)
        # Replaced here, not only masked by the task's masking: that leaves values shorter
        # than a few characters alone, and a sensitive output must never leave in clear.
        values = {k: SENSITIVE if k in sensitive else v.get("value")
                  for k, v in found.items()}
        for name in sorted(values):
            shown = SENSITIVE if name in sensitive else json.dumps(values[name])
            self.log.info(f"Output {name} = {shown}")
        return {**values, "sensitiveOutputs": sensitive}


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value if isinstance(value, str) else json.dumps(value)]


def _is_file(path: str) -> bool:
    return os.path.isfile(path)


async def _environment(ctx: TaskContext, params: TerraformParams, spec: RunSpec,
                       workdir: Path) -> dict[str, str]:
    env = {k: os.environ[k] for k in _PASSED_THROUGH if k in os.environ}
    cli_config = os.environ.get("TF_CLI_CONFIG_FILE")
    if cli_config and _is_file(cli_config):  # the operator's provider mirrors
        env["TF_CLI_CONFIG_FILE"] = cli_config
    env.update(TF_IN_AUTOMATION="1", TF_INPUT="0", TMPDIR=str(workdir))
    env.update(await aws_environment(ctx, params.credentials, params.region))
    env.update(spec.environment)
    return env


async def _version(session: Session) -> None:
    _, lines = await session.run(session.inv.version(), capture=True)
    session.log.info(f"Using {session.inv.binary}: {lines[0] if lines else '(no version)'}")


async def _init(session: Session, proxy: StateProxy | None) -> None:
    files = []
    if proxy is not None:
        assert session.env is not None
        session.env.update(proxy.environment)
        session.ctx.add_secret(proxy.key)
    elif session.spec.backend_config:
        files.append(_write_private(session.workdir / "backend.hcl",
                                    _hcl_settings(session.spec.backend_config)))
    await session.run(session.inv.init(files))
    if proxy is None and session.params.workspace != "default" and \
            session.inv.tool == "terraform":
        await session.run(session.inv.workspace(session.params.workspace))


def _backend(session: Session) -> bool:
    """Whether the manager keeps the state; writes the http backend block when it does."""
    assert session.folder is not None
    if session.inv.tool == "terragrunt":
        if not any("remote_state" in p.read_text(errors="replace")
                   for p in session.folder.rglob("*.hcl")):
            session.log.warn("No remote_state in the configuration's .hcl files: "
                             "Terragrunt would keep local state in the step's folder, "
                             "which is removed when the step ends")
        return False
    if declares_backend(session.folder):
        session.log.info("State: the backend the configuration declares")
        return False
    if session.spec.backend_config:
        raise TaskFailed("backendConfig is set, but the configuration declares no backend "
                         "(its state is kept by the manager); remove backendConfig, or "
                         "declare the backend in the configuration")
    (session.folder / _BACKEND_FILE).write_text('terraform {\n  backend "http" {}\n}\n')
    session.log.info(f"State: kept by the manager under provisioner "
                     f"{session.params.provisioner_identifier!r}, workspace "
                     f"{session.params.workspace!r}")
    return True


def _write_variables(session: Session) -> list[str]:
    assert session.folder is not None
    files = var_file_paths(session.folder, session.spec.var_files)
    if session.spec.variables:
        files.append(_write_private(session.workdir / "variables.tfvars.json",
                                    json.dumps(session.spec.variables)))
    return files


@contextlib.asynccontextmanager
async def session(ctx: TaskContext[Any], params: TerraformParams, tool: str, log: UnitLog,
                  spec: RunSpec) -> AsyncIterator[Session]:
    """A ready session: configuration written, state backend initialised. Leaves
    nothing behind: the folder is removed, leftover locks released."""
    from pydantic import TypeAdapter

    inv = invocation(params, tool)
    workdir = Path(tempfile.mkdtemp(prefix=f"{tool}-step-"))
    s = Session(ctx, params, inv, log, workdir, spec)
    try:
        s.env = await _environment(ctx, params, spec, workdir)
        s.folder = workdir
        await _version(s)
        source = TypeAdapter(Configuration).validate_python(spec.source)
        fetched = await materialize(source, ctx, workdir, log)
        s.folder, s.source = fetched.folder, fetched.source
        s.opts = RunOptions(_write_variables(s), spec.targets, params.lock_timeout)
        async with contextlib.AsyncExitStack() as stack:
            proxy = None
            if _backend(s):
                proxy = StateProxy(manager_of(ctx), provisioner=params.provisioner_identifier,
                                   workspace=params.workspace, task_id=ctx.task_id)
                s.proxy = await stack.enter_async_context(proxy.running())
                stack.push_async_callback(_release, proxy, log)
            await _init(s, proxy)
            yield s
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def _release(proxy: StateProxy, log: UnitLog) -> None:
    released = await proxy.release_leftovers()
    if released:
        log.warn(f"Released the state lock {', '.join(released)} that Terraform left "
                 "held (it did not finish)")
