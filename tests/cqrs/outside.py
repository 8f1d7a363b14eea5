"""Writing the shop's database the way a script, a cron job, another service or a
colleague with ``psql`` does: another process, the database driver, plain SQL."""

from __future__ import annotations

import subprocess
import sys

from flask import Flask
from sqlalchemy.engine import make_url

SQLITE = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], timeout=30)
connection.execute(sys.argv[2])
connection.commit()
"""
POSTGRESQL = """
import psycopg, sys
with psycopg.connect(sys.argv[1]) as connection:
    connection.execute(sys.argv[2])
"""


def write_outside_the_app(app: Flask, sql: str) -> None:
    """Run ``sql`` in a separate Python process with the bare driver, and commit it."""
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() == "sqlite":
        script, target = SQLITE, str(url.database)
    else:
        script = POSTGRESQL
        target = url.set(drivername="postgresql").render_as_string(hide_password=False)
    subprocess.run([sys.executable, "-c", script, target, sql], check=True, timeout=60)
