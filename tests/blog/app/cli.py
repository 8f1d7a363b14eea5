import csv
from datetime import datetime

import click
import sqlalchemy as sa
from flask import Blueprint

from .extensions import db
from .models import Post, User, utcnow

bp = Blueprint("cli", __name__, cli_group="blog")


@bp.cli.command("import-posts")
@click.argument("file", type=click.File("r", encoding="utf-8"))
def import_posts(file):
    """Import posts from a CSV export with columns username, body and timestamp (optional)."""
    # "user" is quoted: it is a reserved word in PostgreSQL.
    users = db.session.execute(sa.text('SELECT id, username FROM "user"'))
    user_ids = {username: id for id, username in users}
    rows = []
    skipped = 0
    for record in csv.DictReader(file):
        user_id = user_ids.get(record["username"])
        if user_id is None:
            click.echo(f"skipping a post by unknown user {record['username']!r}", err=True)
            skipped += 1
            continue
        timestamp = record.get("timestamp")
        rows.append(
            {
                "user_id": user_id,
                "body": record["body"][:140],
                "timestamp": datetime.fromisoformat(timestamp) if timestamp else utcnow(),
            }
        )
    if rows:
        db.session.execute(sa.insert(Post), rows)
    db.session.commit()
    click.echo(f"Imported {len(rows)} posts, skipped {skipped}.")


@bp.cli.command("expire-tokens")
def expire_tokens():
    """Forget API tokens that have expired (run from cron)."""
    result = db.session.execute(
        sa.update(User)
        .where(User.token_expiration < utcnow())
        .values(token=None, token_expiration=None)
    )
    db.session.commit()
    click.echo(f"Expired {result.rowcount} tokens.")
