"""docs/migration-guide.md works as written: every ```bash block runs, in order, and succeeds,
and every ```output block shows what the bash block before it printed.

An output block is checked line by line: each of its lines must appear, in the same order,
among the lines the bash block printed (other lines may come between). ``...`` inside a
line stands for any text (a timestamp, a latency); a line that is only ``...`` says that
more lines follow and is skipped.

The blocks run in one bash process (later blocks use variables earlier ones set), with
``set -euo pipefail``, from the repository root, on a fresh SQLite database in a temporary
workspace, with this virtualenv's tools first on PATH and a free PORT, in a newcomer's
environment (no PostgreSQL configured, only the legacy app variant). The bash process gets
its own process group, so whatever the guide starts in the background (the server) is killed
even when a block fails halfway.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
GUIDE = REPO_ROOT / "docs" / "migration-guide.md"
MARKER = "::guide-block::"
TIMEOUT_SECONDS = 600
# A newcomer has no PostgreSQL configured: the guide runs as on a fresh machine, on SQLite.
NEWCOMER_UNSET = {"CI", "TEST_POSTGRES_URL", "DATABASE_URL"}

BASH_BLOCK = re.compile(r"^```bash[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
FENCE = re.compile(r"^```(bash|output)[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
ELLIPSIS = "..."


def bash_blocks(markdown: str) -> list[str]:
    return [match.group(1) for match in BASH_BLOCK.finditer(markdown)]


def expected_outputs(markdown: str) -> list[tuple[int, str]]:
    """(number of the bash block it follows, from 1; the expected text) per output block."""
    outputs, bash_seen = [], 0
    for match in FENCE.finditer(markdown):
        if match.group(1) == "bash":
            bash_seen += 1
        else:
            assert bash_seen, "an output block must follow a bash block"
            outputs.append((bash_seen, match.group(2)))
    return outputs


def line_pattern(expected_line: str) -> re.Pattern[str]:
    parts = [re.escape(part) for part in expected_line.rstrip().split(ELLIPSIS)]
    return re.compile(".*".join(parts) + r"\s*")


def missing_lines(expected: str, printed: str) -> list[str]:
    """The expected lines not found (in order) among the printed ones; [] when all are."""
    printed_lines = printed.splitlines()
    position = 0
    for number, line in enumerate(expected.splitlines()):
        if line.strip() in ("", ELLIPSIS):
            continue
        pattern = line_pattern(line)
        while position < len(printed_lines) and not pattern.fullmatch(printed_lines[position]):
            position += 1
        if position == len(printed_lines):
            return expected.splitlines()[number:]
        position += 1
    return []


def block_outputs(output: str) -> dict[int, str]:
    """What each bash block printed, by block number, split at the driver's markers."""
    pieces = re.split(rf"^{re.escape(MARKER)}(\d+)\n", output, flags=re.MULTILINE)
    return {int(pieces[i]): pieces[i + 1] for i in range(1, len(pieces) - 1, 2)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def driver_script(blocks: list[str], workspace: Path) -> str:
    """One script that sources each block after printing a marker, so a failure is placed."""
    lines = ["set -euo pipefail", "exec 2>&1"]
    for number, block in enumerate(blocks, start=1):
        path = workspace / f"block_{number:02d}.sh"
        path.write_text(block)
        lines.append(f"echo '{MARKER}{number}'")
        lines.append(f"source '{path}'")
    return "\n".join(lines) + "\n"


def guide_environment(workspace: Path, port: int) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        # The guide's own pytest run must not think it is an xdist worker of this one.
        if not key.startswith(("PYTEST_", "VIRTUAL_ENV")) and key not in NEWCOMER_UNSET
    }
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        DATABASE_URL=f"sqlite:///{workspace}/shop.db",
        PORT=str(port),
        TMPDIR=str(workspace),
        HOME=env.get("HOME", str(workspace)),
    )
    return env


def kill_process_group(process: subprocess.Popen[str]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def failure_report(blocks: list[str], output: str, returncode: int, workspace: Path) -> str:
    reached = [int(n) for n in re.findall(rf"^{re.escape(MARKER)}(\d+)$", output, re.M)]
    number = reached[-1] if reached else 0
    block_output = output.rsplit(f"{MARKER}{number}\n", 1)[-1] if number else output
    logs = "\n".join(
        f"--- {log.name}:\n{log.read_text(errors='replace')[-4000:]}"
        for log in sorted(workspace.glob("*.log"))
    )
    source = blocks[number - 1] if number else "(before the first block)"
    return (
        f"bash block {number} of {len(blocks)} in {GUIDE.name} failed (exit {returncode}):\n"
        f"{source}\n--- its output:\n{block_output[-8000:]}\n{logs}"
    )


def test_the_guide_has_bash_blocks_to_run():
    blocks = bash_blocks(GUIDE.read_text())

    assert len(blocks) >= 5
    assert any("seed --orders 5000 --seed 42" in block for block in blocks)
    assert any("pytest tests/api" in block for block in blocks)


#: The chapter about another app, and the files its Python blocks are excerpts of.
OWN_APP_CHAPTER = "## Apply it to your own app"
BLOG_FILES = [
    REPO_ROOT / "tests" / "blog" / "app" / "__init__.py",
    REPO_ROOT / "tests" / "blog" / "app" / "cqrs.py",
    REPO_ROOT / "tests" / "blog" / "migrations" / "env.py",
    *sorted((REPO_ROOT / "tests" / "blog" / "migrations" / "versions").glob("*.py")),
    REPO_ROOT / "tests" / "blog" / "test_cqrs_live_users.py",
]
PYTHON_BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def test_the_own_app_chapters_python_blocks_are_the_blogs_code():
    """What the chapter shows is what the tests run: each Python block is a verbatim
    excerpt of one of the blog's files."""
    chapter = GUIDE.read_text().split(OWN_APP_CHAPTER, 1)[1]
    blocks = PYTHON_BLOCK.findall(chapter)
    sources = [path.read_text() for path in BLOG_FILES]

    assert len(blocks) >= 6
    for block in blocks:
        assert any(block in source for source in sources), f"not in the blog's code:\n{block}"


def test_bash_block_extraction_ignores_other_fences():
    markdown = "```console\n$ make run\n```\ntext\n```bash\necho one\n```\n```bash\necho two\n```\n"

    assert bash_blocks(markdown) == ["echo one\n", "echo two\n"]


def test_output_blocks_belong_to_the_bash_block_before_them():
    markdown = "```bash\necho a\n```\n```output\na\n```\n```bash\necho b\n```\n"

    assert expected_outputs(markdown) == [(1, "a\n")]


def test_expected_output_matches_lines_in_order_with_ellipses():
    printed = "stage: shadow (100%)\nsamples: 55 (window 50)\nlatency 3.2 ms\nready: yes\n"

    assert missing_lines("stage: shadow ...\n...\nready: yes\n", printed) == []
    assert missing_lines("samples: ... (window 50)\nlatency ... ms\n", printed) == []
    assert missing_lines("ready: yes\nstage: shadow ...\n", printed) == ["stage: shadow ..."]
    assert missing_lines("ready: no\n", printed) == ["ready: no"]


@pytest.mark.slow
def test_every_bash_block_of_the_guide_runs(tmp_path):
    blocks = bash_blocks(GUIDE.read_text())
    port = free_port()
    script = driver_script(blocks, tmp_path)

    process = subprocess.Popen(
        ["bash", "-c", script],
        cwd=REPO_ROOT,
        env=guide_environment(tmp_path, port),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: teardown kills all it started
    )
    try:
        output, _ = process.communicate(timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        kill_process_group(process)
        output, _ = process.communicate()
        pytest.fail(failure_report(blocks, output, -1, tmp_path) + "\n(timed out)")
    finally:
        kill_process_group(process)

    if process.returncode != 0:
        pytest.fail(failure_report(blocks, output, process.returncode, tmp_path))
    assert output.count(MARKER) == len(blocks)
    printed = block_outputs(output)
    wrong = []
    for number, expected in expected_outputs(GUIDE.read_text()):
        missing = missing_lines(expected, printed[number])
        if missing:
            wrong.append(
                f"bash block {number}:\n{blocks[number - 1]}\nshould print (in order):\n"
                f"{expected}\nbut from this line on nothing matched:\n{missing[0]}\n"
                f"--- it printed:\n{printed[number][-4000:]}"
            )
    assert not wrong, "\n\n".join(wrong)
    assert not port_is_open(port), "the guide left its server running"
