"""Placeholder: demo data seeding."""

import click


@click.command("seed")
def seed_command() -> None:
    """Fill the database with demo data."""
