"""``flask cqrs ... --help`` says what every option does and what it is when not given, in
values an operator can read (not the names of settings)."""

from __future__ import annotations

import click
import pytest
from flask.testing import FlaskCliRunner

from cqrs_layer.ops.cli import cqrs_cli


def commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += commands(command, (*path, name))
        else:
            found.append((*path, name))
    return found


def command_at(path: tuple[str, ...]) -> click.Command:
    command: click.Command = cqrs_cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


COMMANDS = commands(cqrs_cli)


def test_every_command_is_found() -> None:
    assert ("status",) in COMMANDS and ("flags", "set") in COMMANDS and len(COMMANDS) == 10


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_option_is_explained_with_its_default(
    toy_runner: FlaskCliRunner, path: tuple[str, ...]
) -> None:
    result = toy_runner.invoke(args=["cqrs", *path, "--help"])
    assert result.exit_code == 0, result.output
    assert "CQRS_" not in result.stdout
    for param in command_at(path).params:
        if not isinstance(param, click.Option) or param.name == "help":
            continue
        assert param.help, f"{param.name}: no help"
        if not (param.is_flag or param.required):
            assert param.show_default, f"{param.name}: its default is not shown"
