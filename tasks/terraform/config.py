"""Putting a Terraform configuration into the task's folder, from Git, the manager's
file store or the step's params, and saying how to get exactly it again.

The "how to get it again" (:class:`Materialized.source`) is what an apply record keeps for
``terraform.rollback``: Git at the commit the ref pointed to, and files of the file store
as their contents (the store may hold other versions by then)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from agent.context import TaskContext, TaskFailed, UnitLog
from tasks.manifests.sources import _SHA, GIT_TIMEOUT, _Git, _git_env, redact_url
from tasks.terraform.params import (
    Configuration,
    FilesConfiguration,
    GitConfiguration,
    InlineConfiguration,
)

MAX_CONFIGURATION_BYTES = 16 * 1024 * 1024
# `backend "s3" {` or `cloud {` inside a terraform block, or a .tf.json "backend" key.
_BACKEND = re.compile(r'^\s*(backend\s+"[^"]+"\s*\{|cloud\s*\{)', re.MULTILINE)
_JSON_BACKEND = re.compile(r'"(backend|cloud)"\s*:')


@dataclass(frozen=True)
class Materialized:
    folder: Path  # the configuration's folder (where terraform runs)
    source: dict[str, Any]  # a configuration that gives exactly these files again
    described: str


def declares_backend(folder: Path) -> bool:
    """Whether the configuration says where its state lives (a backend or a cloud block):
    then it is used untouched and the manager keeps no state for it."""
    for path in folder.iterdir():
        if path.suffix == ".tf" and _BACKEND.search(path.read_text(errors="replace")):
            return True
        if path.name.endswith(".tf.json") and _JSON_BACKEND.search(
                path.read_text(errors="replace")):
            return True
    return False


def _write(root: Path, files: dict[str, str]) -> None:
    total = sum(len(t.encode()) for t in files.values())
    if total > MAX_CONFIGURATION_BYTES:
        raise TaskFailed(f"the configuration is {total} bytes, over the "
                         f"{MAX_CONFIGURATION_BYTES}-byte limit")
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _make_folder(path: Path) -> None:
    path.mkdir(parents=True)


def _relative(path: str, folder: str | None) -> str:
    bare = path.removeprefix("account:").lstrip("/")
    if folder is None:
        return PurePosixPath(bare).name
    base = folder.removeprefix("account:").strip("/")
    if base and not (bare == base or bare.startswith(base + "/")):
        raise TaskFailed(f"configuration.paths: {path!r} is not below folder {folder!r}; "
                         "list files inside the folder, or leave folder out")
    return bare[len(base):].lstrip("/") if base else bare


async def _from_files(spec: FilesConfiguration, ctx: TaskContext, root: Path,
                      log: UnitLog) -> dict[str, str]:
    files: dict[str, str] = {}
    for path in spec.paths:
        try:
            data = await ctx.files.get(path)
        except Exception as exc:  # the store's own errors: whatever its transport raises
            raise TaskFailed(f"configuration: could not fetch {path!r} from the manager's "
                             f"file store: {exc}") from exc
        files[_relative(path, spec.folder)] = data.decode("utf-8", "replace")
        log.info(f"- {path}")
    _write(root, files)
    return files


async def _checkout(git: _Git, ref: str) -> str:
    code, _, err = await git.run("fetch", "-q", "--depth", "1", "--no-tags", "origin", ref)
    if code == 0:
        revision = "FETCH_HEAD"
    elif _SHA.fullmatch(ref):
        # Servers that refuse a shallow fetch of a commit id, and short ids, need the
        # history to find the commit.
        await git.must(f"could not fetch {ref}", "fetch", "-q", "--tags", "origin",
                       "+refs/heads/*:refs/remotes/origin/*")
        revision = ref
    else:
        last = err.splitlines()[-1] if err else "git fetch failed"
        raise TaskFailed(f"configuration: could not fetch ref {ref!r} of {git.name}: {last}; "
                         "check the repository URL, the branch, tag or commit, and the token")
    await git.must(f"{ref!r} is not a commit of the repository", "checkout", "-q", revision)
    return (await git.must("could not read the commit", "rev-parse", "HEAD")).decode().strip()


async def _from_git(spec: GitConfiguration, ctx: TaskContext, root: Path) -> str:
    token = None
    if spec.secret_ref:
        token = ctx.secrets.get(spec.secret_ref)
        if token is None:
            raise TaskFailed(f"configuration.secretRef names secret {spec.secret_ref!r}, "
                             "which the task does not have; add it to the task's secrets")
        ctx.add_secret(token)
    _make_folder(root)
    git = _Git(str(root), _git_env(token), redact_url(spec.repo), [token] if token else [],
               GIT_TIMEOUT)
    try:
        async with asyncio.timeout(GIT_TIMEOUT):
            await git.must("could not create a work directory", "init", "-q")
            await git.must("bad repository URL", "remote", "add", "origin", spec.repo)
            return await _checkout(git, spec.ref)
    except TimeoutError:
        raise TaskFailed(f"configuration: git did not finish within {GIT_TIMEOUT:.0f}s; "
                         "check that the repository is reachable") from None
    except Exception as exc:
        if isinstance(exc, TaskFailed):
            raise
        raise TaskFailed(f"configuration: {exc}") from None


async def materialize(spec: Configuration, ctx: TaskContext, workdir: Path,
                      log: UnitLog) -> Materialized:
    """Write the configuration below ``workdir``; fail with what to fix."""
    root = workdir / "configuration"
    if isinstance(spec, InlineConfiguration):
        root.mkdir()
        _write(root, spec.files)
        log.info(f"Configuration given inline: {', '.join(sorted(spec.files))}")
        return Materialized(root, spec.model_dump(by_alias=True), "inline")
    if isinstance(spec, FilesConfiguration):
        root.mkdir()
        log.info("Fetching the configuration from the manager's file store:")
        files = await _from_files(spec, ctx, root, log)
        return Materialized(root, {"store": "inline", "files": files}, "the file store")
    sha = await _from_git(spec, ctx, root)
    folder = root / spec.folder
    if not folder.is_dir():
        raise TaskFailed(f"configuration.folder {spec.folder!r} is not a folder of "
                         f"{redact_url(spec.repo)} at {spec.ref}; check the folder")
    shutil.rmtree(root / ".git", ignore_errors=True)
    log.info(f"Configuration from {redact_url(spec.repo)} at {spec.ref} (commit {sha}), "
             f"folder {spec.folder}")
    source = {**spec.model_dump(by_alias=True, exclude_none=True), "ref": sha}
    return Materialized(folder, source, f"{redact_url(spec.repo)}@{sha[:12]}")


def var_file_paths(folder: Path, names: list[str]) -> list[str]:
    paths = []
    for name in names:
        path = folder / name
        if not path.is_file():
            raise TaskFailed(f"varFiles: {name!r} is not a file of the configuration "
                             f"(looked in {os.path.basename(folder)}/); check the path")
        paths.append(str(path))
    return paths
