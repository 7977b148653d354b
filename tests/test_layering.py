"""The layering the README's layout table states, checked on the source: no package imports a higher one.

``sandbox`` and ``prompts`` import nothing of ours; ``datasets_build``, ``rewards`` and ``pipeline`` import only
those two (rewards take the rollout's record as plain data); the scripts (``train.py``, ``evaluate.py``,
``scripts/``) wire everything. Every import counts, also those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sandbox", "prompts", "datasets_build", "rewards", "pipeline")
ALLOWED = {
    "sandbox": set(),
    "prompts": set(),
    "datasets_build": {"sandbox", "prompts"},
    "rewards": {"sandbox", "prompts"},
    "pipeline": {"sandbox", "prompts"},
}
SCRIPTS = {"train"}  # evaluate.py is never imported as `evaluate`: that name is Hugging Face's library
# pipeline's sub-packages by level (pipeline/__init__.py): each imports only lower or equal levels
PIPELINE_LEVELS = {"models": 0, "engines": 1, "chain": 2, "evaluation": 3, "training": 4, "warmstart": 5,
                   "bootstrap": 5, "tools": 6}


def imported_modules(path: Path) -> set[str]:
    """The dotted names ``path`` imports (absolute imports; relative ones stay inside its package)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def imported_roots(path: Path) -> set[str]:
    return {name.split(".")[0] for name in imported_modules(path)}


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_imports_only_the_layers_below_it(package: str) -> None:
    ours = set(PACKAGES) | SCRIPTS
    wrong = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = (imported_roots(path) & ours) - ALLOWED[package] - {package}
        if bad:
            wrong[str(path.relative_to(ROOT))] = sorted(bad)
    assert wrong == {}, f"imports above {package}'s layer: {wrong}"


def test_pipeline_levels_import_only_lower_levels() -> None:
    assert {p.name for p in (ROOT / "pipeline").iterdir() if (p / "__init__.py").is_file()} == set(PIPELINE_LEVELS)
    wrong = {}
    for package, level in PIPELINE_LEVELS.items():
        for path in sorted((ROOT / "pipeline" / package).rglob("*.py")):
            above = {name for name in imported_modules(path) if name.startswith("pipeline.")
                     and PIPELINE_LEVELS.get(name.split(".")[1], -1) > level}
            if above:
                wrong[str(path.relative_to(ROOT))] = sorted(above)
    assert wrong == {}, f"imports of higher pipeline levels: {wrong}"


def test_the_checker_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import os\n\ndef f():\n    import train\n    from pipeline.models import ModelConfig\n"
                      "    from . import sibling\n")
    assert imported_roots(module) == {"os", "train", "pipeline"}


def test_the_readme_layout_table_names_every_package_and_its_rule() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Layout"):]
    for package in PACKAGES:
        assert f"`{package}/`" in table, package
    assert table.count("nothing of ours") >= 2  # sandbox and prompts
