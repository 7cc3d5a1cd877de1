"""The plugin host on its own: entry-point loading, blocking, validation and lookups, with fake
entry points so that nothing needs installing."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

import xadt
import xadt.host
from xadt.errors import XadtError
from xadt.host import (
    XadtPluginManager,
    XadtPluginWarning,
    detector_class_problem,
    load_registry,
    plugin_manager,
)
from xadt.plugins.baseline import BaselineDetector


@dataclass
class FakeDist:
    """Just enough of ``importlib.metadata.Distribution`` for the host."""

    name: str
    version: str


@dataclass
class FakeEntryPoint:
    """An entry point whose ``load()`` returns ``target``, or raises it when it is an exception."""

    name: str
    dist: FakeDist | None
    target: Any
    loads: int = 0

    def load(self) -> Any:
        self.loads += 1
        if isinstance(self.target, BaseException):
            raise self.target
        return self.target


def fake_entry_points(monkeypatch: pytest.MonkeyPatch, *eps: FakeEntryPoint) -> None:
    """Make the host see exactly ``eps`` in the ``xadt`` group."""

    def entry_points(*, group: str) -> list[FakeEntryPoint]:
        assert group == "xadt"
        return list(eps)

    monkeypatch.setattr(xadt.host, "entry_points", entry_points)


def plugin(**hooks: Callable[..., Any]) -> Any:
    """A plugin object whose attributes are the given hook implementations."""
    return type("Plugin", (), {k: staticmethod(xadt.hookimpl(f)) for k, f in hooks.items()})()


def detector_named(name: str) -> type[BaselineDetector]:
    """A valid detector class called ``name``."""
    return type(name.title(), (BaselineDetector,), {"name": name, "description": f"The {name}."})


def provides(*classes: type) -> Any:
    """A plugin providing ``classes`` from its ``xadt_detectors`` hook."""
    return plugin(xadt_detectors=lambda: list(classes))


BUILTIN = FakeDist("xadt", xadt.__version__)


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XADT_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("XADT_BLOCK_PLUGINS", raising=False)


def test_each_call_builds_a_fresh_manager_with_the_specs() -> None:
    first, second = plugin_manager(autoload=False), plugin_manager(autoload=False)
    assert first is not second
    assert isinstance(first, XadtPluginManager)
    assert first.project_name == "xadt"
    assert first.hook.xadt_detectors.has_spec()
    assert first.hook.xadt_backbones.has_spec()
    assert first.list_name_plugin() == []


def test_the_real_entry_points_give_the_builtin_baseline() -> None:
    registry = load_registry()
    record = registry.plugins["baseline"]
    assert (record.distribution, record.version, record.source) == (
        "xadt",
        xadt.__version__,
        "built-in",
    )
    assert record.hooks == ("xadt_detectors",)
    assert registry.get_detector("baseline") is BaselineDetector


def test_records_distribution_and_version_of_each_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_entry_points(
        monkeypatch,
        FakeEntryPoint("foo", FakeDist("xadt-foo", "1.2"), provides(detector_named("foo"))),
        FakeEntryPoint("base", BUILTIN, provides(detector_named("base"))),
    )
    registry = load_registry()
    assert list(registry.plugins) == ["base", "foo"]
    foo = registry.plugins["foo"]
    assert (foo.distribution, foo.version, foo.source) == ("xadt-foo", "1.2", "xadt-foo")
    assert registry.plugins["base"].source == "built-in"
    assert registry.detectors["foo"].plugin == foo
    assert registry.detectors["foo"].description == "The foo."


@pytest.mark.parametrize("value", ["1", "yes"])
def test_disabling_autoload_keeps_only_builtins(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    third = FakeEntryPoint("foo", FakeDist("xadt-foo", "1.2"), provides(detector_named("foo")))
    fake_entry_points(monkeypatch, third, FakeEntryPoint("base", BUILTIN, provides()))
    monkeypatch.setenv("XADT_DISABLE_PLUGIN_AUTOLOAD", value)
    assert [name for name, _ in plugin_manager().list_name_plugin()] == ["base"]
    assert third.loads == 0


def test_autoload_env_set_to_zero_loads_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_entry_points(monkeypatch, FakeEntryPoint("foo", FakeDist("xadt-foo", "1"), provides()))
    monkeypatch.setenv("XADT_DISABLE_PLUGIN_AUTOLOAD", "0")
    assert plugin_manager().has_plugin("foo")


def test_autoload_false_loads_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    ep = FakeEntryPoint("base", BUILTIN, provides())
    fake_entry_points(monkeypatch, ep)
    assert plugin_manager(autoload=False).list_name_plugin() == []
    assert ep.loads == 0


def test_blocked_plugins_are_never_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    evil = FakeEntryPoint("evil", FakeDist("xadt-evil", "0.1"), RuntimeError("imported"))
    fake_entry_points(monkeypatch, evil, FakeEntryPoint("base", BUILTIN, provides()))
    monkeypatch.setenv("XADT_BLOCK_PLUGINS", " evil , other")
    registry = load_registry()
    assert evil.loads == 0
    assert list(registry.plugins) == ["base"]
    assert registry.blocked == ["evil"]
    assert registry.problems == []


def test_a_failed_import_is_one_warning_naming_plugin_and_distribution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_entry_points(
        monkeypatch,
        FakeEntryPoint(
            "foo", FakeDist("xadt-foo", "1.2"), ModuleNotFoundError("No module named 'tf'")
        ),
        FakeEntryPoint("base", BUILTIN, provides(detector_named("base"))),
    )
    expected = (
        "xadt: plugin 'foo' from distribution 'xadt-foo' 1.2 failed to load: "
        "ModuleNotFoundError: No module named 'tf'"
    )
    with pytest.warns(XadtPluginWarning) as caught:
        registry = load_registry()
    assert [str(w.message) for w in caught] == [expected]
    assert registry.problems == [expected]
    assert list(registry.detectors) == ["base"]


def test_a_taken_plugin_name_is_refused_in_favour_of_the_builtin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_entry_points(
        monkeypatch,
        FakeEntryPoint("base", FakeDist("xadt-evil", "0.1"), provides(detector_named("evil"))),
        FakeEntryPoint("base", BUILTIN, provides(detector_named("base"))),
    )
    with pytest.warns(XadtPluginWarning, match=r"'xadt-evil' 0\.1 failed to load: its name is "):
        registry = load_registry()
    assert list(registry.detectors) == ["base"]


def test_a_misspelt_hook_is_reported_and_its_plugin_unregistered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    typo = plugin(xadt_detector=lambda: [detector_named("typo")])
    fake_entry_points(monkeypatch, FakeEntryPoint("typo", FakeDist("xadt-typo", "2"), typo))
    with pytest.warns(XadtPluginWarning) as caught:
        pm = plugin_manager()
    (message,) = [str(w.message) for w in caught]
    assert message.startswith(
        "xadt: plugin 'typo' from distribution 'xadt-typo' 2 failed to load: unknown hook "
        "'xadt_detector' (did you mean 'xadt_detectors'?)"
    )
    assert not pm.has_plugin("typo")
    assert load_registry(pm).problems == [message]


def test_a_misspelt_hook_on_a_hand_built_manager_is_reported_by_load_registry() -> None:
    pm = plugin_manager(autoload=False)
    pm.register(plugin(xadt_backbone=lambda: {}), name="hand")
    with pytest.warns(XadtPluginWarning, match="plugin 'hand' failed to load: unknown hook"):
        registry = load_registry(pm)
    assert registry.plugins == {}


def test_an_impl_with_arguments_the_spec_lacks_fails_to_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bad = plugin(xadt_detectors=lambda config: [])
    fake_entry_points(monkeypatch, FakeEntryPoint("args", FakeDist("xadt-args", "1"), bad))
    with pytest.warns(XadtPluginWarning, match="plugin 'args' .* failed to load: PluginValidation"):
        pm = plugin_manager()
    assert not pm.has_plugin("args")


def test_one_raising_hook_does_not_hide_the_others() -> None:
    pm = plugin_manager(autoload=False)
    pm.register(provides(detector_named("good")), name="good")
    pm.register(plugin(xadt_detectors=lambda: 1 / 0), name="bad")
    with pytest.warns(XadtPluginWarning) as caught:
        registry = load_registry(pm)
    assert [str(w.message) for w in caught] == [
        "xadt: plugin 'bad': xadt_detectors() raised ZeroDivisionError: division by zero; skipped"
    ]
    assert list(registry.detectors) == ["good"]
    assert registry.plugins["good"].source == "in-process"


def test_a_hook_whose_returned_generator_raises_is_one_warning() -> None:
    def detectors() -> Any:
        yield detector_named("half")
        msg = "lazy failure"
        raise RuntimeError(msg)

    pm = plugin_manager(autoload=False)
    pm.register(plugin(xadt_detectors=detectors), name="gen")
    with pytest.warns(XadtPluginWarning, match=r"xadt_detectors\(\) raised RuntimeError: lazy"):
        registry = load_registry(pm)
    assert registry.detectors == {}


def test_a_single_class_instead_of_a_list_is_accepted() -> None:
    pm = plugin_manager(autoload=False)
    cls = detector_named("solo")
    pm.register(plugin(xadt_detectors=lambda: cls), name="solo")
    assert load_registry(pm).get_detector("solo") is cls


@pytest.mark.parametrize(
    ("returned", "problem"),
    [
        (object, "is not a subclass of xadt.Detector"),
        (type("NoName", (BaselineDetector,), {"name": "Upper"}), "has no lower-case name"),
    ],
)
def test_an_invalid_detector_is_skipped_with_a_warning(returned: type, problem: str) -> None:
    pm = plugin_manager(autoload=False)
    pm.register(provides(returned, detector_named("fine")), name="mixed")
    with pytest.warns(
        XadtPluginWarning,
        match=f"plugin 'mixed': xadt_detectors\\(\\) returned an unusable detector: .*{problem}",
    ):
        registry = load_registry(pm)
    assert list(registry.detectors) == ["fine"]


def test_backbones_are_collected_and_bad_ones_skipped() -> None:
    def tiny(**options: Any) -> str:
        """A tiny backbone."""
        return "module"

    pm = plugin_manager(autoload=False)
    pm.register(plugin(xadt_backbones=lambda: {"tiny": tiny, "Bad": tiny, "x": 3}), name="bb")
    with pytest.warns(XadtPluginWarning) as caught:
        registry = load_registry(pm)
    assert len(caught) == 2
    assert registry.get_backbone("tiny") is tiny
    assert registry.backbones["tiny"].description == "A tiny backbone."
    assert registry.plugins["bb"].hooks == ("xadt_backbones",)


def test_a_name_claimed_twice_is_an_error_naming_both(monkeypatch: pytest.MonkeyPatch) -> None:
    ours = detector_named("gaussian")
    fake_entry_points(
        monkeypatch,
        FakeEntryPoint("gaussian", BUILTIN, provides(ours)),
        FakeEntryPoint("evil", FakeDist("xadt-evil", "0.1"), provides(detector_named("gaussian"))),
    )
    registry = load_registry()
    message = (
        "detector 'gaussian' is provided by both 'xadt' (built-in) and 'xadt-evil' 0.1; "
        "block one with XADT_BLOCK_PLUGINS=evil or XADT_BLOCK_PLUGINS=gaussian"
    )
    with pytest.raises(XadtError, match=f"^{re.escape(message)}$"):
        registry.get_detector("gaussian")
    assert "gaussian" not in registry.detectors
    assert registry.detector_names() == ["gaussian"]
    assert [e.plugin.name for e in registry.entries()] == ["gaussian", "evil"]

    monkeypatch.setenv("XADT_BLOCK_PLUGINS", "evil")
    assert load_registry().get_detector("gaussian") is ours


def test_unknown_detector_suggests_the_nearest_and_lists_the_installed() -> None:
    pm = plugin_manager(autoload=False)
    pm.register(provides(detector_named("gaussian"), detector_named("baseline")), name="p")
    registry = load_registry(pm)
    with pytest.raises(
        XadtError,
        match=r"^unknown plugin 'gausian'; did you mean 'gaussian'\? installed: baseline, gaus",
    ):
        registry.get_detector("gausian")
    with pytest.raises(XadtError, match=r"^unknown plugin 'zzz'; installed: baseline, gaussian$"):
        registry.get_detector("zzz")
    with pytest.raises(XadtError, match=r"^unknown backbone 'lite0'; installed: none$"):
        registry.get_backbone("lite0")


class _Abstract(xadt.Detector):
    name: ClassVar[str] = "abstract"
    Config: ClassVar[type] = BaselineDetector.Config


@dataclass
class _Required:
    ridge: float


@pytest.mark.parametrize(
    ("obj", "problem"),
    [
        (3, "3 is not a subclass of xadt.Detector"),
        (dict, "is not a subclass of xadt.Detector"),
        (type("A", (BaselineDetector,), {"name": ""}), "A has no lower-case name (got '')"),
        (type("B", (BaselineDetector,), {"name": "Bad Name"}), "B has no lower-case name"),
        (_Abstract, "_Abstract leaves abstract methods unimplemented: fit, from_state"),
        (type("C", (BaselineDetector,), {"Config": dict}), "C.Config is not a dataclass"),
        (
            type("D", (BaselineDetector,), {"Config": _Required}),
            "D.Config fields without a default: ridge",
        ),
    ],
)
def test_detector_class_problems_are_named(obj: Any, problem: str) -> None:
    found = detector_class_problem(obj)
    assert found is not None
    assert problem in found


def test_a_valid_detector_class_has_no_problem() -> None:
    assert detector_class_problem(BaselineDetector) is None
    assert all(
        f.default is not dataclasses.MISSING for f in dataclasses.fields(BaselineDetector.Config)
    )


def test_importing_xadt_loads_no_plugin_and_no_torch() -> None:
    code = (
        "import sys, xadt, xadt.host, xadt.testing; "
        "bad = sorted(m for m in sys.modules if m.startswith(('xadt.plugins.', 'torch'))); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
