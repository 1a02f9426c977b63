"""`edgefleet profiles ...` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="profiles commands", no_args_is_help=True)
