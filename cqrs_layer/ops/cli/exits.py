"""The exit codes of ``flask cqrs`` commands: one meaning each, so a script can tell them
apart.

== =========================================================================================
0  done (a flag already at the stage asked for counts: nothing recorded)
1  the command's check failed: ``verify`` found drift, ``refresh`` left changes pending, a
   flag was changed concurrently (run it again)
2  a bad argument (click's usage error): nothing was changed
3  refused by the promotion gate (``flags set``): fix the blockers it lists, or ``--force``
4  the database cannot be used: it does not exist, cannot be reached, or the toolkit's
   tables are missing (the message says which, and the fix)
== =========================================================================================
"""

from __future__ import annotations

import click

# 0, 1 and 2 are click's own: a normal return, ClickException, UsageError.
REFUSED = 3
DATABASE = 4


class Refused(click.ClickException):
    exit_code = REFUSED


class DatabaseNotReady(click.ClickException):
    exit_code = DATABASE
