"""The command lines of the Terraform and Terragrunt steps, built from what a run needs
and nothing else, so they can be checked without either binary.

Every command gets ``-input=false -no-color`` (the run is unattended and its log is
text); variables reach Terraform through a var file the step writes, and backend
settings through a backend config file, so no value ever appears on a command line
(which any local user may read)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Tool = Literal["terraform", "terragrunt"]


@dataclass(frozen=True)
class Invocation:
    """One run's fixed parts: the binary, and for Terragrunt its own options."""

    tool: Tool
    binary: str
    run_all: bool = False
    working_directory: str | None = None

    def _base(self, command: str) -> list[str]:
        if self.tool == "terraform":
            return [self.binary, command]
        argv = [self.binary, *(["run-all"] if self.run_all else []), command,
                "--terragrunt-non-interactive"]
        if self.working_directory:
            argv += ["--terragrunt-working-dir", self.working_directory]
        return argv

    def version(self) -> list[str]:
        return [self.binary, "--version"] if self.tool == "terragrunt" else \
            [self.binary, "version"]

    def init(self, backend_files: list[str]) -> list[str]:
        return [*self._base("init"), "-input=false", "-no-color",
                *(f"-backend-config={f}" for f in backend_files)]

    def workspace(self, name: str) -> list[str]:
        return [*self._base("workspace"), "select", "-or-create", "-no-color", name]

    @property
    def saves_plans(self) -> bool:
        """run-all plans every module: there is no one plan file to keep."""
        return not self.run_all

    def plan(self, opts: RunOptions, plan_file: str, *, destroy: bool) -> list[str]:
        saved = ["-detailed-exitcode", f"-out={plan_file}"] if self.saves_plans else []
        return [*self._base("plan"), "-input=false", "-no-color", *saved, *opts.flags(),
                *(["-destroy"] if destroy else [])]

    def apply(self, opts: RunOptions, plan_file: str | None = None) -> list[str]:
        argv = [*self._base("apply"), "-input=false", "-no-color"]
        if plan_file is not None:  # a saved plan holds its variables and targets
            return [*argv, f"-lock-timeout={opts.lock_timeout:g}s", plan_file]
        return [*argv, "-auto-approve", *opts.flags()]

    def destroy(self, opts: RunOptions) -> list[str]:
        return [*self._base("destroy"), "-input=false", "-no-color", "-auto-approve",
                *opts.flags()]

    def output(self) -> list[str]:
        return [*self._base("output"), "-no-color", "-json"]


@dataclass(frozen=True)
class RunOptions:
    var_files: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    lock_timeout: float = 0.0

    def flags(self) -> list[str]:
        return [f"-lock-timeout={self.lock_timeout:g}s",
                *(f"-var-file={f}" for f in self.var_files),
                *(f"-target={t}" for t in self.targets)]
