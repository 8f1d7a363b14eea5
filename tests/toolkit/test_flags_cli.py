"""``flask cqrs flags list|set|history``."""

from __future__ import annotations

import json

import pytest
from flask.testing import FlaskCliRunner

from cqrs_layer.tables import flag_audit, flags

from .toyapp import committed_rows

READ = "library.get_book"


def flags_cli(runner: FlaskCliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(args=["cqrs", "flags", *args])
    return result.exit_code, result.output


def test_list_shows_every_wrapped_endpoint(toy_runner: FlaskCliRunner) -> None:
    assert flags_cli(toy_runner, "list") == (
        0,
        "library.add_book     write  legacy     100%  sample 1  [config]\n"
        "library.get_book     read   legacy     100%  sample 1  [config]\n"
        "library.lend_book    write  legacy     100%  sample 1  [config]\n"
        "library.rename_book  write  legacy     100%  sample 1  [config]\n",
    )


def test_set_changes_the_flag_and_history_shows_it(toy_runner: FlaskCliRunner) -> None:
    assert flags_cli(
        toy_runner,
        "set", READ, "shadow", "--sample-rate", "0.2", "--reason", "look first", "--actor", "ana",
    ) == (0, "library.get_book: shadow     100%  sample 0.2  [database, v1 by ana]\n")  # fmt: skip
    code, out = flags_cli(toy_runner, "set", "library.add_book", "command", "--percent", "12.5")
    assert code == 0
    assert out.startswith("library.add_book: command   12.5%  sample 1  [database, v1 by cli")

    code, listed = flags_cli(toy_runner, "list", "--json")
    assert code == 0
    assert [(f["endpoint"], f["stage"], f["percent"]) for f in json.loads(listed)] == [
        ("library.add_book", "command", 12.5),
        ("library.get_book", "shadow", 100.0),
        ("library.lend_book", "legacy", 100.0),
        ("library.rename_book", "legacy", 100.0),
    ]
    code, history = flags_cli(toy_runner, "history", READ)
    assert code == 0
    assert history.endswith("  library.get_book  legacy 100% -> shadow 100%  by ana  look first\n")
    assert len(history.splitlines()) == 1
    code, every = flags_cli(toy_runner, "history", "--last", "5", "--json")
    assert [(e["endpoint"], e["to_stage"]) for e in json.loads(every)] == [
        ("library.add_book", "command"),
        (READ, "shadow"),
    ]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["library.nope", "shadow"], "refused: no wrapped endpoint named 'library.nope'"),
        ([READ, "command"], "refused: 'command' is not a stage of a read endpoint; use one of "
                            "legacy, shadow, live, complete"),
        ([READ, "shadow", "--percent", "101"], "refused: percent must be from 0 to 100, got 101"),
        ([READ, "shadow", "--sample-rate", "1.5"],
         "refused: sample_rate must be from 0 to 1, got 1.5"),
        ([READ, "live", "--force"], "refused: a forced change needs a reason"),
    ],
)  # fmt: skip
def test_refused_changes_exit_1_with_the_reason(
    toy_runner: FlaskCliRunner, args: list[str], reason: str
) -> None:
    code, out = flags_cli(toy_runner, "set", *args)
    assert code == 1
    assert out.startswith(f"Error: {reason}")
    assert committed_rows(flags) == [] and committed_rows(flag_audit) == []


def test_a_gate_refusal_lists_the_blockers_and_force_is_audited(
    toy_runner: FlaskCliRunner,
) -> None:
    assert flags_cli(toy_runner, "set", READ, "live", "--percent", "5") == (
        1,
        "Error: refused: library.get_book cannot move to live:\n"
        "  - write endpoint library.add_book writes books and is still on legacy\n"
        "  - write endpoint library.lend_book writes books, loans and is still on legacy\n"
        "  - write endpoint library.rename_book writes books and is still on legacy\n"
        "fix these, or pass --force with a --reason (the override is audited)\n",
    )
    code, out = flags_cli(
        toy_runner, "set", READ, "live", "--percent", "5", "--force", "--reason", "incident 9"
    )
    assert (code, out.endswith("(FORCED)\n")) == (0, True)
    code, history = flags_cli(toy_runner, "history")
    assert history.endswith("legacy 100% -> live 5%  by cli:" + history.split("by cli:")[1])
    assert "  FORCED  incident 9\n" in history


def test_history_of_an_unknown_endpoint_exits_1(toy_runner: FlaskCliRunner) -> None:
    code, out = flags_cli(toy_runner, "history", "library.nope")
    assert code == 1
    assert out.startswith("Error: no wrapped endpoint named 'library.nope'")
    assert flags_cli(toy_runner, "history") == (0, "no flag changes recorded\n")
