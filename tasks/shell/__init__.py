"""Shell steps: scripts that run on the delegate.

The delegate's owner decides whether this delegate offers them: with
``DELEGATE_SHELL_STEPS=false`` the task types are not registered, so the delegate does not
advertise them and the manager routes shell steps to a delegate that does (or says that
none can run them)."""

from __future__ import annotations

import os

from agent.context import TaskRegistry, TaskType

ENV_SWITCH = "DELEGATE_SHELL_STEPS"


def allowed(environ: dict[str, str] | None = None) -> bool:
    value = (environ if environ is not None else os.environ).get(ENV_SWITCH, "true")
    return value.strip().lower() not in ("false", "0", "no", "off")


def register(registry: TaskRegistry) -> None:
    if not allowed():
        return
    from tasks.shell.params import ShellScriptParams
    from tasks.shell.script import shell_provision, shell_script

    registry.register(TaskType(
        name="shell.script",
        handler=shell_script,
        summary="Run a bash or sh script on the delegate, with the infrastructure's AWS "
                "credentials exported; named shell variables become outputs.",
        params_model=ShellScriptParams,
        outputs={"exitCode": "the script's exit code",
                 "NAME": "each of outputVariables, as the script left it"},
        units=("Execute",),
    ))
    registry.register(TaskType(
        name="shell.provision",
        handler=shell_provision,
        summary="Provision with a script: it writes its outputs as one JSON object to "
                "$PROVISIONER_OUTPUT_PATH, and they become the step's outputs "
                "(<+provisioner.NAME> in a provisioner section).",
        params_model=ShellScriptParams,
        outputs={"NAME": "each key of the JSON object the script wrote",
                 "exitCode": "the script's exit code"},
        units=("Provision",),
    ))
