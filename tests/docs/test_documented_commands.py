"""Every command README.md and docs/*.md show runs, on a fresh copy of the repository.

The commands are read from the documents, so an example is tested when it is written:
- every line of a fenced block tagged shell, sh, bash or console (a line ending in `\\`
  goes on on the next), and every line of an indented code block that starts with
  `uv run`;
- every inline code span that starts with `uv run` (after `time ` or `/usr/bin/time -v `,
  which only measure the command and are dropped).
A fenced block with `title=PATH` is a file: a `##` section that has such blocks is a
walkthrough (README "Adding a layer"), run as the README says in a copy of its own: its
files written first, then its commands in order.

Each command runs through `bash -c` in a copy of the tracked files (`git ls-files`), made
a git repository, with node_modules linked (what `npm ci` installed here): `uv run` uses
this test's environment and installs or fetches nothing (UV_PROJECT_ENVIRONMENT,
UV_NO_SYNC, UV_OFFLINE), the copy's bakery comes first on PYTHONPATH, and AWS credentials
are fake. One copy per group, two groups at a time: the documents' commands in order
(README, then docs/*.md), each walkthrough, the benchmarks. The documents' copy starts
with a small sample in its store (`--sample` then adds nothing), so `simulate` takes
about half a minute rather than two; the walkthrough's store starts empty. A command the
documents repeat word for word (`synth --env development` four times, `simulate` again
to measure it) runs once per copy and state of the layer files. Paths under /tmp go into
the test's own temporary folder, and benchmarks run at the tiny sizes SHRINK gives.

What is not run is in EXCLUDED, each with its reason; an exclusion or a SHRINK entry that
no longer matches a documented command fails the suite.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = ["README.md", *sorted(f"docs/{p.name}" for p in (REPO / "docs").glob("*.md"))]
SHELL = {"shell", "sh", "bash", "console"}
TIMER = re.compile(r"^(?:time|/usr/bin/time -v)\s+")
ADDRESSES, BALLOTS, SEED = 400, 24, 7  # the documents' copy's sample

# A documented command that matches one of these (re.search) is not run.
EXCLUDED: dict[str, str] = {
    r"^uv sync\b": "installs the locked packages from PyPI into the environment (network); "
    "this test runs in the environment it made",
    r"(^|&& )npm ci\b": "installs the pinned npm packages from the registry (network) and "
    "replaces node_modules; the copies link the node_modules it installed",
    r"^uv run pytest$": "the whole suite: what CI runs (.ci/run), and this test is in it",
    r"^uv run mypy$": "type-checks bakery against aws-cdk-lib's stubs: more than 15 minutes "
    "on this 2-core machine without a cache; CI runs it (.ci/run)",
    r"^uv run bakery (deploy|diff)\b": "cdk deploy / cdk diff against the account's "
    "CloudFormation stacks: needs an AWS account",
    r"^uv run bakery run\b": "starts the deployed state machine and follows it: needs an "
    "AWS account",
    r"^uv run bakery compare s3://": "reads production's and the shadow's products in S3: "
    "needs AWS credentials (tests/local/test_compare.py runs compare on folders and moto)",
    r"^aws ": "the AWS CLI, against the real buckets",
    r"^diff <\(sort old\.csv\)": "compares the two files that the `aws s3 cp` lines "
    "before it download",
    r"<\w+>|\[\w+\.\.\.\]": "a command's syntax with a placeholder, not a command "
    "(`uv run bakery new polling_districts` and `uv run bakery test polling_districts` run)",
    r"^uv run bakery serve\b": "a server: runs until interrupted (tests/review/"
    "test_serve.py starts it on a free loopback port and asks it, and asks the app every "
    "sample postcode)",
    r"^uv run python app\.py$": "what cdk.json runs under the CDK CLI, which passes the "
    "environment (-c dc-environment=ENV); alone it stops asking for one. `bakery synth` "
    "builds the same app",
}

# Benchmarks run at tiny sizes: each option's values replace the documented ones (or are
# added): the full sizes take minutes to hours.
SHRINK: dict[str, dict[str, list[str]]] = {
    "benchmarks/bake_benchmark.py": {"--sizes": ["1k"], "--ballots": ["20"]},
    "benchmarks/checks_benchmark.py": {"--addresses": ["1k"], "--ballots": ["20"]},
    "benchmarks/boundary_changes_benchmark.py": {"--addresses": ["1000"], "--reviews": ["2"]},
    "benchmarks/compare_benchmark.py": {"--files": ["20"], "--addresses": ["2000"]},
    "benchmarks/ee_export_memory.py": {"--sizes": ["1"]},
    "benchmarks/validate_benchmark.py": {"--runs": ["1"]},
    "benchmarks/serve_benchmark.py": {"--seconds": ["1"], "--rate": ["20"]},
}
BENCHMARK = re.compile(r"benchmarks/\w+\.py")


@dataclass(frozen=True)
class Command:
    doc: str
    line: int  # 1-based, where the command starts
    text: str  # whitespace collapsed, comment and timer dropped
    section: str  # the `##` section it is in

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"

    @property
    def key(self) -> str:
        return f"{self.where} {self.text}"


@dataclass
class Result:
    command: str  # as run
    returncode: int
    output: str
    seconds: float
    same_as: str | None = None  # run once: the command whose result this is


def _strip_comment(line: str) -> str:
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def _block_commands(content: str, first_line: int, only_uv: bool) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    pending, start = "", 0
    for offset, raw in enumerate(content.splitlines()):
        text = _strip_comment(raw).strip()
        if not pending:
            start = first_line + offset
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        text = " ".join((pending + text).split())
        pending = ""
        if text and (not only_uv or text.startswith("uv run ")):
            out.append((start, text))
    return out


def _code_spans(raw: str, first_line: int, codes: list[str]) -> list[int]:
    """The line (1-based) each code span of a paragraph starts on, in order; `raw` is the
    paragraph's text from line `first_line` (markdown-it gives spans without positions)."""
    lines, at = [], 0
    for code in codes:
        words = r"\s+".join(re.escape(w) for w in code.split())
        m = re.compile(r"`+\s*" + words + r"\s*`").search(raw, at)
        at = m.end() if m else at
        lines.append(first_line + raw.count("\n", 0, m.start() if m else 0))
    return lines


def extract(doc: str) -> tuple[list[Command], dict[str, dict[str, str]]]:
    """The commands a document shows, and per `##` section the files it titles."""
    source = (REPO / doc).read_text()
    lines = source.splitlines()
    commands: list[Command] = []
    files: dict[str, dict[str, str]] = {}
    section = ""
    tokens = MarkdownIt("commonmark").parse(source)
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.tag == "h2":
            section = tokens[i + 1].content
        elif tok.type == "fence" and tok.map:
            info = tok.info.split()
            title = next((w.split("=", 1)[1] for w in info if w.startswith("title=")), None)
            if title:
                files.setdefault(section, {})[title] = tok.content
            elif info and info[0] in SHELL:
                for line, text in _block_commands(tok.content, tok.map[0] + 2, False):
                    commands.append(Command(doc, line, text, section))
        elif tok.type == "code_block" and tok.map:
            for line, text in _block_commands(tok.content, tok.map[0] + 1, True):
                commands.append(Command(doc, line, text, section))
        elif tok.type == "inline" and tok.map:
            codes = [c.content for c in tok.children or [] if c.type == "code_inline"]
            raw = "\n".join(lines[tok.map[0] : tok.map[1]])
            for code, line in zip(codes, _code_spans(raw, tok.map[0] + 1, codes), strict=True):
                text = TIMER.sub("", " ".join(code.split()))
                if text.startswith("uv run "):
                    commands.append(Command(doc, line, text, section))
    return commands, files


def documented() -> tuple[list[Command], dict[tuple[str, str], dict[str, str]]]:
    commands: list[Command] = []
    walkthroughs: dict[tuple[str, str], dict[str, str]] = {}
    for doc in DOCUMENTS:
        found, files = extract(doc)
        commands += found
        walkthroughs.update({(doc, section): f for section, f in files.items()})
    return commands, walkthroughs


def excluded(command: Command) -> str | None:
    return next((why for pat, why in EXCLUDED.items() if re.search(pat, command.text)), None)


def shrunk(text: str, tmp: Path) -> str | None:
    """The command as run: /tmp paths moved into `tmp`, a benchmark at its tiny sizes
    (None: a benchmark SHRINK does not know)."""
    text = re.sub(r"(?<![\w/.])/tmp/", f"{tmp}/", text)
    script = BENCHMARK.search(text)
    if script is None:
        return text
    if script.group() not in SHRINK:
        return None
    words = shlex.split(text)
    for option, values in SHRINK[script.group()].items():
        if option in words:
            at = end = words.index(option) + 1
            while end < len(words) and not words[end].startswith("--"):
                end += 1
            words[at:end] = values
        else:
            words += [option, *values]
    return shlex.join(words)


COMMANDS, WALKTHROUGHS = documented()
TO_RUN = [c for c in COMMANDS if excluded(c) is None]


def scenario(command: Command) -> str:
    if (command.doc, command.section) in WALKTHROUGHS:
        return f"walkthrough {command.doc} {command.section}"
    if BENCHMARK.search(command.text):
        return "benchmarks"
    return "documents"


# -- running -----------------------------------------------------------------


def fresh_copy(root: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():  # not deleted in this checkout
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    if (REPO / "node_modules").is_dir():
        (root / "node_modules").symlink_to((REPO / "node_modules").resolve())
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    return root


def command_env(copy: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "BAKERY_", "DC_", "CDK_")) and k != "VIRTUAL_ENV"
    }
    env.update(
        UV_PROJECT_ENVIRONMENT=sys.prefix,  # the environment this test runs in
        UV_NO_SYNC="1",
        UV_OFFLINE="1",
        PYTHONPATH=str(copy),
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="eu-west-2",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION="1",
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
    )
    return env


def layer_files(copy: Path) -> str:
    digest = hashlib.sha256((copy / "bakery.yaml").read_bytes())
    for path in sorted((copy / "layers").rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(copy)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def seed_sample(copy: Path) -> None:
    from bakery.plan import build_plan
    from bakery.sample_data import write_sample_data
    from bakery.store import LocalStore
    from bakery.workspace import load_workspace

    plan = build_plan(load_workspace(copy), "development")
    store = LocalStore(copy / ".bakery" / "store")
    write_sample_data(plan, store, addresses=ADDRESSES, ballots=BALLOTS, seed=SEED)


def run_scenario(name: str, commands: list[Command], root: Path) -> dict[str, Result]:
    copy = fresh_copy(root / "copy")
    tmp = root / "tmp"
    tmp.mkdir()
    if name == "documents":
        seed_sample(copy)
    if name.startswith("walkthrough"):
        for path, text in WALKTHROUGHS[(commands[0].doc, commands[0].section)].items():
            (copy / path).parent.mkdir(parents=True, exist_ok=True)
            (copy / path).write_text(text)
    env = command_env(copy)
    results: dict[str, Result] = {}
    once: dict[tuple[str, str], str] = {}  # (command, layer files) -> key
    for command in commands:
        text = shrunk(command.text, tmp)
        if text is None:
            results[command.key] = Result(command.text, -1, "no SHRINK entry", 0.0)
            continue
        key = (text, layer_files(copy))
        if key in once:
            results[command.key] = Result(**{**vars(results[once[key]]), "same_as": once[key]})
            continue
        started = time.perf_counter()
        done = subprocess.run(
            ["bash", "-c", text], cwd=copy, env=env, capture_output=True, text=True, timeout=900
        )
        seconds = time.perf_counter() - started
        results[command.key] = Result(text, done.returncode, done.stdout + done.stderr, seconds)
        once.setdefault(key, command.key)
        print(f"{seconds:6.1f} s  rc {done.returncode}  {name}: {command.where} {text}")
    return results


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    assert shutil.which("uv"), "uv is not on PATH: the documents run every command with uv"
    groups: dict[str, list[Command]] = {}
    for command in TO_RUN:
        groups.setdefault(scenario(command), []).append(command)
    # The documents' copy takes longest: it starts first, the others share the second worker.
    order = sorted(groups, key=lambda g: g != "documents")
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [
            pool.submit(run_scenario, g, groups[g], tmp_path_factory.mktemp("scenario"))
            for g in order
        ]
        results: dict[str, Result] = {}
        for future in futures:
            results.update(future.result())
    return results


@pytest.mark.parametrize("command", TO_RUN, ids=[c.key for c in TO_RUN])
def test_documented_command_runs(ran: dict[str, Result], command: Command):
    result = ran[command.key]
    assert result.returncode == 0, (
        f"{command.where}: `{result.command}` exited {result.returncode}"
        + (f" (its result: {result.same_as})" if result.same_as else "")
        + f":\n{result.output[-4000:]}"
    )


def test_every_exclusion_and_shrink_matches_a_documented_command():
    for pattern in EXCLUDED:
        assert any(re.search(pattern, c.text) for c in COMMANDS), f"stale exclusion {pattern!r}"
    scripts = {m.group() for c in TO_RUN if (m := BENCHMARK.search(c.text))}
    assert sorted(SHRINK) == sorted(scripts), "SHRINK must name exactly the benchmarks run"


def test_the_documents_examples_are_among_the_commands_run():
    """Not vacuous: the extraction finds the examples the README is built around."""
    run = {(c.doc, c.text) for c in TO_RUN}
    for text in (
        "uv run bakery bake current_elections current_boundary_changes --with-upstream --sample",
        "uv run bakery simulate current_elections --with-upstream --sample",
        "uv run bakery bake polling_districts --with-upstream --sample",
        "uv run bakery describe polling_districts",
    ):
        assert ("README.md", text) in run, text
    assert ("docs/graph.md", "uv run bakery new polling_districts") in run
    assert ("docs/local.md", 'uv run bakery lookup "cb1 9fn"') in run
    (files,) = WALKTHROUGHS.values()
    assert sorted(files) == [
        "layers/polling_districts.yaml",
        "layers/queries/polling_districts.sql",
        "layers/samples/polling_districts.csv",
        "layers/tests/polling_districts.yaml",
    ]
    # each command is found at the line it starts on
    for c in COMMANDS:
        line = " ".join((REPO / c.doc).read_text().splitlines()[c.line - 1].split())
        assert " ".join(c.text.split()[:2]) in line, (c.where, c.text, line)
