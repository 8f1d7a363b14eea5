"""What every ``flask cqrs`` command does before its own work: check that the toolkit can
use the app's database, and say which database that is.

A command run before the migrations, or on a PostgreSQL database not created yet, used to
end in a traceback (or, worse, in answers made up from the settings, as if every
endpoint were legacy). Now it prints one line naming the problem and the fix, and exits
4. On a usable database the command names it first, on stderr: its stdout stays what
scripts parse (``flags list | awk ...``, ``--json``). ``status`` names it on stdout.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click
from sqlalchemy.exc import DBAPIError

from ...core.database import database_problem, shown
from ..context import toolkit_of
from .exits import DatabaseNotReady

F = TypeVar("F", bound=Callable[..., Any])


def uses_database(command: F) -> F:
    """Run ``command`` (in the app context) only on a database the toolkit can use."""

    @functools.wraps(command)
    def checked(*args: Any, **kwargs: Any) -> Any:
        engine = toolkit_of().engine
        problem = database_problem(engine)
        if problem:
            raise DatabaseNotReady(problem)
        click.echo(f"database: {shown(engine.url)}", err=True)
        try:
            return command(*args, **kwargs)
        except DBAPIError:
            # The database went away (or lost a table) while the command ran: the same one
            # line; anything else is a bug, and its traceback stays.
            problem = database_problem(engine)
            if problem is None:
                raise
            raise DatabaseNotReady(problem) from None

    return checked  # type: ignore[return-value]
