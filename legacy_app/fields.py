"""Value constraints shared by request bodies, services and queries.

The limits are the database's: ids and integer columns are 32-bit on PostgreSQL, and
PostgreSQL refuses NUL in text. Checking them at the edge turns what would be a database
error (a 500) into a 422 naming the field.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

MAX_DB_INT = 2_147_483_647

#: What text inputs are stripped of: Unicode's White_Space characters, exactly the set
#: pydantic's ``str_strip_whitespace`` strips from bodies; query strings strip the same, so
#: /openapi.json can describe both with one character class. (Python's ``str.strip()``
#: would also strip U+001C..U+001F, which pydantic keeps.)
WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def storable_text(value: str) -> str:
    """Refuse text neither backend can store: NUL characters and lone surrogates."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


def fits_db_int(value: int) -> bool:
    """Whether ``value`` can be a row id at all (SQLite cannot even bind larger ones)."""
    return 0 < value <= MAX_DB_INT


Storable = AfterValidator(storable_text)
DbId = Annotated[int, Field(ge=1, le=MAX_DB_INT)]
Cents = Annotated[int, Field(ge=0, le=MAX_DB_INT)]
Count = Annotated[int, Field(ge=0, le=MAX_DB_INT)]
