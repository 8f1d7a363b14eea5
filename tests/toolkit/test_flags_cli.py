"""``flask cqrs flags list|set|history``.

Exit codes of ``set``: 0 changed (or already so), 1 a concurrent change, 2 a bad argument
(click's usage error), 3 refused by the promotion gate. Every command names its database
on stderr first (tests/cqrs/test_cli_database.py): ``messages`` is what follows.
"""

from __future__ import annotations

import json

import pytest
from click.testing import Result
from flask.testing import FlaskCliRunner

from cqrs_layer import ConcurrencyConflict
from cqrs_layer.core.tables import flag_audit, flags
from cqrs_layer.ops.context import Toolkit

from .helpers import make_ready
from .toyapp import committed_rows

READ = "library.get_book"
WRITERS = ("library.add_book", "library.lend_book", "library.rename_book")


def flags_cli(runner: FlaskCliRunner, *args: str) -> Result:
    return runner.invoke(args=["cqrs", "flags", *args])


def messages(result: Result) -> str:
    """stderr without the line naming the database (absent when click refused the
    arguments before the command ran)."""
    first, _, rest = result.stderr.partition("\n")
    return rest if first.startswith("database: ") else result.stderr


def test_list_shows_every_wrapped_endpoint_under_a_header(toy_runner: FlaskCliRunner) -> None:
    result = flags_cli(toy_runner, "list")
    assert (result.exit_code, result.stdout) == (
        0,
        "ENDPOINT             KIND   STAGE   PERCENT  SAMPLE  SET BY\n"
        "library.add_book     write  legacy  100%     1       settings\n"
        "library.get_book     read   legacy  100%     1       settings\n"
        "library.lend_book    write  legacy  100%     1       settings\n"
        "library.rename_book  write  legacy  100%     1       settings\n",
    )


def test_set_changes_the_flag_and_list_and_history_show_it(toy_runner: FlaskCliRunner) -> None:
    result = flags_cli(
        toy_runner,
        "set", READ, "shadow", "--sample-rate", "0.2", "--reason", "look first", "--actor", "ana",
    )  # fmt: skip
    assert (result.exit_code, result.stdout) == (
        0,
        "library.get_book: shadow 100%, sample 0.2  [database, v1 by ana]\n",
    )
    result = flags_cli(toy_runner, "set", "library.add_book", "command", "--percent", "12.5",
                       "--reason", "canary")  # fmt: skip
    assert result.exit_code == 0
    assert result.stdout.startswith(
        "library.add_book: command 12.5%, sample 1  [database, v1 by cli"
    )

    listed = flags_cli(toy_runner, "list").stdout.splitlines()
    assert listed[0] == "ENDPOINT             KIND   STAGE    PERCENT  SAMPLE  SET BY"
    assert listed[1].startswith(
        "library.add_book     write  command  12.5%    1       database, v1 by cli"
    )
    assert listed[2] == "library.get_book     read   shadow   100%     0.2     database, v1 by ana"
    listed_json = flags_cli(toy_runner, "list", "--json")
    assert listed_json.exit_code == 0
    assert [(f["endpoint"], f["stage"], f["percent"]) for f in json.loads(listed_json.stdout)] == [
        ("library.add_book", "command", 12.5),
        ("library.get_book", "shadow", 100.0),
        ("library.lend_book", "legacy", 100.0),
        ("library.rename_book", "legacy", 100.0),
    ]
    history = flags_cli(toy_runner, "history", READ)
    assert history.exit_code == 0
    assert history.stdout.endswith(
        "  library.get_book  legacy 100% -> shadow 100%  by ana  look first\n"
    )
    assert len(history.stdout.splitlines()) == 1
    every = flags_cli(toy_runner, "history", "--last", "5", "--json")
    assert [(e["endpoint"], e["to_stage"]) for e in json.loads(every.stdout)] == [
        ("library.add_book", "command"),
        (READ, "shadow"),
    ]


def test_several_endpoints_are_set_at_once(toy_runner: FlaskCliRunner) -> None:
    result = flags_cli(toy_runner, "set", *WRITERS, "command", "--reason", "events on",
                       "--actor", "ana")  # fmt: skip
    assert (result.exit_code, result.stdout) == (
        0,
        "library.add_book: command 100%, sample 1  [database, v1 by ana]\n"
        "library.lend_book: command 100%, sample 1  [database, v1 by ana]\n"
        "library.rename_book: command 100%, sample 1  [database, v1 by ana]\n",
    )
    assert [row["endpoint"] for row in committed_rows(flag_audit)] == list(WRITERS)


def test_setting_what_is_already_so_exits_0_and_records_nothing(
    toy_runner: FlaskCliRunner,
) -> None:
    flags_cli(toy_runner, "set", READ, "shadow", "--reason", "look", "--actor", "ana")
    again = flags_cli(toy_runner, "set", READ, "shadow", "--reason", "look again")
    assert (again.exit_code, again.stdout) == (
        0,
        "library.get_book: already shadow 100%, sample 1  [database, v1 by ana] "
        "(nothing recorded)\n",
    )
    untouched = flags_cli(toy_runner, "set", "library.lend_book", "legacy", "--reason", "x")
    assert untouched.stdout == (
        "library.lend_book: already legacy 100%, sample 1  [settings] (nothing recorded)\n"
    )
    assert [row["reason"] for row in committed_rows(flag_audit)] == ["look"]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["library.nope", "shadow", "--reason", "x"],
         "Error: no wrapped endpoint named 'library.nope' (known: library.add_book, "),
        ([READ, "command", "--reason", "x"],
         "Error: 'command' is not a stage of a read endpoint; use one of "
         "legacy, shadow, live, complete"),
        ([READ, "read-model", "--reason", "x"], "Error: 'read-model' is not a stage"),
        ([READ, "shadow", "--percent", "101", "--reason", "x"],
         "Error: percent must be from 0 to 100, got 101"),
        ([READ, "shadow", "--sample-rate", "1.5", "--reason", "x"],
         "Error: sample_rate must be from 0 to 1, got 1.5"),
        ([READ, "shadow", "--percent", "half", "--reason", "x"],
         "Error: Invalid value for '--percent': 'half' is not a valid float."),
        ([READ, "shadow"], "Error: Missing option '--reason'."),
        ([READ, "live", "--force"], "Error: Missing option '--reason'."),
        ([READ, "shadow", "--reason", " "],
         "Error: say why: the reason is kept in the audit log"),
        ([READ, "--reason", "x"], "Error: name at least one ENDPOINT and the STAGE to move it to"),
    ],
)  # fmt: skip
def test_bad_arguments_exit_2_with_the_reason(
    toy_runner: FlaskCliRunner, args: list[str], reason: str
) -> None:
    """Was: exit 1 (as for a gate refusal). A bad argument is now a usage error."""
    result = flags_cli(toy_runner, "set", *args)
    assert result.exit_code == 2
    assert messages(result).startswith("Usage: ")
    assert f"\n{reason}" in messages(result)
    assert committed_rows(flags) == [] and committed_rows(flag_audit) == []


def test_a_bad_argument_among_several_endpoints_changes_none_of_them(
    toy_runner: FlaskCliRunner,
) -> None:
    for names in (
        ["library.add_book", "library.nope", "library.lend_book"],
        ["library.add_book", READ],  # "command" is not a stage of the read endpoint
    ):
        result = flags_cli(toy_runner, "set", *names, "command", "--reason", "x")
        assert result.exit_code == 2
        assert committed_rows(flags) == [] and committed_rows(flag_audit) == []


def test_a_gate_refusal_exits_3_listing_the_blockers_and_force_is_audited(
    toy_runner: FlaskCliRunner,
) -> None:
    """Was: exit 1, like a concurrent change. A refusal that waits on fixes is now 3."""
    refused = flags_cli(toy_runner, "set", READ, "live", "--percent", "5", "--reason", "go")
    assert (refused.exit_code, messages(refused)) == (
        3,
        "Error: refused: library.get_book cannot move to live:\n"
        "  - library.get_book is not ready: 0 of the 50 comparisons it needs "
        "(see flask cqrs report)\n"
        "  - write endpoint library.add_book writes books and is still on legacy\n"
        "  - write endpoint library.lend_book writes books, loans and is still on legacy\n"
        "  - write endpoint library.rename_book writes books and is still on legacy\n"
        "fix these, or pass --force with a --reason (the override is audited)\n",
    )
    assert committed_rows(flags) == [] and committed_rows(flag_audit) == []
    forced = flags_cli(
        toy_runner, "set", READ, "live", "--percent", "5", "--force", "--reason", "incident 9"
    )
    assert (forced.exit_code, forced.stdout.endswith("  (FORCED)\n")) == (0, True)
    history = flags_cli(toy_runner, "history").stdout
    assert history.endswith("legacy 100% -> live 5%  by cli:" + history.split("by cli:")[1])
    assert "  FORCED  incident 9\n" in history


def test_the_gate_accepts_once_the_endpoint_is_ready(
    toolkit: Toolkit, toy_runner: FlaskCliRunner
) -> None:
    assert flags_cli(toy_runner, "set", *WRITERS, "command", "--reason", "x").exit_code == 0
    refused = flags_cli(toy_runner, "set", READ, "live", "--percent", "5", "--reason", "go")
    assert (refused.exit_code, messages(refused).splitlines()[1]) == (
        3,
        "  - library.get_book is not ready: 0 of the 50 comparisons it needs "
        "(see flask cqrs report)",
    )
    make_ready(toolkit, READ)
    promoted = flags_cli(toy_runner, "set", READ, "live", "--percent", "5", "--reason", "go")
    assert promoted.exit_code == 0, promoted.output
    assert promoted.stdout.startswith("library.get_book: live 5%, sample 1  [database, v1 by ")
    assert [(e.to_stage, e.forced) for e in toolkit.flags.history(READ)] == [("live", False)]


def test_a_concurrent_change_exits_1(
    toolkit: Toolkit, toy_runner: FlaskCliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    def lost_the_race(*_args: object, **_kwargs: object) -> None:
        raise ConcurrencyConflict("the flag of library.get_book changed while this change ...")

    monkeypatch.setattr(toolkit.flags, "record", lost_the_race)
    result = flags_cli(toy_runner, "set", READ, "shadow", "--reason", "x")
    assert (result.exit_code, messages(result)) == (
        1,
        "Error: refused: the flag of library.get_book changed while this change ...\n",
    )


def test_history_of_an_unknown_endpoint_exits_2(toy_runner: FlaskCliRunner) -> None:
    """Was: exit 1. An unknown endpoint is now a usage error, as in ``set``."""
    result = flags_cli(toy_runner, "history", "library.nope")
    assert result.exit_code == 2
    assert "\nError: no wrapped endpoint named 'library.nope'" in messages(result)
    empty = flags_cli(toy_runner, "history")
    assert (empty.exit_code, empty.stdout) == (0, "no flag changes recorded\n")
