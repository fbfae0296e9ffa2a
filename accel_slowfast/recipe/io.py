"""A recipe from ``[RECIPE.yaml] [--key=value ...]``, and back to YAML.

    from accel_slowfast.recipe.io import load_recipe
    recipe = load_recipe(["ucf101/slowfast_r50_4x16x1_256e.yaml", "--batch_size=4"])

The defaults are ``Recipe``'s, then the YAML file's keys (a path, or a shipped recipe by name),
then the command line's. A key unknown, of the wrong type or choice, fails in one
``RecipeError`` line worded the same from the file (prefixed with its path) or the command line,
with the closest key's name for a typo. transformers' ``HfArgumentParser`` over the recipe's
sections reads the command line: each key becomes ``--key`` in its section's ``--help`` group, a
``Literal`` key's choices argparse's.
"""

import argparse
import ast
import copy
import dataclasses
import difflib
import re
import sys
import typing
from pathlib import Path
from typing import Any, Literal, NoReturn

import yaml

from accel_slowfast.errors import RecipeError
from accel_slowfast.recipe.fields import check_value
from accel_slowfast.recipe.recipe import SECTIONS, Recipe

FIELDS = {f.name: f for f in dataclasses.fields(Recipe)}


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one ``RecipeError`` line (the commands print ``error: ...``, exit 2)."""

    def error(self, message: str) -> NoReturn:
        message = re.sub(r"(--\w+)/--[\w-]+", r"\1", message)  # HfArgumentParser's --key-with-hyphens alias
        wrong_type = re.fullmatch(r"argument --(\w+): invalid (\w+) value: (.*)", message)
        if wrong_type:  # worded as a recipe file's wrong type is
            key, kind, value = wrong_type.groups()
            message = f"recipe key '{key}' must be {kind}, got {value}"
        wrong_choice = re.fullmatch(r"argument --(\w+): invalid choice: (.*) \(choose from .*\)", message)
        if wrong_choice and wrong_choice[1] in FIELDS:  # worded as a recipe file's wrong choice is
            check_value(FIELDS[wrong_choice[1]], ast.literal_eval(wrong_choice[2]))  # (argparse quotes it with repr)
        raise RecipeError(message)  # argparse would print the whole usage first


def recipe_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """``[RECIPE.yaml] [--key=value ...]``: transformers' ``HfArgumentParser`` over the recipe's
    sections, every key as ``--key`` in its section's ``--help`` group, with one-line errors.

    transformers is imported here, when a command line is read, not with ``Recipe`` (0.6 s).
    """
    from transformers import HfArgumentParser

    class RecipeParser(OneLineParser, HfArgumentParser):
        def _add_dataclass_arguments(self, dtype: type) -> None:
            # HfArgumentParser's own takes the group's name from _argument_group_name, and each key's
            # help, metavar and choices from its metadata as is: written out here instead.
            group = self.add_argument_group(dtype.GROUP)
            hints = typing.get_type_hints(dtype)
            for f in dataclasses.fields(dtype):
                argument = copy.copy(f)  # HfArgumentParser passes the metadata to add_argument as is
                hint = hints[f.name]
                help = f.metadata["help"]
                if typing.get_origin(hint) is Literal:  # its choices once, not argparse's {a,b} after each alias
                    help, item = f"{help} One of {list(typing.get_args(hint))}.", type(f.default)
                else:
                    item = typing.get_args(hint)[0] if typing.get_origin(hint) is list else hint
                argument.type, argument.metadata = hint, {"help": help.replace("%", "%%")}
                if hint is not bool:  # (its --no_<key> twin takes no metavar)
                    argument.metadata["metavar"] = item.__name__.upper()
                self._parse_dataclass_field(group, argument)

    parser = RecipeParser(
        SECTIONS, prog=prog, usage="%(prog)s [RECIPE.yaml] [--key=value ...]", allow_abbrev=False,
        description="The defaults, then RECIPE.yaml's keys, then --key=value overrides. A list takes several "
                    "values (--lr_steps 90 130), a bool true or false (--compile alone: true).")
    parser.add_argument("recipe", nargs="?", metavar="RECIPE.yaml",
                        help="a YAML file of the keys that differ from the defaults; a shipped recipe is also "
                             f"found by name: {', '.join(packaged_recipes())}")
    return parser


def _unknown_key(key: str) -> str:
    close = difflib.get_close_matches(key, FIELDS, n=1)
    return f"unknown recipe key '{key}'" + (f"; did you mean '{close[0]}'?" if close else "; --help lists every key")


def packaged_recipes() -> list[str]:
    """The shipped recipes' names (``ucf101/slowfast_r50_4x16x1_256e.yaml``, ...)."""
    root = _recipes_dir()
    return sorted(str(p.relative_to(root)) for p in root.glob("*/*.yaml") if p.parent.name != "accelerate_configs")


def _recipes_dir() -> Path:
    # A wheel carries the recipes inside the package (setup.cfg maps recipes/ there); a checkout,
    # installed with -e or not, keeps them at its root.
    inside = Path(__file__).parents[1] / "recipes"
    return inside if inside.is_dir() else Path(__file__).parents[2] / "recipes"


def find_recipe(name: str) -> Path:
    """The recipe file ``name``: a path, else a shipped recipe (``ucf101/x.yaml`` or ``recipes/ucf101/x.yaml``)."""
    path = Path(name)
    if path.is_file():
        return path
    parts = path.parts[1:] if path.parts[:1] == ("recipes",) else path.parts
    if parts and _recipes_dir().joinpath(*parts).is_file():
        return _recipes_dir().joinpath(*parts)
    raise RecipeError(f"recipe file {name} does not exist, nor is it a shipped recipe "
                      f"({', '.join(packaged_recipes())})")


class _RecipeLoader(yaml.SafeLoader):
    """``yaml.safe_load``'s loader (plain values only: a ``!!python/...`` tag is an error, never a
    call) that refuses a key given twice, which YAML would let the last one win silently."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key}' is given twice (lines {seen[key]} and {key_node.start_mark.line + 1}); "
                    "keep one", key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def parse_yaml(path: Path) -> Any:
    """The YAML document of ``path`` as plain values; one ``RecipeError`` line for a file that is not
    text, not YAML, uses a tag, or gives a key twice (never a traceback, never the file's content)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise RecipeError(f"{path}: not a text file (byte {error.start} is not UTF-8); a recipe is a YAML text "
                          "file of 'key: value' lines") from None
    except OSError as error:
        raise RecipeError(f"{path}: cannot be read ({error.strerror})") from None
    try:
        return yaml.load(text, Loader=_RecipeLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        if isinstance(error, yaml.constructor.ConstructorError) and "tag" in problem:
            problem += " (a recipe holds plain values only: numbers, strings, bools, lists)"
        raise RecipeError(f"{path}: not a valid recipe ({where}{problem})") from None


def read_recipe_file(path: Path) -> dict[str, Any]:
    """The ``key: value`` mapping of a YAML recipe, each key known and each value within its key's rule."""
    values = parse_yaml(path) or {}
    if not isinstance(values, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of 'key: value' lines")
    for key, value in values.items():
        if key not in FIELDS:
            raise RecipeError(f"{path}: {_unknown_key(str(key))}")
        try:
            check_value(FIELDS[key], value)
        except RecipeError as error:
            raise RecipeError(f"{path}: {error}") from None
    return values


def load_recipe(argv: list[str] | None = None, prog: str | None = None) -> Recipe:
    """Parse ``[RECIPE.yaml] [--key=value ...]`` (``sys.argv[1:]`` by default) into a ``Recipe``.

    Args:
        argv: the command-line arguments.
        prog: the command's name in ``--help`` (default: the script's).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = recipe_parser(prog)
    if argv and not argv[0].startswith("-"):  # the recipe file's keys become the parser's defaults
        parser.set_defaults(**read_recipe_file(find_recipe(argv[0])))
    given, unknown = parser.parse_known_args(argv)
    if unknown:
        token = unknown[0]
        if not token.startswith("--"):
            raise RecipeError(f"unexpected argument {token!r}: give one recipe file, then --key=value overrides")
        raise RecipeError(f"{token}: {_unknown_key(token[2:].split('=', 1)[0])}")
    values = vars(given)
    values.pop("recipe")
    return Recipe(**values)


def recipe_diff(recipe: Recipe) -> str:
    """The keys whose values differ from the defaults, as YAML lines (what a recipe file of this run lists)."""
    defaults = Recipe().to_dict()
    changed = {key: value for key, value in recipe.to_dict().items() if value != defaults[key]}
    return yaml.safe_dump(changed, sort_keys=False).rstrip() if changed else "(none: the defaults)"


def save_recipe(recipe: Recipe, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False))
