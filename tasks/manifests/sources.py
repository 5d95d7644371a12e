"""Where manifests come from, and fetching them.

A source is one of::

    {store: inline, content: <mapping or YAML/JSON string>}
    {store: files, paths: [account:/ECS Tutorial/RegisterTaskDefinitionRequest.yaml]}
    {store: s3, bucket: B, key: K, region: R?}        (the task's AWS credentials)
    {store: git, repo: URL, ref: branch|tag|sha, path: P, secretRef: NAME?}

A task definition may instead be ``{taskDefinitionArn: ARN}``: the step then describes
that revision rather than registering one.

Git runs the ``git`` command in a temporary directory, bounded in time. A token named by
``secretRef`` reaches git through its environment (``GIT_CONFIG_*``), never the command
line or a URL, and URLs are printed with any user information removed.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from agent.context import TaskContext, UnitLog
from tasks.aws.ports import S3Client
from tasks.manifests.errors import ManifestError
from tasks.manifests.parse import MAX_BYTES

GIT_TIMEOUT = 120.0
_SHA = re.compile(r"[0-9a-fA-F]{7,40}")


class _Source(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class InlineSource(_Source):
    store: Literal["inline"]
    content: dict[str, Any] | list[Any] | str


class FilesSource(_Source):
    store: Literal["files"]
    paths: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)


class S3Source(_Source):
    store: Literal["s3"]
    bucket: str = Field(min_length=1)
    key: str = Field(min_length=1)
    region: str | None = None


class GitSource(_Source):
    store: Literal["git"]
    # No leading "-": these reach git's command line, where they would read as options.
    repo: str = Field(pattern=r"^[^-]", description="https URL, file:// URL or local path")
    ref: str = Field(pattern=r"^[^-]", description="branch, tag or commit sha")
    path: str = Field(pattern=r"^[^-]", description="file path inside the repository")
    secret_ref: str | None = Field(
        default=None, alias="secretRef",
        description="name of the task secret holding an https token",
    )


class TaskDefinitionArn(_Source):
    task_definition_arn: str = Field(alias="taskDefinitionArn", min_length=1)


ManifestSource = Annotated[
    InlineSource | FilesSource | S3Source | GitSource, Field(discriminator="store"),
]


def _task_definition_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        if "taskDefinitionArn" in value or "task_definition_arn" in value:
            return "arn"
        store = value.get("store")
        return store if isinstance(store, str) else None
    if isinstance(value, TaskDefinitionArn):
        return "arn"
    store = getattr(value, "store", None)
    return store if isinstance(store, str) else None


TaskDefinitionSource = Annotated[
    Annotated[InlineSource, Tag("inline")] | Annotated[FilesSource, Tag("files")]
    | Annotated[S3Source, Tag("s3")] | Annotated[GitSource, Tag("git")]
    | Annotated[TaskDefinitionArn, Tag("arn")],
    Discriminator(
        _task_definition_tag,
        custom_error_type="manifest_source",
        custom_error_message="a task definition source needs `store` (inline, files, s3 "
                             "or git) or `taskDefinitionArn`",
    ),
]

AnySource = InlineSource | FilesSource | S3Source | GitSource


class ManifestSpecs(BaseModel):
    """The ``manifests`` block of an ECS step's params."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    task_definition: TaskDefinitionSource | None = Field(default=None, alias="taskDefinition")
    service_definition: ManifestSource | None = Field(default=None, alias="serviceDefinition")
    scalable_targets: list[ManifestSource] = Field(default_factory=list,
                                                   alias="scalableTargets")
    scaling_policies: list[ManifestSource] = Field(default_factory=list,
                                                   alias="scalingPolicies")
    run_task_request: ManifestSource | None = Field(default=None, alias="runTaskRequest")


@dataclass(frozen=True)
class FetchedFile:
    """One fetched manifest. ``text`` is None for inline content given as a mapping, which
    arrives already parsed in ``content``."""

    name: str
    text: str | bytes | None
    content: Any = None


class AwsClients(Protocol):
    async def s3(self, region: str | None = None) -> S3Client: ...


STORE_NAMES = {
    "inline": "the step's parameters",
    "files": "the manager's file store",
    "s3": "S3",
    "git": "Git",
}


def redact_url(url: str) -> str:
    """``https://user:token@host/x`` -> ``https://***@host/x``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


def describe(spec: AnySource) -> list[str]:
    """The names a source's files go by in logs and errors."""
    if isinstance(spec, InlineSource):
        return ["inline"]
    if isinstance(spec, FilesSource):
        return list(spec.paths)
    if isinstance(spec, S3Source):
        return [f"s3://{spec.bucket}/{spec.key}"]
    return [f"{redact_url(spec.repo)}@{spec.ref}:{spec.path}"]


async def _fetch_files(spec: FilesSource, ctx: TaskContext) -> list[FetchedFile]:
    fetched = []
    for path in spec.paths:
        try:
            data = await ctx.files.get(path)
        except ManifestError:
            raise
        except Exception as exc:  # the store's own errors: whatever its transport raises
            raise ManifestError(
                f"could not fetch it from the manager's file store: {exc}; check that "
                "the file exists and the delegate's account may read it", file=path,
            ) from exc
        if len(data) > MAX_BYTES:
            raise ManifestError(f"file is {len(data)} bytes, over the {MAX_BYTES}-byte "
                                "limit for a manifest", file=path)
        fetched.append(FetchedFile(path, data))
    return fetched


async def _fetch_s3(spec: S3Source, aws: AwsClients | None) -> list[FetchedFile]:
    name = f"s3://{spec.bucket}/{spec.key}"
    if aws is None:
        raise ManifestError("an S3 source needs AWS access, which this run does not have",
                            file=name)
    from botocore.exceptions import BotoCoreError, ClientError

    client = await aws.s3(spec.region)
    try:
        head = await client.head_object(Bucket=spec.bucket, Key=spec.key)
        size = int(head.get("ContentLength", 0))
        if size > MAX_BYTES:
            raise ManifestError(f"object is {size} bytes, over the {MAX_BYTES}-byte limit "
                                "for a manifest", file=name)
        answer = await client.get_object(Bucket=spec.bucket, Key=spec.key)
        async with answer["Body"] as body:
            data: bytes = await body.read()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchKey", "NoSuchBucket", "NotFound"):
            what = "does not exist; check the bucket, key and region"
        elif code in ("403", "AccessDenied"):
            what = ("cannot be read with the step's credentials; grant s3:GetObject on it")
        else:
            what = f"could not be read: {code or exc}"
        raise ManifestError(f"the object {what}", file=name) from exc
    except BotoCoreError as exc:
        raise ManifestError(f"could not reach S3: {exc}", file=name) from exc
    return [FetchedFile(name, data)]


def _git_env(token: str | None) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "LC_ALL": "C",
    }
    if token:
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        env.update({"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader",
                    "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}"})
    return env


class _Git:
    def __init__(self, workdir: str, env: dict[str, str], name: str, secrets: list[str],
                 timeout: float) -> None:
        self.workdir = workdir
        self.env = env
        self.name = name
        self.secrets = secrets
        self.timeout = timeout

    def _clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return re.sub(r"(\w+://)[^/@\s]+@", r"\1***@", text).strip()

    async def run(self, *args: str) -> tuple[int, bytes, str]:
        proc = await asyncio.create_subprocess_exec(
            "git", *args, cwd=self.workdir, env=self.env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self.timeout)
        except (TimeoutError, asyncio.CancelledError):
            proc.kill()
            await proc.wait()
            raise
        assert proc.returncode is not None
        return proc.returncode, out, self._clean(err.decode("utf-8", "replace"))

    async def must(self, what: str, *args: str) -> bytes:
        code, out, err = await self.run(*args)
        if code != 0:
            last = err.splitlines()[-1] if err else f"git exited with {code}"
            raise ManifestError(f"{what}: {last}", file=self.name)
        return out


async def _fetch_git(spec: GitSource, secrets: Mapping[str, str],
                     add_secret: Callable[[str], None], time_limit: float, base_dir: str | None,
                     ) -> list[FetchedFile]:
    name = describe(spec)[0]
    token = None
    if spec.secret_ref:
        token = secrets.get(spec.secret_ref)
        if token is None:
            raise ManifestError(f"secretRef names secret {spec.secret_ref!r}, which the task "
                                "does not have; add it to the task's secrets", file=name)
        add_secret(token)
    repo = spec.repo
    if base_dir and "://" not in repo and not os.path.isabs(repo) and ":" not in repo:
        repo = os.path.join(base_dir, repo)
    hidden = [token, base64.b64encode(f"x-access-token:{token}".encode()).decode()] \
        if token else []
    workdir = tempfile.mkdtemp(prefix="manifest-git-")
    git = _Git(workdir, _git_env(token), name, hidden, time_limit)
    try:
        async with asyncio.timeout(time_limit):
            await git.must("could not create a work directory", "init", "-q")
            await git.must("bad repository URL", "remote", "add", "origin", repo)
            code, _, err = await git.run("fetch", "-q", "--depth", "1", "--no-tags",
                                         "origin", spec.ref)
            if code == 0:
                revision = "FETCH_HEAD"
            elif _SHA.fullmatch(spec.ref):
                # Servers that refuse a shallow fetch of a commit id, and short ids, need
                # the history to find the commit.
                await git.must(f"could not fetch {spec.ref}", "fetch", "-q", "--tags",
                               "origin", "+refs/heads/*:refs/remotes/origin/*")
                revision = spec.ref
            else:
                last = err.splitlines()[-1] if err else "git fetch failed"
                raise ManifestError(
                    f"could not fetch ref {spec.ref!r}: {last}; check the repository URL, "
                    "the branch, tag or commit, and the token", file=name)
            code, _, _ = await git.run("rev-parse", "--verify", "-q", f"{revision}^{{commit}}")
            if code != 0:
                raise ManifestError(f"{spec.ref!r} is not a branch, tag or commit of the "
                                    "repository; check the ref", file=name)
            code, out, _ = await git.run("cat-file", "-s", f"{revision}:{spec.path}")
            if code != 0:
                raise ManifestError(f"no file {spec.path!r} at {spec.ref}; check the path "
                                    "(relative to the repository root)", file=name)
            size = int(out.decode().strip() or 0)
            if size > MAX_BYTES:
                raise ManifestError(f"file is {size} bytes, over the {MAX_BYTES}-byte limit "
                                    "for a manifest", file=name)
            data = await git.must("could not read the file", "cat-file", "blob",
                                  f"{revision}:{spec.path}")
    except TimeoutError:
        raise ManifestError(f"git did not finish within {time_limit:.0f}s; check that the "
                            "repository is reachable", file=name) from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return [FetchedFile(name, data)]


async def fetch(spec: AnySource, ctx: TaskContext, aws: AwsClients | None, log: UnitLog,
                *, kind: str, git_timeout: float = GIT_TIMEOUT,
                base_dir: str | None = None) -> list[FetchedFile]:
    """Fetch one source, logging as the deployment log shows it. ``kind`` names the
    manifest (``EcsTaskDefinition``...). ``base_dir`` resolves relative local git
    repositories (offline validation)."""
    store = STORE_NAMES[spec.store]
    log.info(f"Fetching {kind} from {store}")
    log.info("")
    if isinstance(spec, InlineSource):
        log.info(f"Using the {kind} given inline")
        if isinstance(spec.content, str):
            return [FetchedFile(f"inline {kind}", spec.content)]
        return [FetchedFile(f"inline {kind}", None, spec.content)]
    names = describe(spec)
    log.info("Fetching following Files :")
    for name in names:
        log.info(f"- {name}")
    if isinstance(spec, FilesSource):
        files = await _fetch_files(spec, ctx)
    elif isinstance(spec, S3Source):
        files = await _fetch_s3(spec, aws)
    else:
        files = await _fetch_git(spec, ctx.secrets, ctx.add_secret, git_timeout, base_dir)
    log.info("Successfully fetched following files:")
    for name in names:
        log.info(f"- {name}")
    log.info("")
    return files
