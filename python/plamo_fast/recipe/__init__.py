"""Recipes: the post-training steps of the package as one resumable run
(``plamo-fast recipe run|plan|status|show``); see :mod:`plamo_fast.recipe.spec` for the file
format and :mod:`plamo_fast.recipe.runner` for what is recorded and when a step reruns."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from plamo_fast.errors import UsageError


def shipped() -> dict[str, Path]:
    """The recipes shipped with the package (``python/plamo_fast/recipes/*.yaml``) by name."""
    folder = Path(str(resources.files("plamo_fast") / "recipes"))
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def find_recipe(name_or_path: str | Path) -> Path:
    """A recipe file: a path, or the name of a shipped recipe (``tiny-cpu``)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    recipes = shipped()
    if str(name_or_path) in recipes:
        return recipes[str(name_or_path)]
    raise UsageError(
        f"no recipe file {name_or_path} (shipped recipes: {', '.join(recipes) or 'none'})"
    )
