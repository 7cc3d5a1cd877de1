"""Third-party plugins found the real way: distributions with a dist-info on ``sys.path``, so that
``importlib.metadata`` discovers them exactly as it would after ``pip install``."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xadt.cli.app import app
from xadt.errors import XadtError
from xadt.host import XadtPluginWarning, load_registry
from xadt.plugins.baseline import BaselineDetector
from xadt.testing import check_detector, normal_scans
from xadt.training_data import TrainingData

EXAMPLE = Path(__file__).parents[1] / "docs" / "plugins" / "xadt-example"

BRIGHTNESS = """
from dataclasses import dataclass

import numpy as np

import xadt
from xadt.config import option
from xadt.detector import DetectorState, ScanResult


@dataclass
class Config:
    scale: float = option(1.0, help="multiplies the score", check=(lambda v: v > 0, "a float > 0"))


def brightness(scan):
    return float(np.mean([view.mean() / np.iinfo(view.dtype).max for view in scan.views]))


class Brightness(xadt.Detector):
    '''Squared z-score of a scan's mean brightness.'''

    name = "brightness"
    Config = Config

    def __init__(self, config=None, **overrides):
        super().__init__(config, **overrides)
        self.moments_ = None

    @property
    def is_fitted(self):
        return self.moments_ is not None

    def fit(self, data, context=None):
        self.validate()
        n = total = squares = 0.0
        for scan in data:
            b = brightness(scan)
            n, total, squares = n + 1, total + b, squares + b * b
        mean = total / n
        self.moments_ = np.array([mean, squares / n - mean * mean + 1e-9])
        return self

    def score(self, scans, context=None):
        self.check_fitted()
        mean, var = self.moments_
        return [
            ScanResult(s.id, self.config.scale * (brightness(s) - mean) ** 2 / var) for s in scans
        ]

    def state(self):
        return DetectorState({"moments": self.moments_})

    @classmethod
    def from_state(cls, config, state):
        detector = cls(config)
        detector.moments_ = state.tensors["moments"]
        return detector


@xadt.hookimpl
def xadt_detectors():
    return [Brightness]
"""


class Site:
    """A directory on ``sys.path`` into which tests drop distributions (module + dist-info)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.modules: list[str] = []

    def add(self, dist: str, version: str, entry_points: dict[str, str], **modules: str) -> None:
        """Install distribution ``dist`` with the given ``xadt`` entry points and module sources."""
        for module, source in modules.items():
            (self.root / f"{module}.py").write_text(textwrap.dedent(source))
            self.modules.append(module)
        write_dist_info(self.root, dist, version, entry_points)
        importlib.invalidate_caches()


def write_dist_info(root: Path, dist: str, version: str, entry_points: dict[str, str]) -> None:
    """The minimal ``<name>-<version>.dist-info`` that ``importlib.metadata`` reads."""
    info = root / f"{re.sub(r'[-_.]+', '_', dist)}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[xadt]\n{lines}")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    monkeypatch.delenv("XADT_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("XADT_BLOCK_PLUGINS", raising=False)
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(root)
    found = Site(root)
    yield found
    for module in found.modules:
        sys.modules.pop(module, None)


def test_a_third_party_distribution_is_discovered_listed_and_usable(site: Site) -> None:
    site.add("xadt-bright", "0.1", {"bright": "xadt_bright"}, xadt_bright=BRIGHTNESS)
    registry = load_registry()
    record = registry.plugins["bright"]
    assert (record.distribution, record.version, record.source) == (
        "xadt-bright",
        "0.1",
        "xadt-bright",
    )
    assert record.hooks == ("xadt_detectors",)
    assert set(registry.detectors) >= {"baseline", "brightness"}

    cls = registry.get_detector("brightness")
    results = (
        cls(scale=2.0)
        .fit(TrainingData.from_scans(iter(normal_scans(5, seed=1))))
        .score(normal_scans(2, seed=2))
    )
    assert [r.scan_id for r in results] == ["normal-00", "normal-01"]
    check_detector(cls)

    listed = json.loads(CliRunner().invoke(app, ["plugins", "--json"]).stdout)
    (entry,) = [e for e in listed["entries"] if e["name"] == "brightness"]
    assert (entry["source"], entry["version"]) == ("xadt-bright", "0.1")
    assert entry["description"] == "Squared z-score of a scan's mean brightness."


def test_disabling_autoload_hides_third_parties_but_not_builtins(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.add("xadt-bright2", "0.1", {"bright2": "xadt_bright2"}, xadt_bright2=BRIGHTNESS)
    monkeypatch.setenv("XADT_DISABLE_PLUGIN_AUTOLOAD", "1")
    registry = load_registry()
    assert "bright2" not in registry.plugins
    assert "xadt_bright2" not in sys.modules
    assert registry.get_detector("baseline") is BaselineDetector


BROKEN = {
    "import": (
        "import tensorflow_is_not_installed_here\n",
        "failed to load: ModuleNotFoundError: No module named 'tensorflow_is_not_installed_here'",
    ),
    "hook": (
        "import xadt\n\n@xadt.hookimpl\ndef xadt_detectors():\n    raise RuntimeError('boom')\n",
        "xadt_detectors() raised RuntimeError: boom; skipped",
    ),
    "typo": (
        "import xadt\n\n@xadt.hookimpl\ndef xadt_detector():\n    return []\n",
        "failed to load: unknown hook 'xadt_detector' (did you mean 'xadt_detectors'?)",
    ),
    "type": (
        "import xadt\n\n@xadt.hookimpl\ndef xadt_detectors():\n    return [dict]\n",
        "returned an unusable detector: <class 'dict'> is not a subclass of xadt.Detector",
    ),
}


@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_plugin_is_one_warning_naming_it_and_the_builtins_survive(
    site: Site, case: str
) -> None:
    source, phrase = BROKEN[case]
    site.add(
        f"xadt-broken-{case}",
        "0.1",
        {f"broken_{case}": f"broken_{case}"},
        **{f"broken_{case}": source},
    )
    with pytest.warns(XadtPluginWarning) as caught:
        registry = load_registry()
    about = [
        str(w.message)
        for w in caught
        if issubclass(w.category, XadtPluginWarning) and f"'broken_{case}'" in str(w.message)
    ]
    assert len(about) == 1, about
    assert about[0].startswith(
        f"xadt: plugin 'broken_{case}' from distribution 'xadt-broken-{case}' 0.1"
    )
    assert phrase in about[0]
    assert registry.get_detector("baseline") is BaselineDetector
    # A plugin that imports with valid hooks stays registered; only its bad output is dropped.
    assert (f"broken_{case}" in registry.plugins) == (case in ("hook", "type"))


def test_a_detector_name_claimed_by_two_distributions_is_refused(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    impostor = """
        import xadt
        from xadt.plugins.baseline import BaselineDetector

        class Impostor(BaselineDetector):
            '''Not the real baseline.'''

        @xadt.hookimpl
        def xadt_detectors():
            return [Impostor]
    """
    site.add("xadt-evil", "0.1", {"evil": "xadt_evil"}, xadt_evil=impostor)
    message = (
        "detector 'baseline' is provided by both 'xadt' (built-in) and 'xadt-evil' 0.1; "
        "block one with XADT_BLOCK_PLUGINS=evil or XADT_BLOCK_PLUGINS=baseline"
    )
    with pytest.raises(XadtError, match=re.escape(message)):
        load_registry().get_detector("baseline")
    result = CliRunner().invoke(app, ["plugins"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert f"clash: {message}" in result.stdout

    monkeypatch.setenv("XADT_BLOCK_PLUGINS", "evil")
    assert load_registry().get_detector("baseline") is BaselineDetector


def test_the_docs_example_plugin_passes_the_contract(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The example's own source directory plus the dist-info pip would write for it: what
    # `pip install -e docs/plugins/xadt-example` amounts to, without running pip.
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    write_dist_info(site.root, project["name"], project["version"], project["entry-points"]["xadt"])
    monkeypatch.syspath_prepend(EXAMPLE)
    site.modules.append("xadt_example")

    registry = load_registry()
    record = registry.plugins["example"]
    assert (record.distribution, record.version) == ("xadt-example", project["version"])
    check_detector(registry.get_detector("example"))


@pytest.mark.skipif(importlib.util.find_spec("setuptools") is None, reason="needs setuptools")
def test_the_docs_example_installs_with_pip_and_is_listed(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = tmp_path / "xadt-example", tmp_path / "target"
    shutil.copytree(EXAMPLE, source)  # setuptools writes build/ beside the sources
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run([*pip, "--target", str(target), str(source)], check=True, capture_output=True)

    env = {k: v for k, v in os.environ.items() if not k.startswith("XADT_")}
    env["PYTHONPATH"] = str(target)
    listed = subprocess.run(
        [sys.executable, "-c", "from xadt.cli.app import main; main()", "plugins", "--json"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    (entry,) = [e for e in json.loads(listed.stdout)["entries"] if e["name"] == "example"]
    assert (entry["source"], entry["kind"]) == ("xadt-example", "detector")

    monkeypatch.syspath_prepend(target)
    site.modules.append("xadt_example")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_detector(load_registry().get_detector("example"))
