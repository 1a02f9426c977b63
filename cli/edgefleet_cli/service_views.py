"""How ``edgefleet services`` and ``edgefleet service NAME`` print the retained service
catalog (``services/{service}``, docs/protocol.md "Services"). No network I/O: values in,
renderables out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgefleet_protocol import ServiceEndpoints
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from edgefleet_cli.client import when
from edgefleet_cli.views import cell


def _ports(ports: Mapping[str, int]) -> str:
    return ", ".join(f"{name}:{port}" for name, port in ports.items()) or "-"


def services_view(services: Mapping[str, ServiceEndpoints]) -> RenderableType:
    if not services:
        return Text("no services (an app offers one with a service block in its manifest)")
    table = Table(title=None)
    for name in ("service", "app", "endpoints", "topology", "ports", "mqtt group", "updated"):
        table.add_column(name, no_wrap=name in ("service", "app"))
    for name in sorted(services):
        s = services[name]
        table.add_row(
            cell(s.service), cell(s.app), str(len(s.endpoints)), cell(s.topology),
            _ports(s.ports), cell(s.mqtt_group), when(s.updated_at),
        )  # fmt: skip
    return table


def service_view(entry: ServiceEndpoints) -> RenderableType:
    head = Text.from_markup(
        f"[bold]{cell(entry.service)}[/]  app {cell(entry.app)}  {entry.protocol}  "
        f"topology {entry.topology}  ports {_ports(entry.ports)}  revision {entry.revision}  "
        f"updated {when(entry.updated_at)}"
    )
    if entry.mqtt_group:
        head.append(f"  mqtt group {entry.mqtt_group}")
    if not entry.endpoints:
        return Group(head, Text("no healthy endpoint right now"))
    table = Table(title=None)
    for name in ("node", "replica", "site", "region", "address", "port", "weight"):
        table.add_column(name, no_wrap=name in ("node", "replica"))
    for e in entry.endpoints:
        table.add_row(
            cell(e.node), cell(e.replica), cell(e.site), cell(e.region), cell(e.address),
            _ports(e.ports) if e.ports else str(e.port), str(e.weight),
        )  # fmt: skip
    return Group(head, table)


def as_json(entry: ServiceEndpoints) -> dict[str, Any]:
    return entry.model_dump(mode="json", exclude_none=True)
