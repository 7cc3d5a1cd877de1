"""``xadt plugins``: list the installed detectors and backbones and where each comes from."""

from __future__ import annotations

import fnmatch
import json
import warnings
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from xadt.config import config_to_json, options

if TYPE_CHECKING:
    from xadt.host import PluginRecord, Registry, RegistryEntry


def plugins(
    pattern: Annotated[
        str | None,
        typer.Argument(
            metavar="GLOB", help="Only names matching this glob, e.g. 'gan*'.", show_default=False
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """List the installed detectors and backbones: source, version and description.

    Plugins that failed to load and names claimed by two plugins are listed under the table.
    Given a detector's exact name, list its options instead: type, default, whether it may be
    set when scoring (runtime), help, and its named presets.
    """
    from xadt.host import XadtPluginWarning, load_registry

    with warnings.catch_warnings():
        # Shown under the table instead of as Python warnings.
        warnings.simplefilter("ignore", XadtPluginWarning)
        registry = load_registry()
    if pattern is not None and pattern in registry.detectors:
        _show_options(registry.detectors[pattern], as_json=as_json)
        return
    entries = [
        e for e in registry.entries() if pattern is None or fnmatch.fnmatchcase(e.name, pattern)
    ]
    if as_json:
        typer.echo(json.dumps(_as_json(registry, entries), indent=2))
        return
    console = Console(highlight=False)
    if entries:
        console.print(_table(registry, entries))
    elif pattern is not None:
        console.print(f"no detector or backbone matches {pattern!r}")
    else:
        console.print("no detectors or backbones installed")
    for clash in registry.clashes:
        console.print(Text.assemble(("clash: ", "red"), clash.message), soft_wrap=True)
    for problem in registry.problems:
        console.print(Text.assemble(("warning: ", "yellow"), problem), soft_wrap=True)
    if registry.blocked:
        console.print(f"blocked by XADT_BLOCK_PLUGINS: {', '.join(registry.blocked)}")


def _table(registry: Registry, entries: list[RegistryEntry]) -> Table:
    clashing = {(c.kind, c.name) for c in registry.clashes}
    table = Table("name", "kind", "source", "version", "description")
    for e in entries:
        name = Text.assemble(e.name, (" (clash)", "red") if (e.kind, e.name) in clashing else "")
        table.add_row(name, e.kind, e.plugin.source, e.plugin.version or "", e.description)
    return table


def _as_json(registry: Registry, entries: list[RegistryEntry]) -> dict[str, Any]:
    clashing = {(c.kind, c.name) for c in registry.clashes}
    return {
        "entries": [
            {
                "name": e.name,
                "kind": e.kind,
                "plugin": e.plugin.name,
                "source": e.plugin.source,
                "distribution": e.plugin.distribution,
                "version": e.plugin.version,
                "description": e.description,
                "clash": (e.kind, e.name) in clashing,
            }
            for e in entries
        ],
        "plugins": [_plugin_json(p) for p in registry.plugins.values()],
        "clashes": [
            {"kind": c.kind, "name": c.name, "plugins": [e.plugin.name for e in c.providers]}
            | {"message": c.message}
            for c in registry.clashes
        ],
        "problems": registry.problems,
        "blocked": registry.blocked,
    }


def _plugin_json(record: PluginRecord) -> dict[str, Any]:
    return {
        "name": record.name,
        "source": record.source,
        "distribution": record.distribution,
        "version": record.version,
        "hooks": list(record.hooks),
    }


def _show_options(entry: RegistryEntry, *, as_json: bool) -> None:
    cls = entry.obj
    found = options(cls.Config)
    presets = {name: config_to_json(config) for name, config in cls.presets.items()}
    if as_json:
        document = {
            "name": entry.name,
            "description": entry.description,
            "options": [
                {
                    "name": o.name,
                    "type": o.type,
                    "default": o.default,
                    "runtime": o.runtime,
                    "help": o.help,
                }
                for o in found
            ],
            "presets": presets,
        }
        typer.echo(json.dumps(document, indent=2, default=str))
        return
    console = Console(highlight=False)
    table = Table(title=f"{entry.name}: {entry.description}", title_justify="left", expand=True)
    table.add_column("option", no_wrap=True)
    table.add_column("type", max_width=22)
    table.add_column("default", max_width=20, overflow="fold")
    table.add_column("runtime")
    table.add_column("help", ratio=1)
    for o in found:
        table.add_row(o.name, o.type, repr(o.default), "yes" if o.runtime else "", o.help)
    console.print(table)
    console.print(
        "Set with --set KEY=VALUE on 'xadt train'; runtime options also on 'xadt score', "
        "'xadt localize' and 'xadt eval'."
    )
    for name, values in presets.items():
        changed = {k: v for k, v in values.items() if v != getattr(cls.Config(), k)}
        text = ", ".join(f"{k}={v!r}" for k, v in changed.items()) or "the defaults"
        console.print(f"preset {name}: {text}")
