"""setup.cfg: what pip installs (lower bounds only, every import declared) and what the wheel carries."""

import ast
import configparser
import importlib.metadata
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]
PINNED = {"pytorchvideo": "==0.1.5"}  # its only release


def _options() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    return config


def _requirements(text: str) -> dict[str, str]:
    """``{normalized name: version specifier}`` of a setup.cfg requirement list."""
    pairs = (re.match(r"([A-Za-z0-9_.-]+)\s*(.*)", line.strip()).groups() for line in text.splitlines() if line.strip())
    return {re.sub(r"[-_.]+", "-", name).lower(): spec for name, spec in pairs}


def _declared() -> dict[str, str]:
    return _requirements(_options()["options"]["install_requires"])


def _imported_modules() -> set[str]:
    """Top-level names of every module the package imports (at the top or inside a function)."""
    names = set()
    for path in (REPO / "accel_slowfast").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"accel_slowfast"}


def test_requirements_have_lower_bounds_only():
    config = _options()
    lists = {"install_requires": config["options"]["install_requires"], **config["options.extras_require"]}
    for where, text in lists.items():
        for name, spec in _requirements(text).items():
            if name in PINNED:
                assert spec == PINNED[name], f"{where}: {name}{spec}"
            else:
                assert spec.startswith(">=") and "," not in spec, f"{where}: {name}{spec} (lower bounds only)"
    stack = {"torch", "torchvision", "accelerate", "transformers", "datasets", "wandb", "huggingface-hub"}
    assert stack <= set(_declared())


OPTIONAL_EXTRAS = ("torchcodec", "onnx")  # extras whose packages the package imports where it uses them


def test_every_third_party_import_is_declared():
    distributions = importlib.metadata.packages_distributions()
    extras = _options()["options.extras_require"]
    declared = {**_declared(), **{name: spec for extra in OPTIONAL_EXTRAS for name, spec in
                                  _requirements(extras[extra]).items()}}
    for module in sorted(_imported_modules()):
        names = {re.sub(r"[-_.]+", "-", d).lower() for d in distributions.get(module, [module])}
        assert names & set(declared), f"accel_slowfast imports {module} ({names}), which setup.cfg does not declare"


def test_the_notebook_extra_gives_widget_progress_bars():
    extras = _options()["options.extras_require"]
    for extra in ("notebooks", "dev"):
        assert "ipywidgets" in _requirements(extras[extra]), extra


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """The wheel of a copy of the checkout's tracked and new files (the build writes build/ beside them)."""
    tree = tmp_path_factory.mktemp("tree")
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.splitlines()
    for name in files:
        if (REPO / name).is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            (tree / name).write_bytes((REPO / name).read_bytes())
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(tree)], check=True, capture_output=True, timeout=300)
    (path,) = dist.glob("accel_slowfast-*.whl")
    return zipfile.ZipFile(path)


def test_the_wheel_has_the_command_and_the_recipes(wheel):
    names = set(wheel.namelist())
    recipes = {str(p.relative_to(REPO)) for p in REPO.glob("recipes/*/*.yaml") if p.parent.name != "accelerate_configs"}
    assert recipes and {f"accel_slowfast/{name}" for name in recipes} <= names
    assert not any("accelerate_configs" in name for name in names)  # launcher configs, not recipes
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "accel-slowfast = accel_slowfast.commands.cli:main" in wheel.read(entry_points).decode()
    metadata = wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "Requires-Dist: torch>=2.14" in metadata and "Classifier: Programming Language :: Python :: 3.11" in metadata


def test_the_dev_and_notebook_extras_run_the_notebooks_as_the_readme_says():
    """``pip install -e ".[dev]"`` then ``jupyter nbconvert --execute notebooks/...`` needs nbconvert."""
    extras = _options()["options.extras_require"]
    for extra in ("dev", "notebooks"):
        assert "nbconvert" in _requirements(extras[extra]), extra
