"""The install the Dockerfile performs, without Docker: build the wheel, install it into a
fresh virtualenv, run ``delegate version``, then run the delegate under tini as an
unprivileged user with only the declared paths writable (HOME, TMPDIR,
DELEGATE_STATE_DIR, as the image's VOLUMEs), against a real manager and the sandbox."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from testkit.sandbox_fixture import Aws
from testkit.stack import ManagerApi, ManagerProcess, wait_for

from .conftest import exit_of, health_port
from .deployments import rolling_deploy
from .proc import DelegateProcess, delegate_env

ROOT = Path(__file__).resolve().parents[2]
# What the Dockerfile's build stage copies: the wheel is made of exactly these.
WHEEL_SOURCES = ("pyproject.toml", "README.md", "agent", "tasks", "manager", "sandbox", "wire",
                 "cli")
NOBODY = 65534


def _run(cmd: list[str], *, env: dict[str, str] | None = None,
         cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False,
                            env=env, cwd=cwd)
    assert result.returncode == 0, f"{cmd}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture
def workdir() -> Iterator[Path]:
    """Outside pytest's 0700 temp tree, so the unprivileged user can reach the venv; root
    owned and 0755, so that user cannot write it."""
    path = Path(tempfile.mkdtemp(prefix="ecs-delegate-wheel-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _build_wheel(workdir: Path) -> Path:
    src = workdir / "src"
    src.mkdir()
    for name in WHEEL_SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, src / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(source, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
          "--wheel-dir", str(workdir / "dist"), str(src)])
    (wheel,) = (workdir / "dist").glob("ecs_delegate-*.whl")
    return wheel


def _base_python(drop: list[str]) -> str | None:
    """A Python of this minor version that the unprivileged user can execute: this
    interpreter's base when its directories are open to that user; else the system one
    (pyenv under /root, for one, is not). In the image it is /usr/local/bin/python."""
    candidates = [str(Path(sys._base_executable).resolve()),  # type: ignore[attr-defined]
                  f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"]
    want = f"{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in candidates:
        if not Path(candidate).exists():
            continue
        probe = subprocess.run(
            [*drop, "/bin/sh", "-c", f'exec "{candidate}" -c "import sys, venv; '
             "print('%d.%d' % sys.version_info[:2])\""],
            capture_output=True, text=True, timeout=30, check=False, cwd="/")
        if probe.returncode == 0 and probe.stdout.strip() == want:
            return candidate
    return None


def _runtime_distributions() -> list[importlib.metadata.Distribution]:
    """The wheel's dependencies, transitively, as installed here (extras and markers
    evaluated), without our own distribution: what `pip install` of the wheel would
    fetch, minus the network."""
    found: dict[str, importlib.metadata.Distribution] = {}
    todo: list[tuple[str, frozenset[str]]] = [("ecs-delegate", frozenset())]
    while todo:
        name, extras = todo.pop()
        key = canonicalize_name(name)
        if key in found:
            continue
        dist = importlib.metadata.distribution(name)
        found[key] = dist
        for line in dist.requires or []:
            req = Requirement(line)
            wanted = extras or frozenset({""})
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in wanted):
                todo.append((req.name, frozenset(req.extras)))
    del found["ecs-delegate"]
    return list(found.values())


def _link_or_copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dest)  # same filesystem: instant, and as read-only as the original
    except OSError:
        shutil.copy2(src, dest)


def _fresh_venv(workdir: Path, wheel: Path, base: str) -> Path:
    """A venv that owns every file it runs: the wheel installed by pip, its dependencies
    installed file by file from their RECORDs into the venv's own site-packages. Nothing
    points back into the checkout or the dev venv, so the test does not depend on where
    the checkout lives or who may enter its directories (an unprivileged user cannot
    follow a link into a 0700 home)."""
    venv = workdir / "venv"
    _run([base, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
          "--no-index", "--quiet", str(wheel)])
    venv_site = Path(_run([str(python), "-c", "import sysconfig; "
                           "print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    for dist in _runtime_distributions():
        for file in dist.files or []:
            if file.parts[0] == ".." or file.suffix == ".pyc":
                continue  # console scripts outside site-packages; bytecode is rebuilt
            src = Path(str(dist.locate_file(file)))
            if src.is_file():
                _link_or_copy(src, venv_site / file)
    return venv


def _writable_dirs(workdir: Path, uid: int) -> dict[str, Path]:
    dirs = {}
    for name, var in (("home", "HOME"), ("tmp", "TMPDIR"), ("state", "DELEGATE_STATE_DIR")):
        path = workdir / name
        path.mkdir(mode=0o700)
        if os.geteuid() == 0:
            os.chown(path, uid, uid)
        dirs[var] = path
    return dirs


def _all_inside(paths: list[str], venv: Path) -> bool:
    return all(Path(p).resolve().is_relative_to(venv.resolve()) for p in paths)


def _only_child(pid: int) -> tuple[str, str]:
    """(/proc status, command line) of tini's one child: the delegate."""
    (child,) = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    status = Path(f"/proc/{child}/status").read_text()
    cmdline = Path(f"/proc/{child}/cmdline").read_text().strip("\0").replace("\0", " ")
    return status, cmdline


WHERE = """
import json, agent, tasks, importlib.metadata as m
dist = m.distribution("ecs-delegate")
print(json.dumps([agent.__file__, tasks.__file__, str(dist.locate_file(""))]))
"""
PROBE = """
import json, os, sys
writable = []
for top, dirs, files in os.walk(sys.argv[1]):
    dirs[:] = [d for d in dirs if os.path.join(top, d) not in sys.argv[2:]]
    for name in [*dirs, *files, "."]:
        path = os.path.normpath(os.path.join(top, name))
        if not os.path.islink(path) and os.access(path, os.W_OK):
            writable.append(path)
print(json.dumps({"uid": os.getuid(), "writable": sorted(set(writable)),
                  "declared": [os.access(p, os.W_OK) for p in sys.argv[2:]]}))
"""


async def test_wheel_in_a_fresh_venv_runs_under_tini_as_an_unprivileged_user(
        workdir: Path, api: ManagerApi, manager: ManagerProcess, token: str, aws: Aws,
        spawn: Callable[..., DelegateProcess]) -> None:
    tini = shutil.which("tini")
    if tini is None:
        pytest.skip("tini is not installed (Debian: apt-get install tini; .ci/run does)")
    as_root = os.geteuid() == 0
    setpriv = shutil.which("setpriv")
    if as_root and setpriv is None:
        pytest.skip("running as root without setpriv (util-linux) to drop privileges")
    drop = ([setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
            if as_root and setpriv else [])
    uid = NOBODY if as_root else os.geteuid()

    base = _base_python(drop)
    if base is None:
        pytest.skip(f"no Python {sys.version_info.major}.{sys.version_info.minor} that uid "
                    f"{uid} can execute (this one is {sys._base_executable})")  # type: ignore[attr-defined]
    venv = _fresh_venv(workdir, _build_wheel(workdir), base)
    python, delegate = str(venv / "bin" / "python"), str(venv / "bin" / "delegate")

    writable = _writable_dirs(workdir, uid)
    env = {
        **delegate_env(manager.url, token, name="wheel", aws=aws.environment()),
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",  # as in the image: site-packages is read-only
        **{var: str(path) for var, path in writable.items()},
    }
    # cwd is the state directory everywhere, as the image's WORKDIR: `python -c` puts the
    # cwd first on sys.path, and the source tree there would hide the wheel.
    cwd = writable["DELEGATE_STATE_DIR"]
    version = _run([delegate, "version", "--output", "json"], env=env, cwd=cwd)
    assert json.loads(version.stdout)["version"] == "0.1.0"
    where = json.loads(_run([python, "-c", WHERE], env=env, cwd=cwd).stdout)
    assert _all_inside(where, venv), f"not the wheel's code: {where}"

    probe = json.loads(_run([*drop, python, "-c", PROBE, str(workdir),
                             *map(str, writable.values())], env=env, cwd=cwd).stdout)
    assert probe["uid"] == uid
    assert probe["declared"] == [True, True, True]
    if as_root:
        assert probe["writable"] == [], "writable beyond the declared paths"

    # tini -s: a subreaper, since here it is not PID 1 as in the image.
    proc = spawn(env, command=[*drop, tini, "-s", "--", delegate, "run"], cwd=cwd)
    await health_port(proc)
    await wait_for(lambda: proc.first("registered with manager"), what="registration")
    assert proc.proc is not None
    status, cmdline = _only_child(proc.proc.pid)
    assert f"Uid:\t{uid}\t{uid}\t{uid}\t{uid}" in status, status
    assert cmdline.endswith(f"{delegate} run"), cmdline

    task_id = await api.submit(rolling_deploy(aws, name="from-wheel"))
    assert (await api.wait_finished(task_id))["status"] == "SUCCESS"

    proc.signal(signal.SIGTERM)  # to tini, which forwards it
    code, _ = await exit_of(proc, timeout=30)
    assert code == 0, proc.text()
    assert proc.first("signal received; draining"), "the delegate never saw the signal"
    assert proc.first("delegate stopped")
