from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.context import TaskContext
from tasks.manifests import GitSource, ManifestError, fetch
from tasks.manifests.sources import redact_url

from .conftest import Recorder, data

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org",
           "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "PATH": "/usr/bin:/bin"}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, env=GIT_ENV, check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, str, str]:
    """A repository with two commits on `main`: the first holds v1 of the manifest, the
    second v2. Returns (path, sha of v1, sha of v2)."""
    path = tmp_path / "manifests"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "ecs").mkdir()
    (path / "ecs" / "service.yaml").write_bytes(data("CreateServiceRequest.yaml"))
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "v1")
    first = git(path, "rev-parse", "HEAD")
    git(path, "tag", "v1")
    (path / "ecs" / "service.yaml").write_text("serviceName: second\n")
    git(path, "commit", "-q", "-am", "v2")
    return path, first, git(path, "rev-parse", "HEAD")


async def _fetch(ctx: TaskContext, spec: GitSource, **kw: object) -> bytes:
    async with ctx.log.unit("Fetch Manifests") as log:
        [file] = await fetch(spec, ctx, None, log, kind="EcsServiceDefinition", **kw)  # type: ignore[arg-type]
    assert isinstance(file.text, bytes)
    return file.text


def source(repo: str, ref: str, path: str = "ecs/service.yaml", **more: str) -> GitSource:
    return GitSource.model_validate({"store": "git", "repo": repo, "ref": ref, "path": path,
                                     **more})


async def test_fetch_by_branch_tag_and_sha(make_ctx: Callable[..., TaskContext],
                                           recorder: Recorder,
                                           repo: tuple[Path, str, str]) -> None:
    path, first, second = repo
    ctx = make_ctx()
    assert await _fetch(ctx, source(f"file://{path}", "main")) == b"serviceName: second\n"
    assert await _fetch(ctx, source(str(path), "v1")) == data("CreateServiceRequest.yaml")
    assert await _fetch(ctx, source(str(path), first)) == data("CreateServiceRequest.yaml")
    assert await _fetch(ctx, source(str(path), first[:10])) == data("CreateServiceRequest.yaml")
    assert await _fetch(ctx, source(str(path), second)) == b"serviceName: second\n"
    lines = recorder.lines()
    assert "Fetching EcsServiceDefinition from Git" in lines
    assert f"- file://{path}@main:ecs/service.yaml" in lines


async def test_relative_repository_path_resolves_from_base_dir(
        make_ctx: Callable[..., TaskContext], repo: tuple[Path, str, str]) -> None:
    path, _, _ = repo
    text = await _fetch(make_ctx(), source("manifests", "main"), base_dir=str(path.parent))
    assert text == b"serviceName: second\n"


@pytest.mark.parametrize(("ref", "file", "message"), [
    ("nope", "ecs/service.yaml", "could not fetch ref 'nope'"),
    ("main", "ecs/missing.yaml", "no file 'ecs/missing.yaml' at main"),
    ("0" * 40, "ecs/service.yaml", "is not a branch, tag or commit"),
])
async def test_bad_ref_or_path(make_ctx: Callable[..., TaskContext],
                               repo: tuple[Path, str, str], ref: str, file: str,
                               message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        await _fetch(make_ctx(), source(str(repo[0]), ref, file))


async def test_token_comes_from_secrets_and_never_shows(
        make_ctx: Callable[..., TaskContext], recorder: Recorder, tmp_path: Path) -> None:
    token = "ghp_tokenvalue123456"
    ctx = make_ctx(secrets={"gitToken": token})
    spec = source(f"file://{tmp_path}/absent", "main", secretRef="gitToken")
    with pytest.raises(ManifestError) as info:
        await _fetch(ctx, spec)
    assert token not in str(info.value)
    assert recorder.secrets == [token]
    assert all(token not in line for line in recorder.lines())
    with pytest.raises(ManifestError, match="secretRef names secret 'other'"):
        await _fetch(ctx, source(str(tmp_path), "main", secretRef="other"))


async def test_git_is_time_bounded(make_ctx: Callable[..., TaskContext],
                                   repo: tuple[Path, str, str]) -> None:
    with pytest.raises(ManifestError, match="git did not finish within 0s"):
        await _fetch(make_ctx(), source(str(repo[0]), "main"), git_timeout=0.0001)


def test_urls_lose_their_credentials() -> None:
    assert redact_url("https://user:tok@git.example.org/a/b.git") == \
        "https://***@git.example.org/a/b.git"
    assert redact_url("https://git.example.org/a.git") == "https://git.example.org/a.git"
