"""The glue a team writes to move the blog's endpoints stays small (issue 10's budget):
at most 80 lines for the read endpoint (read model, query, wiring) and 40 for the HTML form
on a command, counted without blank lines, comments and docstrings."""

from __future__ import annotations

import ast
from pathlib import Path

GLUE = Path(__file__).parent / "app" / "cqrs.py"
#: What belongs to the follow form's command; the rest is the read side and the wiring.
FORM_COMMAND = {"FollowUser", "follow_user", "_follow_command", "_followed"}
FORM_IMPORTS = ("flash", "flask_login", "EmptyForm")


def glue_lines() -> tuple[int, int]:
    """(read side, form command): code lines of tests/blog/app/cqrs.py."""
    source = GLUE.read_text()
    tree = ast.parse(source)
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef) and ast.get_docstring(
            node
        ):
            first = node.body[0]
            docstrings.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    lines = source.splitlines()

    def code(number: int) -> bool:
        text = lines[number - 1].strip()
        return bool(text) and not text.startswith("#") and number not in docstrings

    read = form = 0
    for node in tree.body:
        numbers = range(node.lineno, (node.end_lineno or node.lineno) + 1)
        name = getattr(node, "name", None)
        if name == "init_cqrs":
            start = next(n for n in numbers if "register_command(FollowUser" in lines[n - 1])
            for n in numbers:
                if code(n):
                    if n >= start and "return cqrs" not in lines[n - 1]:
                        form += 1
                    else:
                        read += 1
            continue
        count = sum(code(n) for n in numbers)
        importing_form = isinstance(node, ast.Import | ast.ImportFrom) and any(
            word in lines[node.lineno - 1] for word in FORM_IMPORTS
        )
        if name in FORM_COMMAND or importing_form:
            form += count
        else:
            read += count
    return read, form


def test_the_glue_stays_within_its_budget():
    read, form = glue_lines()

    assert 0 < read <= 80, read
    assert 0 < form <= 40, form
