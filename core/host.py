"""The plugin host: finds plugins in the ``xadt`` entry-point group and collects what they provide.

Nothing happens at import. :func:`plugin_manager` loads plugins and :func:`load_registry` asks them
for detectors and backbones. A broken plugin costs one :class:`XadtPluginWarning`, never the host.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import os
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Literal

import pluggy

from xadt import hookspecs
from xadt.detector import Detector
from xadt.errors import XadtError

ENTRY_POINT_GROUP = "xadt"
"""The entry-point group a plugin distribution registers its module under."""

DISABLE_AUTOLOAD_ENV = "XADT_DISABLE_PLUGIN_AUTOLOAD"
"""Set to ``1`` to load only xadt's own built-in plugins."""

BLOCK_ENV = "XADT_BLOCK_PLUGINS"
"""Comma-separated entry-point names of plugins not to load."""

BUILT_IN = "built-in"
"""The ``source`` of a plugin shipped inside the xadt distribution itself."""

IN_PROCESS = "in-process"
"""The ``source`` of a plugin registered by code rather than through an entry point."""

Kind = Literal["detector", "backbone"]

_NAME = re.compile(r"[a-z][a-z0-9_-]*")


class XadtPluginWarning(UserWarning):
    """A plugin failed to load or provided something unusable; the host carried on without it."""


@dataclass(frozen=True)
class PluginRecord:
    """Where a loaded plugin came from.

    Attributes:
        name: the name it is registered under (its entry-point name).
        distribution: the distribution that ships it; None when registered by code.
        version: that distribution's version; None when registered by code.
        source: ``"built-in"`` for xadt's own plugins, else the distribution name
            (``"in-process"`` when registered by code).
        hooks: the xadt hooks it implements.
    """

    name: str
    distribution: str | None
    version: str | None
    source: str
    hooks: tuple[str, ...] = ()

    @property
    def builtin(self) -> bool:
        """Whether the plugin ships inside xadt itself."""
        return self.source == BUILT_IN

    def describe(self) -> str:
        """The plugin as warnings name it: ``plugin 'foo' from distribution 'xadt-foo' 1.2``."""
        return _describe_plugin(self.name, self.distribution, self.version)

    def provider(self) -> str:
        """The plugin as named in a clash, e.g. ``'xadt' (built-in)`` or ``'xadt-foo' 1.2``."""
        if self.distribution is None:
            return f"plugin {self.name!r}"
        if self.builtin:
            return f"{self.distribution!r} (built-in)"
        return f"{self.distribution!r} {self.version}"


@dataclass(frozen=True)
class RegistryEntry:
    """One detector class or backbone factory, with the plugin that provides it.

    Attributes:
        name: the detector's or backbone's public name.
        kind: ``"detector"`` or ``"backbone"``.
        plugin: the providing plugin's record.
        obj: the detector class, or the backbone factory.
        description: a one-line description.
    """

    name: str
    kind: Kind
    plugin: PluginRecord
    obj: Any
    description: str = ""


@dataclass(frozen=True)
class Clash:
    """Several plugins claim one name; the name is unusable until all but one are blocked.

    Attributes:
        kind: ``"detector"`` or ``"backbone"``.
        name: the claimed name.
        providers: every entry claiming it.
    """

    kind: Kind
    name: str
    providers: tuple[RegistryEntry, ...]

    @property
    def message(self) -> str:
        """One sentence naming every provider and how to resolve the clash."""
        labels = [e.plugin.provider() for e in self.providers]
        who = (
            f"both {labels[0]} and {labels[1]}"
            if len(labels) == 2
            else ", ".join(labels[:-1]) + f" and {labels[-1]}"
        )
        blockable = sorted(
            {e.plugin.name for e in self.providers if e.plugin.distribution is not None},
            key=lambda n: (self._builtin(n), n),
        )
        if len(blockable) == len(self.providers) == 2:
            hint = f"; block one with {BLOCK_ENV}={blockable[0]} or {BLOCK_ENV}={blockable[1]}"
        elif blockable:
            hint = f"; block all but one with {BLOCK_ENV} (plugins: {', '.join(blockable)})"
        else:
            hint = ""
        return f"{self.kind} {self.name!r} is provided by {who}{hint}"

    def _builtin(self, plugin: str) -> bool:
        return any(e.plugin.builtin for e in self.providers if e.plugin.name == plugin)


@dataclass
class Registry:
    """Everything the loaded plugins provide, and what went wrong while asking them.

    Attributes:
        detectors: detector entries by name (names claimed twice are only in ``clashes``).
        backbones: backbone entries by name (likewise).
        plugins: a record of each loaded plugin, by plugin name.
        clashes: names claimed by more than one plugin.
        problems: the message of every ``XadtPluginWarning`` raised while loading.
        blocked: plugin names skipped because of ``XADT_BLOCK_PLUGINS``.
    """

    detectors: dict[str, RegistryEntry] = field(default_factory=dict)
    backbones: dict[str, RegistryEntry] = field(default_factory=dict)
    plugins: dict[str, PluginRecord] = field(default_factory=dict)
    clashes: list[Clash] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def entries(self) -> list[RegistryEntry]:
        """Every detector and backbone entry, clashing ones included, sorted by kind and name."""
        found = [*self.detectors.values(), *self.backbones.values()]
        found += [e for clash in self.clashes for e in clash.providers]
        return sorted(found, key=lambda e: (e.kind, e.name))

    def detector_names(self) -> list[str]:
        """Every installed detector name, clashing ones included, sorted."""
        return self._names("detector", self.detectors)

    def backbone_names(self) -> list[str]:
        """Every installed backbone name, clashing ones included, sorted."""
        return self._names("backbone", self.backbones)

    def get_detector(self, name: str) -> type[Detector]:
        """The detector class called ``name``.

        Raises:
            XadtError: when no plugin provides ``name`` (listing the installed names and the
                nearest match) or when several do (naming each of them).
        """
        return self._get("detector", self.detectors, name)  # type: ignore[no-any-return]

    def get_backbone(self, name: str) -> Callable[..., Any]:
        """The backbone factory called ``name``; raises ``XadtError`` like :meth:`get_detector`."""
        return self._get("backbone", self.backbones, name)  # type: ignore[no-any-return]

    def _names(self, kind: Kind, found: Mapping[str, RegistryEntry]) -> list[str]:
        return sorted({*found, *(c.name for c in self.clashes if c.kind == kind)})

    def _get(self, kind: Kind, found: Mapping[str, RegistryEntry], name: str) -> Any:
        for clash in self.clashes:
            if clash.kind == kind and clash.name == name:
                raise XadtError(clash.message)
        if name in found:
            return found[name].obj
        names = self._names(kind, found)
        near = difflib.get_close_matches(name, names, n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        word = "plugin" if kind == "detector" else "backbone"
        msg = f"unknown {word} {name!r}; {hint}installed: {', '.join(names) or 'none'}"
        raise XadtError(msg)


class XadtPluginManager(pluggy.PluginManager):
    """A pluggy manager for project ``xadt`` that remembers each plugin's distribution.

    Attributes:
        origins: ``(distribution, version)`` of each plugin loaded from an entry point.
        problems: the message of every ``XadtPluginWarning`` raised while loading.
        blocked: plugin names skipped because of ``XADT_BLOCK_PLUGINS``.
    """

    def __init__(self) -> None:
        super().__init__("xadt")
        self.add_hookspecs(hookspecs)
        self.origins: dict[str, tuple[str, str]] = {}
        self.problems: list[str] = []
        self.blocked: list[str] = []


def plugin_manager(autoload: bool = True) -> pluggy.PluginManager:
    """A fresh plugin manager with xadt's hook specs, and with plugins loaded when ``autoload``.

    Loading walks the ``xadt`` entry-point group, importing and registering each plugin on its own:
    one that fails gives an :class:`XadtPluginWarning` naming it and is left out. With
    ``XADT_DISABLE_PLUGIN_AUTOLOAD=1`` only xadt's own built-ins load; names in
    ``XADT_BLOCK_PLUGINS=a,b`` are not loaded at all. A plugin implementing a hook xadt does not
    define (a misspelling such as ``xadt_detector``) is reported and unregistered.

    Args:
        autoload: load plugins from entry points; False gives an empty manager for tests.

    Returns:
        An :class:`XadtPluginManager` (a ``pluggy.PluginManager``).
    """
    pm = XadtPluginManager()
    for name in os.environ.get(BLOCK_ENV, "").split(","):
        if name.strip():
            pm.set_blocked(name.strip())
    if autoload:
        _load_entry_points(pm)
        _check_pending(pm)
    return pm


def load_registry(pm: pluggy.PluginManager | None = None) -> Registry:
    """Ask every registered plugin for its detectors and backbones, one plugin at a time.

    A hook implementation that raises, or returns something that is not a valid detector class or
    backbone factory, gives an :class:`XadtPluginWarning` naming its plugin; the rest is kept.

    Args:
        pm: the manager to ask; by default a fresh :func:`plugin_manager`.
    """
    pm = plugin_manager() if pm is None else pm
    _check_pending(pm)
    records = {name: _record(pm, name, plugin) for name, plugin in pm.list_name_plugin()}
    records = {name: rec for name, rec in records.items() if rec is not None}
    registry = Registry(
        plugins=dict(sorted(records.items())),
        problems=list(getattr(pm, "problems", [])),
        blocked=list(getattr(pm, "blocked", [])),
    )
    found: list[RegistryEntry] = []
    for impl in pm.hook.xadt_detectors.get_hookimpls():
        found += _collect(impl, "xadt_detectors", records, registry.problems)
    for impl in pm.hook.xadt_backbones.get_hookimpls():
        found += _collect(impl, "xadt_backbones", records, registry.problems)

    by_name: dict[tuple[Kind, str], list[RegistryEntry]] = {}
    for entry in sorted(found, key=lambda e: (not e.plugin.builtin, e.plugin.name)):
        same = by_name.setdefault((entry.kind, entry.name), [])
        if not any(e.obj is entry.obj and e.plugin == entry.plugin for e in same):
            same.append(entry)
    for (kind, name), entries in sorted(by_name.items()):
        if len(entries) > 1:
            registry.clashes.append(Clash(kind, name, tuple(entries)))
        elif kind == "detector":
            registry.detectors[name] = entries[0]
        else:
            registry.backbones[name] = entries[0]
    return registry


def detector_class_problem(obj: Any) -> str | None:
    """Why ``obj`` is not a usable detector class, or None when it is.

    A detector class subclasses ``xadt.Detector``, implements its abstract methods, has a
    lower-case ``name`` and a dataclass ``Config`` whose fields all have defaults.
    """
    if not (isinstance(obj, type) and issubclass(obj, Detector)):
        return f"{obj!r} is not a subclass of xadt.Detector"
    label = obj.__qualname__
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        return f"{label} has no lower-case name (got {name!r})"
    if inspect.isabstract(obj):
        missing = ", ".join(sorted(getattr(obj, "__abstractmethods__", ())))
        return f"{label} leaves abstract methods unimplemented: {missing}"
    config = getattr(obj, "Config", None)
    if not (isinstance(config, type) and dataclasses.is_dataclass(config)):
        return f"{label}.Config is not a dataclass (got {config!r})"
    required = [
        f.name
        for f in dataclasses.fields(config)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if required:
        return f"{label}.Config fields without a default: {', '.join(required)}"
    return None


def _load_entry_points(pm: XadtPluginManager) -> None:
    only_builtin = os.environ.get(DISABLE_AUTOLOAD_ENV, "").strip() not in ("", "0")
    eps = sorted(entry_points(group=ENTRY_POINT_GROUP), key=_sort_key)
    for ep in eps:
        dist, version = _origin(ep)
        if only_builtin and not _is_xadt(dist):
            continue
        if pm.is_blocked(ep.name):
            pm.blocked.append(ep.name)
            continue
        label = _describe_plugin(ep.name, dist, version)
        if pm.has_plugin(ep.name):
            taken = _describe_plugin(ep.name, *pm.origins.get(ep.name, (None, None)))
            _warn(pm.problems, f"xadt: {label} failed to load: its name is taken by {taken}")
            continue
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as exc:
            if pm.has_plugin(ep.name):  # older pluggy validated while registering
                pm.unregister(name=ep.name)
            _warn(pm.problems, f"xadt: {label} failed to load: {_cause(exc)}")
            continue
        if dist is not None and version is not None:
            pm.origins[ep.name] = (dist, version)


def _check_pending(pm: pluggy.PluginManager) -> None:
    problems: list[str] = getattr(pm, "problems", [])
    origins: dict[str, tuple[str, str]] = getattr(pm, "origins", {})
    while True:
        try:
            pm.check_pending()
        except pluggy.PluginValidationError as exc:
            name = pm.get_name(exc.plugin) or repr(exc.plugin)
            unknown = [
                c.name
                for c in pm.get_hookcallers(exc.plugin) or []
                if not c.has_spec() and any(not i.optionalhook for i in c.get_hookimpls())
            ]
            pm.unregister(exc.plugin)
            label = _describe_plugin(name, *origins.pop(name, (None, None)))
            _warn(problems, f"xadt: {label} failed to load: {_unknown_hooks(unknown, exc)}")
        else:
            return


def _unknown_hooks(unknown: list[str], exc: Exception) -> str:
    specs = sorted(n for n, f in vars(hookspecs).items() if hasattr(f, "xadt_spec"))
    if not unknown:
        return str(exc)
    parts = []
    for hook in unknown:
        near = difflib.get_close_matches(hook, specs, n=1)
        parts.append(f"unknown hook {hook!r}" + (f" (did you mean {near[0]!r}?)" if near else ""))
    return "; ".join(parts) + f"; xadt's hooks are: {', '.join(specs)}"


def _collect(
    impl: Any, hook: str, records: Mapping[str, PluginRecord], problems: list[str]
) -> list[RegistryEntry]:
    if impl.wrapper or impl.hookwrapper:
        return []
    record = records.get(impl.plugin_name) or PluginRecord(impl.plugin_name, None, None, IN_PROCESS)
    kind: Kind = "detector" if hook == "xadt_detectors" else "backbone"
    try:
        result = impl.function()
        if kind == "detector" and result is not None:
            single = isinstance(result, str | bytes | Mapping) or not _iterable(result)
            result = [result] if single else list(result)
    except Exception as exc:
        _warn(problems, f"xadt: {record.describe()}: {hook}() raised {_cause(exc)}; skipped")
        return []
    if result is None:
        return []
    found: list[RegistryEntry] = []
    if kind == "detector":
        for cls in result:
            problem = detector_class_problem(cls)
            if problem is not None:
                _warn(
                    problems,
                    f"xadt: {record.describe()}: {hook}() returned an unusable detector: "
                    f"{problem}; skipped",
                )
                continue
            found.append(RegistryEntry(cls.name, kind, record, cls, _one_line(cls)))
        return found
    if not isinstance(result, Mapping):
        _warn(problems, f"xadt: {record.describe()}: {hook}() returned {result!r}, not a dict")
        return []
    for name, factory in result.items():
        if not (isinstance(name, str) and _NAME.fullmatch(name) and callable(factory)):
            _warn(
                problems,
                f"xadt: {record.describe()}: {hook}() returned an unusable backbone: "
                f"{name!r}: {factory!r} is not a lower-case name and a callable; skipped",
            )
            continue
        found.append(RegistryEntry(name, kind, record, factory, _one_line(factory)))
    return found


def _record(pm: pluggy.PluginManager, name: str, plugin: Any) -> PluginRecord | None:
    if plugin is None:  # a blocked name
        return None
    hooks = tuple(sorted(c.name for c in pm.get_hookcallers(plugin) or [] if c.has_spec()))
    dist, version = getattr(pm, "origins", {}).get(name, (None, None))
    if dist is None:
        return PluginRecord(name, None, None, IN_PROCESS, hooks)
    return PluginRecord(name, dist, version, BUILT_IN if _is_xadt(dist) else dist, hooks)


def _origin(ep: EntryPoint) -> tuple[str | None, str | None]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return None, None
    return dist.name, dist.version


def _sort_key(ep: EntryPoint) -> tuple[bool, str, str]:
    dist, _ = _origin(ep)
    # Built-ins first, so a third-party entry point reusing a built-in's name is the one refused.
    return (not _is_xadt(dist), dist or "", ep.name)


def _is_xadt(dist: str | None) -> bool:
    return dist is not None and re.sub(r"[-_.]+", "-", dist).lower() == "xadt"


def _describe_plugin(name: str, dist: str | None, version: str | None) -> str:
    if dist is None:
        return f"plugin {name!r}"
    if _is_xadt(dist):
        return f"plugin {name!r} (built-in)"
    return f"plugin {name!r} from distribution {dist!r} {version}"


def _cause(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _one_line(obj: Any) -> str:
    # obj.__doc__, not inspect.getdoc: a detector without a docstring must not inherit Detector's.
    text = (getattr(obj, "description", "") or obj.__doc__ or "").strip()
    return text.splitlines()[0].strip() if text else ""


def _iterable(obj: Any) -> bool:
    try:
        iter(obj)
    except TypeError:
        return False
    return True


def _warn(problems: list[str], message: str) -> None:
    problems.append(message)
    warnings.warn(message, XadtPluginWarning, stacklevel=4)
