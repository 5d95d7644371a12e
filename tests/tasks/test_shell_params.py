"""shell.script params refuse what the shell could not take, naming the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tasks.shell import allowed
from tasks.shell.params import ShellScriptParams


@pytest.mark.parametrize(("params", "says"), [
    ({"environmentVariables": {"1BAD": "x"}}, "'1BAD' is not a shell variable name"),
    ({"environmentVariables": {"AWS_REGION": "x"}}, "AWS_REGION is set by the step"),
    ({"outputVariables": ["OK", "with-dash"]}, "'with-dash' is not a shell variable name"),
    ({"outputVariables": ["A", "A"]}, "named twice"),
    ({"shell": "zsh"}, "shell"),
    ({"killGrace": "0s"}, "killGrace"),
])
def test_bad_params_say_what(params: dict[str, object], says: str) -> None:
    with pytest.raises(ValidationError) as err:
        ShellScriptParams.model_validate({"script": "true", **params})
    assert says in str(err.value)


def test_a_script_may_come_from_a_store() -> None:
    p = ShellScriptParams.model_validate(
        {"script": {"store": "files", "paths": ["account:/scripts/alarm.sh"]}})
    assert not isinstance(p.script, str) and p.script.store == "files"


@pytest.mark.parametrize(("value", "on"), [("false", False), ("0", False), ("No", False),
                                           ("true", True), ("", True)])
def test_the_owner_switch(value: str, on: bool) -> None:
    assert allowed({"DELEGATE_SHELL_STEPS": value}) is on
