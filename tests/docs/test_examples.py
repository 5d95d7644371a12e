"""Every example in the README and docs/tasks.md runs as written (issue 17 part 5).

The examples are read out of the documents themselves: each `delegate submit` and
`delegate validate` line of a ```sh block, and each fenced task or execution file
(a YAML or JSON mapping with `type` or `steps`). Each one runs the way the documents tell
a new user to run it: the sandbox seeded by `delegate sandbox --seed`'s own code, its
printed placeholder values put into a copy of docs/examples, the real manager process, a
real delegate tagged `ecs` on the real websocket, the documents' `delegate files put`
lines, then the example as a `delegate` process from the copy's root. It must end as the
document says (a trailing `# SUCCESS` comment, SUCCESS when it says nothing).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from sandbox import Sandbox
from sandbox.seed import exports, seed, table
from testkit.stack import ADMIN_TOKEN, DelegateRunner, ManagerApi, running_manager

ROOT = Path(__file__).resolve().parents[2]
DOCS = ("README.md", "docs/tasks.md")
EXAMPLES = ROOT / "docs" / "examples"
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)
HEADING = re.compile(r"^#{1,6} +(.+?) *$", re.M)
OUTCOME = re.compile(r"\b(SUCCESS|FAILED|ROLLED_BACK|ABORTED|TIMED_OUT)\b")
# What `delegate submit` exits with for each end (the README's exit-code table).
EXIT_CODES = {"SUCCESS": 0, "FAILED": 1, "ROLLED_BACK": 1, "ABORTED": 3, "TIMED_OUT": 4}
CASE_COMMANDS = {"submit", "validate"}
# A table row `delegate sandbox --seed` prints: the placeholder, spaces, its value.
TABLE_ROW = re.compile(r"^(<[^>]+>)\s+(\S.*)$")


@dataclass(frozen=True)
class Example:
    """One runnable example: a `delegate` command line, or a fenced file to submit."""

    doc: str
    heading: str
    line: int
    argv: tuple[str, ...]
    expect: str = "SUCCESS"
    file_text: str | None = None

    @property
    def name(self) -> str:
        what = " ".join(self.argv) if self.file_text is None else f"file at line {self.line}"
        return f"{self.doc} > {self.heading} > {what}"


def fenced_blocks(doc: str) -> Iterator[tuple[str, int, str, str]]:
    """(heading, line, language, body) of each fenced block, the heading it sits under."""
    text = (ROOT / doc).read_text()
    fences = list(FENCE.finditer(text))
    # A shell comment inside a block is not a heading.
    headings = [(m.start(), m.group(1)) for m in HEADING.finditer(text)
                if not any(f.start() < m.start() < f.end() for f in fences)]
    for block in fences:
        above = [title for start, title in headings if start < block.start()]
        line = text.count("\n", 0, block.start()) + 1
        yield above[-1] if above else doc, line, block.group(1), block.group(2)


def command_lines(body: str, first_line: int) -> Iterator[tuple[int, str, str]]:
    """(line, command, comment) of each `delegate ...` line, continuations joined."""
    pending = ""
    for n, raw in enumerate(body.splitlines(), first_line + 1):
        pending += raw.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        line, pending = pending.strip(), ""
        if line.startswith("delegate "):
            command, _, comment = line.partition(" #")
            yield n, command.strip(), comment.strip()


def _file_example(doc: str, heading: str, line: int, body: str) -> Example | None:
    try:
        data = yaml.safe_load(body)
    except yaml.YAMLError:
        return None
    if not isinstance(data, dict) or not ({"type", "steps"} & set(data)):
        return None
    return Example(doc, heading, line, ("submit", f"doc-example-{line}.yaml", "--follow"),
                   file_text=body)


def extract() -> tuple[list[Example], list[Example]]:
    """(setup, cases): the documents' `delegate files put` lines, run before every case,
    and the examples themselves."""
    setup: list[Example] = []
    cases: list[Example] = []
    for doc in DOCS:
        for heading, start, language, body in fenced_blocks(doc):
            if language in {"yaml", "yml", "json"}:
                found = _file_example(doc, heading, start, body)
                cases += [found] if found else []
                continue
            if language not in {"sh", "bash", "shell", ""}:
                continue
            for line, command, comment in command_lines(body, start):
                argv = tuple(shlex.split(command)[1:])
                outcome = OUTCOME.search(comment)
                example = Example(doc, heading, line, argv,
                                  expect=outcome.group(1) if outcome else "SUCCESS")
                if argv[:2] == ("files", "put"):
                    setup.append(example)
                elif argv and argv[0] in CASE_COMMANDS:
                    cases.append(example)
    return setup, cases


SETUP, CASES = extract()


def printed_values(values: dict[str, str]) -> dict[str, str]:
    """The placeholder values as `delegate sandbox --seed` prints them, read back."""
    rows = (TABLE_ROW.match(line) for line in table(values).splitlines())
    return {m.group(1): m.group(2) for m in rows if m}


def user_copy(dest: Path, values: dict[str, str]) -> Path:
    """A clone's docs/examples with the printed values put in the placeholders, as a user
    edits them. copytree follows the links, so a broken one fails here."""
    examples = dest / "docs" / "examples"
    try:
        shutil.copytree(EXAMPLES, examples)
    except shutil.Error as exc:
        broken = [source for source, _, _ in exc.args[0]]
        raise AssertionError(f"docs/examples has broken links: {broken}") from None
    for path in examples.rglob("*"):
        if path.is_file():
            text = path.read_text()
            for placeholder, value in values.items():
                text = text.replace(placeholder, value)
            path.write_text(text)
    return dest


@dataclass
class Stack:
    clone: Path
    env: dict[str, str]
    aws: Sandbox

    async def delegate(self, argv: tuple[str, ...], timeout: float = 90) -> tuple[int, str]:
        """Run `delegate ARGV` from the clone's root, as the user's shell would."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cli", *argv, cwd=self.clone,
            env={**os.environ, **self.env, "NO_COLOR": "1"},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise AssertionError(f"delegate {shlex.join(argv)} ran over {timeout}s") from None
        assert proc.returncode is not None
        return proc.returncode, out.decode()


@pytest.fixture
async def stack(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                ) -> AsyncIterator[Stack]:
    """Shells 1 to 3 of docs/tasks.md: the seeded sandbox, a manager, a delegate."""
    sandbox.reset()
    values = await asyncio.to_thread(seed, sandbox.endpoint_url, sandbox.region)
    env = exports(sandbox.environment(), values)
    for key, value in env.items():  # the delegate in this process reads them
        monkeypatch.setenv(key, value)
    clone = user_copy(tmp_path / "clone", printed_values(values))
    (tmp_path / "manager").mkdir()
    async with running_manager(tmp_path / "manager") as manager:
        async with manager.api() as http:
            token = await ManagerApi(http).create_token(env["ACCOUNT_ID"])
        async with DelegateRunner(manager.url, token, account=env["ACCOUNT_ID"],
                                  tags=("ecs",)) as delegate:
            await delegate.registered()
            yield Stack(clone, {**env, "MANAGER_HOST_AND_PORT": manager.url,
                                "MANAGER_ADMIN_TOKEN": ADMIN_TOKEN}, sandbox)


def test_the_docs_have_examples_and_every_example_file_is_run() -> None:
    """The extraction cannot rot into finding nothing: each file in docs/examples is run
    by some documented command, and the files are uploaded as the docs say."""
    assert CASES, f"no examples found in {', '.join(DOCS)}"
    run = {Path(arg).name for case in CASES if case.argv[0] == "submit" for arg in case.argv}
    shipped = {p.name for p in EXAMPLES.glob("*.yaml")}
    assert shipped and shipped <= run, f"never run by a documented command: {shipped - run}"
    assert any(case.file_text for case in CASES), "no fenced task or execution file found"
    assert any(s.argv[-2:] == ("docs/examples/ECS Tutorial", "account:/ECS Tutorial")
               for s in SETUP), [s.argv for s in SETUP]


@pytest.mark.parametrize("example", CASES, ids=[c.name for c in CASES])
async def test_example_runs_as_written(example: Example, stack: Stack) -> None:
    if "terraform" in (example.file_text or " ".join(example.argv)) and \
            shutil.which("terraform") is None:
        pytest.skip("the example runs terraform, which is not on this machine's PATH")
    # README and docs/tasks.md upload the same folder: once is what a user does.
    for step in {s.argv: s for s in SETUP}.values():
        code, out = await stack.delegate(step.argv)
        assert code == 0, f"{step.doc}:{step.line}: delegate {shlex.join(step.argv)}\n{out}"
    if example.file_text is not None:
        (stack.clone / example.argv[1]).write_text(example.file_text)
    code, out = await stack.delegate(example.argv)
    where = f"{example.doc}:{example.line}: delegate {shlex.join(example.argv)}"
    assert "Traceback" not in out, f"{where}\n{out}"
    if example.argv[0] == "validate":
        assert code == 0 and "is valid" in out, f"{where} (exit {code})\n{out}"
        return
    assert code == EXIT_CODES[example.expect], f"{where} (exit {code})\n{out}"
    ends = re.findall(r"^(?:task|execution) \S+ ([A-Z_]+)\b", out, re.M)
    assert ends and ends[-1] == example.expect, f"{where}: ended {ends}\n{out}"


def test_a_fenced_file_is_found_by_its_type_or_steps() -> None:
    """The extraction itself: a mapping with `type` is a task to submit, other YAML is not."""
    found = _file_example("X.md", "Heading", 3, json.dumps({"type": "aws.validate_connector"}))
    assert found is not None and found.argv == ("submit", "doc-example-3.yaml", "--follow")
    assert _file_example("X.md", "Heading", 3, "name: not a task\n") is None
    assert _file_example("X.md", "Heading", 3, "a: [unclosed\n") is None


def quoted(heading: str) -> list[str]:
    """The ```text blocks docs/tasks.md shows under ``heading``, one string each."""
    return [body for title, _, language, body in fenced_blocks("docs/tasks.md")
            if title == heading and language == "text"]


def _same_shape(text: str) -> str:
    """Ids and times differ from run to run; what the messages say must not."""
    text = re.sub(r"exe-[0-9a-f]{12}", "exe-ID", text)
    return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "TIME", text)


async def test_rollbacks_on_request_say_what_the_docs_quote(stack: Stack) -> None:
    """docs/tasks.md "Rollbacks on request": rolling back a superseded execution is
    refused with the quoted text (exit 8); forced, its step refuses with the quoted error
    (exit 1), and the live service is left running."""
    refused, step_refused = quoted("Rollbacks on request")
    for argv in [*(s.argv for s in SETUP[:1]),
                 ("submit", "docs/examples/rolling-execution.yaml"),
                 ("submit", "docs/examples/canary-execution.yaml")]:
        code, out = await stack.delegate(argv)
        assert code == 0, out
    before = live_service(stack)
    code, out = await stack.delegate(("execution", "list", "-o", "json"))
    first = json.loads(out)["executions"][-1]["execution_id"]
    code, out = await stack.delegate(("execution", "rollback", first, "--follow"))
    assert code == 8, out
    assert _same_shape(refused.strip()) in _same_shape(out), out
    code, out = await stack.delegate(("execution", "rollback", first, "--force", "--follow"))
    assert code == 1, out
    assert step_refused.strip() in out, out
    assert live_service(stack) == before and before[0] == "ACTIVE"


def live_service(stack: Stack) -> tuple[str, str, int]:
    """myapp's status, task definition and desired count, as ECS has them."""
    found = stack.aws.client("ecs").describe_services(cluster="ecs-tutorial",
                                                      services=["myapp"])["services"]
    assert len(found) == 1, found
    return found[0]["status"], found[0]["taskDefinition"], found[0]["desiredCount"]

