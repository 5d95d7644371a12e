"""``shell.script``: run a bash or sh script on the delegate, streaming its output into the
step's ``Execute`` unit and handing back the variables it names as outputs.

The script runs in a fresh temporary directory (removed afterwards) as the delegate's
user, with a small environment: the step's variables, the infrastructure's AWS
credentials exported the way the AWS CLI and SDKs read them, and nothing of the
delegate's own environment beyond PATH, HOME and the locale — the delegate's token in
particular never reaches it. Whoever may submit a shell step may run code where the
delegate runs; a delegate started with ``DELEGATE_SHELL_STEPS=false`` does not offer the
step at all (see ``tasks.shell.allowed``)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from agent.context import TaskContext, TaskFailed, UnitLog
from tasks.aws.clients import aws_session
from tasks.aws.credentials import Credentials
from tasks.manifests.errors import ManifestError
from tasks.manifests.render import Variables, render
from tasks.manifests.sources import fetch
from tasks.shell.params import ShellScriptParams
from tasks.shell.process import run_process

# What of the delegate's environment a script sees: enough to find programs and speak
# the user's language, nothing that configures (or authenticates) the delegate.
_PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME")
_OUTPUT_DIR = "DELEGATE_OUTPUT_DIR"
PROVISIONER_OUTPUT = "PROVISIONER_OUTPUT_PATH"


def _variables(params: ShellScriptParams, ctx: TaskContext) -> Variables:
    return Variables(context=ctx.context, secrets=ctx.secrets, region=params.region,
                     cluster=params.cluster, on_secret=ctx.add_secret)


def _render(value: Any, params: ShellScriptParams, ctx: TaskContext, where: str) -> Any:
    try:
        return render(value, _variables(params, ctx), file=where)
    except ManifestError as exc:
        raise TaskFailed(str(exc)) from None


async def _script_text(params: ShellScriptParams, ctx: TaskContext, log: UnitLog) -> str:
    """The script with its expressions rendered (the manager resolved step outputs and
    infra in an inline script already; a fetched one, and secrets, are resolved here)."""
    if isinstance(params.script, str):
        text = params.script
    else:
        files = await fetch(params.script, ctx, None, log, kind="Script")
        parts = []
        for f in files:
            body = f.text if f.text is not None else str(f.content)
            parts.append(body.decode("utf-8", "replace") if isinstance(body, bytes) else body)
        text = "\n".join(parts)
    return str(_render(text, params, ctx, "script"))


def _with_outputs(script: str, names: list[str]) -> str:
    """The script, followed by an EXIT trap that writes each output variable to its own
    file (any bytes survive, and an unset variable writes no file). The trap is set first,
    so it runs however the script ends; a script that sets its own EXIT trap replaces it
    and gets no outputs (said in docs/tasks.md)."""
    if not names:
        return script
    writes = "; ".join(
        f'[ -n "${{{n}+x}}" ] && printf %s "${n}" > "${_OUTPUT_DIR}/{n}"' for n in names)
    return f"trap '{writes}' EXIT\n{script}\n"


async def aws_environment(ctx: TaskContext, credentials: Credentials,
                          region: str | None) -> dict[str, str]:
    """The AWS variables the CLI and SDKs read, for ``region`` with ``credentials`` (none
    without a region); the secret parts are registered for masking. Shared with the
    Terraform steps."""
    env: dict[str, str] = {}
    if not region:
        return env
    env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = region
    async with aws_session(ctx, credentials, region) as aws:
        creds = await aws.frozen_credentials()
    if creds is not None:
        env["AWS_ACCESS_KEY_ID"] = creds.access_key
        env["AWS_SECRET_ACCESS_KEY"] = creds.secret_key
        ctx.add_secret(creds.secret_key)
        if creds.token:
            env["AWS_SESSION_TOKEN"] = creds.token
            ctx.add_secret(creds.token)
    if os.environ.get("AWS_ENDPOINT_URL"):
        env["AWS_ENDPOINT_URL"] = os.environ["AWS_ENDPOINT_URL"]
    return env


async def _environment(params: ShellScriptParams, ctx: TaskContext,
                       workdir: str, outdir: str) -> dict[str, str]:
    env = {k: os.environ[k] for k in _PASSED_THROUGH if k in os.environ}
    # Tools installed beside the delegate (the AWS CLI of its image or of the sandbox
    # extra) come first, so a script gets the CLI that matches the delegate's AWS SDK
    # rather than whichever other `aws` the host has.
    tools = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join(p for p in (tools, env.get("PATH", os.defpath)) if p)
    env["TMPDIR"] = workdir
    env[_OUTPUT_DIR] = outdir
    env.update(await aws_environment(ctx, params.credentials, params.region))
    if params.cluster:
        env["ECS_CLUSTER"] = params.cluster
    values = _render(params.environment_variables, params, ctx, "environmentVariables")
    env.update({k: str(v) for k, v in values.items()})
    return env


def _outputs(outdir: str, names: list[str]) -> dict[str, str]:
    found = {}
    for name in names:
        path = Path(outdir) / name
        if path.is_file():
            found[name] = path.read_bytes().decode("utf-8", "replace")
    return found


def _check_working_directory(params: ShellScriptParams) -> None:
    if params.working_directory and not Path(params.working_directory).is_dir():
        raise TaskFailed(f"workingDirectory {params.working_directory!r} is not a directory "
                         "on the delegate; give an existing one, or leave it out for a "
                         "fresh temporary directory")


def _write_script(workdir: str, text: str, names: list[str]) -> str:
    path = os.path.join(workdir, ".script")
    Path(path).write_text(_with_outputs(text, names))
    return path


async def _execute(ctx: TaskContext[Any], params: ShellScriptParams, log: UnitLog,
                   workdir: str, extra_env: dict[str, str]) -> str:
    """Fetch, write and run the script in ``workdir``; fail on a non-zero exit. Returns
    the folder the output variables were written to."""
    text = await _script_text(params, ctx, log)
    outdir = os.path.join(workdir, ".outputs")
    os.mkdir(outdir, 0o700)
    script_file = _write_script(workdir, text, params.output_variables)
    env = {**await _environment(params, ctx, workdir, outdir), **extra_env}
    log.info(f"Executing command with {params.shell} ...")

    def line(text: str, is_err: bool) -> None:
        (log.warn if is_err else log.info)(text)

    finished = await run_process(
        [shutil.which(params.shell) or params.shell, script_file],
        cwd=params.working_directory or workdir, env=env, sink=line,
        grace=params.kill_grace)
    code = finished.exit_code
    if code != 0:
        how = f"was killed by signal {-code}" if code < 0 else f"exited with {code}"
        tail = "\n".join(finished.last_lines)
        raise TaskFailed(f"The script {how}." + (f" Its last lines:\n{tail}" if tail else ""),
                         output={"exitCode": code})
    return outdir


def _variables_out(ctx: TaskContext[Any], params: ShellScriptParams, outdir: str,
                   log: UnitLog) -> None:
    outputs = _outputs(outdir, params.output_variables)
    missing = [n for n in params.output_variables if n not in outputs]
    ctx.output.update(outputs, exitCode=0)
    if missing:
        log.warn("The script did not set output variable(s): " + ", ".join(missing))


async def shell_script(ctx: TaskContext[ShellScriptParams]) -> dict[str, Any]:
    params = ctx.params
    _check_working_directory(params)
    workdir = tempfile.mkdtemp(prefix="shell-step-")
    try:
        async with ctx.log.unit("Execute") as log:
            outdir = await _execute(ctx, params, log, workdir, {})
            _variables_out(ctx, params, outdir, log)
            log.info("Command completed with ExitCode (0)")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return ctx.output


def _provisioner_outputs(path: str) -> dict[str, Any]:
    where = f"${PROVISIONER_OUTPUT} ({os.path.basename(path)})"
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise TaskFailed(f"The script wrote nothing to {where}: write its outputs there as "
                         'one JSON object, e.g. echo \'{"cluster_name": "c1"}\' > '
                         f'"${PROVISIONER_OUTPUT}"') from None
    try:
        found = json.loads(text) if text.strip() else None
    except json.JSONDecodeError as exc:
        raise TaskFailed(f"{where} is not JSON: {exc.msg} at line {exc.lineno} column "
                         f"{exc.colno}; write one JSON object of outputs") from None
    if not isinstance(found, dict):
        raise TaskFailed(f"{where} holds {type(found).__name__}, not a JSON object of "
                         "outputs")
    return found


async def shell_provision(ctx: TaskContext[ShellScriptParams]) -> dict[str, Any]:
    """``shell.provision``: a script that provisions, and writes its outputs as a JSON
    object to ``$PROVISIONER_OUTPUT_PATH``; they become the step's (the provisioner's)
    outputs."""
    params = ctx.params
    _check_working_directory(params)
    workdir = tempfile.mkdtemp(prefix="shell-provision-")
    output_path = os.path.join(workdir, ".provisioner-output.json")
    try:
        async with ctx.log.unit("Provision") as log:
            outdir = await _execute(ctx, params, log, workdir,
                                    {PROVISIONER_OUTPUT: output_path})
            _variables_out(ctx, params, outdir, log)
            found = _provisioner_outputs(output_path)
            ctx.output.update(found)
            log.info("Provisioner outputs: " + (", ".join(sorted(found)) or "none"))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return ctx.output
