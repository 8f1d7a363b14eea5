"""Can the toolkit use this database? If not, one line naming the problem and the fix.

Operators meet these first: a command run before the migrations, a PostgreSQL database
not created yet, a server that is down. A traceback ending in ``no such table:
cqrs_flags`` says what broke, not what to do; these messages say both, and name the
database (password hidden), because "which database did it use?" is the next question.
"""

from __future__ import annotations

import re

from sqlalchemy import Connection, Engine, inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

from .tables import metadata

MIGRATE = "run your migrations (alembic upgrade head / flask db upgrade)"
_NO_DATABASE = re.compile(r'database "(?P<name>[^"]+)" does not exist')


def shown(url: URL | str) -> str:
    """The URL as messages show it: the password replaced by ``***``."""
    return make_url(url).render_as_string(hide_password=True)


def missing_tables(connection: Connection) -> list[str]:
    """The toolkit's tables that ``connection``'s database lacks, in creation order."""
    present = set(inspect(connection).get_table_names())
    return [table.name for table in metadata.sorted_tables if table.name not in present]


def database_problem(engine: Engine) -> str | None:
    """What keeps the toolkit from using ``engine``'s database, in one line with the fix;
    None when it can connect and finds every one of its tables."""
    try:
        with engine.connect() as connection:
            missing = missing_tables(connection)
    except DBAPIError as error:
        return connection_problem(engine.url, error)
    if missing:
        return tables_missing(engine.url, missing)
    return None


def tables_missing(url: URL, missing: list[str]) -> str:
    if len(missing) == len(metadata.tables):
        what = "the toolkit's tables are missing"
    else:
        what = f"the toolkit's tables {', '.join(missing)} are missing"
    return f"{what} in {shown(url)}: {MIGRATE}"


def unreachable(engine: Engine) -> str | None:
    """Why ``engine``'s database cannot be connected to, with the fix; None if it can."""
    try:
        with engine.connect():
            return None
    except DBAPIError as error:
        return connection_problem(engine.url, error)


def connection_problem(url: URL, error: DBAPIError) -> str:
    """``error``, raised connecting to ``url``, as one line with the fix."""
    message = str(error.orig)
    missing = _NO_DATABASE.search(message)
    if missing and url.get_backend_name() == "postgresql":
        name = missing.group("name")
        return (
            f"the database {name} does not exist on {shown(_server(url))}: "
            f"create it ({_createdb(url, name)}), then {MIGRATE}"
        )
    if url.get_backend_name() == "sqlite":
        return (
            f"cannot open the SQLite database {url.database}: {message} (does its folder "
            "exist, and may this user write there?)"
        )
    reason = message.removeprefix("connection failed: ").splitlines()[0]
    return f"cannot connect to {shown(url)}: {reason}"


def _server(url: URL) -> URL:
    """``url`` without its database (``URL.set`` cannot unset one)."""
    return URL.create(url.drivername, url.username, url.password, url.host, url.port)


def _createdb(url: URL, name: str) -> str:
    """The ``createdb`` command line that creates ``name`` where ``url`` points."""
    words = ["createdb"]
    for flag, value in (("-h", url.host), ("-p", url.port), ("-U", url.username)):
        if value:
            words += [flag, str(value)]
    return " ".join([*words, name])
