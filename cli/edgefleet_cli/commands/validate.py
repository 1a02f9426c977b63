"""``edgefleet validate FILE...``: check manifests offline, reporting every problem.

No broker and no orchestrator: the same rules ``deploy`` applies (the protocol package's
manifest model, unknown fields refused), but every refused field of every file is listed,
not only the first, plus an app name defined in two files. Exit 0 when all are valid, 1
when any is not (the problems on stderr, one ``file: field: reason`` line each).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from edgefleet_protocol.manifest import ManifestError, manifest_files, manifest_problems
from edgefleet_protocol.manifest.files import load_manifest

from edgefleet_cli.options import Output, OutputOpt


def check(paths: list[Path]) -> tuple[list[tuple[str, str]], list[ManifestError]]:
    """``(file, app)`` of each valid manifest, and every problem found."""
    valid: list[tuple[str, str]] = []
    problems: list[ManifestError] = []
    defined_in: dict[str, str] = {}
    for path in paths:
        try:
            files = manifest_files(path)
        except ManifestError as exc:
            problems.append(exc)
            continue
        for file in files:
            try:
                raw = file.read_bytes()
            except OSError as exc:
                problems.append(
                    ManifestError(str(file), str(file), f"cannot be read ({exc.strerror})")
                )
                continue
            found = manifest_problems(raw, source=str(file))
            if found:
                problems.extend(found)
                continue
            name = load_manifest(raw, source=str(file)).name
            earlier = defined_in.setdefault(name, str(file))
            if earlier != str(file):
                problems.append(
                    ManifestError(
                        str(file), "name", f"app {name!r} is already defined in {earlier}"
                    )
                )
                continue
            valid.append((str(file), name))
    return valid, problems


def validate(
    files: Annotated[
        list[Path],
        typer.Argument(help="Manifest files or directories (their *.yaml, *.yml, *.json)."),
    ],
    output: OutputOpt = Output.table,
) -> None:
    """Check manifests offline and report every problem (no broker needed)."""
    valid, problems = check(files)
    if output is Output.json:
        typer.echo(
            json.dumps(
                {
                    "valid": [{"file": f, "app": a} for f, a in valid],
                    "problems": [
                        {"file": p.source, "field": p.field, "reason": p.reason} for p in problems
                    ],
                },
                indent=2,
            )
        )
    else:
        for file, app in valid:
            typer.echo(f"ok {file} (app {app})")
        for problem in problems:
            typer.echo(str(problem), err=True)
    if problems:
        count = len({p.source for p in problems})
        if output is not Output.json:
            typer.echo(f"error: {len(problems)} problem(s) in {count} file(s)", err=True)
        raise typer.Exit(1)
