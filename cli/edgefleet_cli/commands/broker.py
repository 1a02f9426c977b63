"""`edgefleet broker ...` commands.

``edgefleet broker config`` writes a ready production mosquitto set (see
``brokerconfig/bundle.py`` for what is in it and ``broker-config/README.md`` for how to
install it). Every name is validated before anything is generated, so a typo exits with
code 2, a message naming the bad value, and no files.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path
from typing import Annotated

import typer
from edgefleet_protocol.errors import ProtocolError
from edgefleet_protocol.topics import DEFAULT_ROOT

from edgefleet_cli.brokerconfig import conf
from edgefleet_cli.brokerconfig.bundle import (
    DEFAULT_CLIENT_DIR,
    ConfigRequest,
    build_config_set,
)
from edgefleet_cli.brokerconfig.passwd import SALT_BYTES
from edgefleet_cli.brokerconfig.users import build_users
from edgefleet_cli.brokerconfig.writer import (
    DirectoryNotEmptyError,
    check_target,
    closed_parent,
    share_with_broker,
    write_config_set,
)

app = typer.Typer(help="broker commands", no_args_is_help=True)

USAGE_ERROR = 2


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(USAGE_ERROR)


def _new_password() -> str:
    # 24 random bytes; URL-safe so it can sit in a broker URL unescaped.
    return secrets.token_urlsafe(24)


@app.command("config")
def config(
    out: Annotated[Path, typer.Option("--out", help="Directory to write the set into.")],
    node: Annotated[
        list[str] | None, typer.Option("--node", help="SITE/NODE of an agent; repeatable.")
    ] = None,
    operator: Annotated[
        list[str] | None, typer.Option("--operator", help="Operator name (writes commands).")
    ] = None,
    viewer: Annotated[
        list[str] | None, typer.Option("--viewer", help="Dashboard name (reads status only).")
    ] = None,
    bridge: Annotated[
        list[str] | None,
        typer.Option("--bridge", help="SITE whose site broker bridges into this one."),
    ] = None,
    host: Annotated[
        list[str] | None,
        typer.Option("--host", help="Name or IP clients use to reach the broker (in the cert)."),
    ] = None,
    root: Annotated[str, typer.Option("--root", help="Topic root of the fleet.")] = DEFAULT_ROOT,
    port: Annotated[int, typer.Option("--port", help="TLS listener port.")] = conf.DEFAULT_PORT,
    bind: Annotated[
        str | None,
        typer.Option(
            "--bind",
            help="Address the listener binds, e.g. 127.0.0.1 for a first try on one machine "
            "(default: all interfaces).",
        ),
    ] = None,
    install_dir: Annotated[
        str | None,
        typer.Option(
            "--install-dir",
            help="Where the broker will read these files (default: --out, absolute). "
            f"Use {conf.DEFAULT_INSTALL_DIR} when you generate elsewhere and copy.",
        ),
    ] = None,
    data_dir: Annotated[
        str, typer.Option("--data-dir", help="mosquitto persistence directory.")
    ] = conf.DEFAULT_DATA_DIR,
    client_dir: Annotated[
        str,
        typer.Option("--client-dir", help="Where clients keep ca.crt and their cert/key."),
    ] = DEFAULT_CLIENT_DIR,
    require_client_cert: Annotated[
        bool,
        typer.Option(
            "--require-client-cert/--no-require-client-cert",
            help="Refuse TLS clients without a certificate from this CA (on by default).",
        ),
    ] = True,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite a non-empty --out (new CA, new secrets).")
    ] = False,
) -> None:
    """Write a production mosquitto set: config, CA, server and client certs, passwords, ACL."""
    try:
        users = build_users(
            nodes=node or (), operators=operator or (), viewers=viewer or (), bridges=bridge or ()
        )
        request = ConfigRequest(
            users=users,
            root=root,
            port=port,
            hosts=tuple(host or ()),
            layout=conf.Layout(install_dir=install_dir or str(out.resolve()), data_dir=data_dir),
            require_client_cert=require_client_cert,
            client_dir=client_dir,
            bind=bind,
        )
        check_target(out, force=force)
        files = build_config_set(
            request,
            now=dt.datetime.now(dt.UTC),
            new_password=_new_password,
            new_salt=lambda: os.urandom(SALT_BYTES),
        )
    except ProtocolError as exc:
        raise _fail(str(exc)) from None
    except DirectoryNotEmptyError as exc:
        raise _fail(str(exc)) from None
    written = write_config_set(out, files, force=force)
    typer.echo(f"wrote {len(written)} files for {len(users)} users to {out}")
    group = share_with_broker(out)
    if group is not None:
        typer.echo(
            f"  passwd, acl and server.key are readable by group {group} (mosquitto "
            "drops to its own user before reading them)"
        )
        closed = closed_parent(out)
        if closed is not None:
            typer.echo(
                f"warning: mosquitto's user cannot pass through {closed}: generate the set "
                "under a directory it can reach (e.g. --out /etc/mosquitto/edgefleet)",
                err=True,
            )
    typer.echo(f"  broker:  mosquitto -c {out / conf.CONF_FILE}")
    typer.echo(f"  secrets: {out / conf.CREDENTIALS_FILE} (hand out, then store safely)")
