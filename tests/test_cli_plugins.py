"""``xadt plugins``: the table, the JSON, the glob filter, and problems shown under the table."""

from __future__ import annotations

import json
from importlib.metadata import distribution

import pytest
from typer.testing import CliRunner

import xadt
from tests.test_host import (
    BUILTIN,
    FakeDist,
    FakeEntryPoint,
    detector_named,
    fake_entry_points,
    plugin,
    provides,
)
from xadt.cli.app import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XADT_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("XADT_BLOCK_PLUGINS", raising=False)
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def third_party(monkeypatch: pytest.MonkeyPatch) -> None:
    """A built-in, a healthy third party, a broken one and a clash over 'gaussian'."""
    fake_entry_points(
        monkeypatch,
        FakeEntryPoint("gaussian", BUILTIN, provides(detector_named("gaussian"))),
        FakeEntryPoint("gan", FakeDist("xadt-gan", "0.3"), provides(detector_named("ganomaly"))),
        FakeEntryPoint("evil", FakeDist("xadt-evil", "0.1"), provides(detector_named("gaussian"))),
        FakeEntryPoint("broken", FakeDist("xadt-broken", "9"), ImportError("no tensorflow")),
        FakeEntryPoint(
            "bb", FakeDist("xadt-bb", "1.0"), plugin(xadt_backbones=lambda: {"lite": len})
        ),
    )


def test_lists_the_builtin_baseline() -> None:
    result = runner.invoke(app, ["plugins"])
    assert result.exit_code == 0, result.output
    assert "baseline" in result.stdout
    assert "detector" in result.stdout
    assert "built-in" in result.stdout
    assert xadt.__version__ in result.stdout
    assert "Traceback" not in result.output


def test_json_is_machine_readable() -> None:
    result = runner.invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    (entry,) = [e for e in data["entries"] if e["name"] == "baseline"]
    assert entry["kind"] == "detector"
    assert entry["source"] == "built-in"
    assert entry["version"] == xadt.__version__
    assert entry["clash"] is False
    (record,) = [p for p in data["plugins"] if p["name"] == "baseline"]
    assert record["hooks"] == ["xadt_detectors"]
    assert record["distribution"] == "xadt"


def test_third_parties_clashes_and_failures(third_party: None) -> None:
    result = runner.invoke(app, ["plugins"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for phrase in ("ganomaly", "xadt-gan", "0.3", "lite", "backbone", "(clash)"):
        assert phrase in out
    assert (
        "clash: detector 'gaussian' is provided by both 'xadt' (built-in) and 'xadt-evil' 0.1"
        in out
    )
    assert (
        "warning: xadt: plugin 'broken' from distribution 'xadt-broken' 9 failed to load: "
        "ImportError: no tensorflow" in out
    )
    assert "Traceback" not in result.output


def test_json_carries_clashes_and_problems(third_party: None) -> None:
    data = json.loads(runner.invoke(app, ["plugins", "--json"]).stdout)
    assert [c["plugins"] for c in data["clashes"]] == [["gaussian", "evil"]]
    assert len(data["problems"]) == 1
    assert "'broken'" in data["problems"][0]
    assert {(e["name"], e["plugin"]) for e in data["entries"] if e["clash"]} == {
        ("gaussian", "gaussian"),
        ("gaussian", "evil"),
    }


def test_a_glob_filters_names(third_party: None) -> None:
    data = json.loads(runner.invoke(app, ["plugins", "gan*", "--json"]).stdout)
    assert [e["name"] for e in data["entries"]] == ["ganomaly"]
    result = runner.invoke(app, ["plugins", "nothing*"])
    assert result.exit_code == 0
    assert "no detector or backbone matches 'nothing*'" in result.stdout


def test_blocked_plugins_are_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    builtins = sorted(ep.name for ep in distribution("xadt").entry_points if ep.group == "xadt")
    monkeypatch.setenv("XADT_BLOCK_PLUGINS", ",".join(builtins))
    result = runner.invoke(app, ["plugins"])
    assert result.exit_code == 0
    assert "no detectors or backbones installed" in result.stdout
    assert f"blocked by XADT_BLOCK_PLUGINS: {', '.join(builtins)}" in result.stdout


def test_a_detector_name_lists_its_options_help_and_presets() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["plugins", "gaussian"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for phrase in ("max_stride", "largest step between", "ridge"):
        assert phrase in result.stdout
    assert "preset griffin2019_resnet152: backbone='resnet152'" in result.stdout
    assert "batch_size" in result.stdout
    document = json.loads(runner.invoke(app, ["plugins", "gaussian", "--json"]).stdout)
    options = {o["name"]: o for o in document["options"]}
    assert options["batch_size"]["runtime"] is True
    assert options["ridge"]["runtime"] is False
    assert options["mode"]["type"] == "one of 'appearance', 'semantic', 'combined'"
    assert "griffin2019" in document["presets"]


@pytest.mark.parametrize("name", ["", *sorted(c.name or "" for c in app.registered_commands)])
def test_help_shows_flags_as_flags(name: str) -> None:
    # An on/off flag takes no value, so --help must not give it a type such as <bool>; "" is
    # the top-level help with --version.
    result = runner.invoke(app, [name, "--help"] if name else ["--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "--help" in result.output
    assert "<bool>" not in result.output
