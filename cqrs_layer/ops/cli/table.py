"""Printing aligned tables with a header row."""

from __future__ import annotations

from collections.abc import Sequence

import click


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Columns padded to their widest cell; the last column is not padded."""
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header) - 1)]
    for row in (header, *rows):
        cells = [f"{cell!s:<{width}}" for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, str(row[-1])]))
