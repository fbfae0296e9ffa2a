"""How a recipe key states its rule, the one check of a value against it, and the section that holds keys.

A key's type says what it holds: ``int``, ``float``, ``str``, ``bool``, ``list[X]``, or a
``Literal`` of its choices. ``recipe_field`` adds the default, the ``--help`` line and bounds on a
number (or on each number of a list); the section modules call it ``_f``::

    optimizer: Literal["sgd", "adamw"] = _f("adamw", "Optimizer (the seed uses sgd).")
    batch_size: int = _f(16, "Clips per device per iteration.", min=1)           # >= 1
    warmup_ratio: float = _f(0.1, "LR factor at the first ...", above=0, max=1)  # in (0, 1]

``check_value`` holds every key to its type, its choices, its bounds and finite floats, with
errors that read the same for every key, from a YAML file or the command line::

    recipe key 'optimizer' is 'sgdd'; choose one of ['sgd', 'adamw']
    recipe key 'batch_size' must be >= 1, got 0
    recipe key 'warmup_ratio' must be in (0, 1], got 1.5

A key belongs to one ``Section`` (``ModelArgs``, ``DataArgs``, ...), a dataclass whose ``GROUP``
names its ``--help`` group; building one checks each key, then the section's own ``validate``.
Checks between sections are ``Recipe.validate``'s (``recipe.py``).
"""

import dataclasses
import math
import operator
import typing
from typing import Any, ClassVar, Literal

from accel_slowfast.errors import RecipeError

# A bound's name: (the test a number passes, how an error states the bound alone, its bracket in an interval)
BOUNDS = {"min": (operator.ge, ">=", "["), "above": (operator.gt, ">", "("),
          "max": (operator.le, "<=", "]"), "below": (operator.lt, "<", ")")}


def recipe_field(default: Any, help: str, *, min: float | None = None, above: float | None = None,
                 max: float | None = None, below: float | None = None, hint: str = "") -> Any:
    """A recipe key's ``dataclasses.field``.

    Args:
        default: the value a recipe that does not list the key gets (a list is copied per recipe).
        help: its line in ``--help``.
        min: the smallest allowed number (``max``: the largest).
        above: the allowed numbers are greater than this (``below``: smaller than this).
        hint: ends the key's errors, where their generic wording is not enough to fix the value.
    """
    bounds = {name: limit for name, limit in dict(min=min, above=above, max=max, below=below).items()
              if limit is not None}  # the lower bound first, as an interval is written
    metadata = {"help": help, "bounds": bounds, "hint": hint}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def check_value(f: dataclasses.Field, value: Any) -> Any:
    """``value`` as the key ``f`` holds it: an int widened to float, a tuple made a list.

    Raises:
        RecipeError: naming the key: a wrong type or choice, a non-finite number, or one out of
            the key's bounds; the key's hint, if it has one, ends the line.
    """
    value = _widened(value, f.type)
    problem = _type_problem(value, f.type) or _bounds_problem(value, f.metadata["bounds"])
    if problem:
        hint = f.metadata["hint"]
        raise RecipeError(f"recipe key '{f.name}' {problem}" + (f"; {hint}" if hint else ""))
    return value


class Section:
    """A recipe section: a dataclass of keys (each a ``recipe_field``), checked when built.

    ``Recipe`` inherits every section, so a run's keys stay flat (``recipe.lr``); a builder takes
    the one section it reads (``recipe.model_args``), a copy holding that section's keys only.
    """

    GROUP: ClassVar[str]  # its --help group

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, check_value(f, getattr(self, f.name)))
        self.validate()

    def validate(self) -> None:
        """The checks between this section's keys (none by default); raise ``RecipeError`` naming them."""


def _widened(value: Any, hint: Any) -> Any:
    if typing.get_origin(hint) is list and isinstance(value, list | tuple):
        return [_widened(item, typing.get_args(hint)[0]) for item in value]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)  # YAML and Python write 2 for 2.0
    return value


def _type_problem(value: Any, hint: Any) -> str:
    """What makes ``value`` not a ``hint`` (``list[X]``, a ``Literal`` or a class), or ""."""
    if typing.get_origin(hint) is list:
        (item_type,) = typing.get_args(hint)
        if not isinstance(value, list):
            return f"must be a list of {item_type.__name__}, got {value!r}"
        return next((problem for item in value if (problem := _type_problem(item, item_type))), "")
    note = ""  # the YAML spellings that give a value of another type than meant
    if isinstance(value, str) and hint is float:
        note = "YAML reads numbers like 1e-4 as strings: write 1.0e-4."
    elif isinstance(value, bool) and (hint is str or str in map(type, typing.get_args(hint))):
        note = "YAML reads a bare no, yes, off or on as a bool: quote it."
    if typing.get_origin(hint) is Literal:
        choices = typing.get_args(hint)
        if any(type(value) is type(choice) and value == choice for choice in choices):  # True is not the choice 1
            return ""
        return f"is {value!r}; choose one of {list(choices)}" + (f". {note}" if note else "")
    if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return ""
    return f"must be {hint.__name__}, got {value!r} ({type(value).__name__})." + (f" {note}" if note else "")


def _bounds_problem(value: Any, bounds: dict[str, float]) -> str:
    """What makes a number of ``value`` (or of its items) non-finite or out of ``bounds``, or ""."""
    for number in value if isinstance(value, list) else [value]:
        if isinstance(number, float) and not math.isfinite(number):
            return f"must be a finite number, got {number}"
        if all(BOUNDS[name][0](number, limit) for name, limit in bounds.items()):
            continue
        if len(bounds) == 1:
            ((name, limit),) = bounds.items()
            return f"must be {BOUNDS[name][1]} {limit}, got {number}"
        (low, low_limit), (high, high_limit) = bounds.items()
        return f"must be in {BOUNDS[low][2]}{low_limit}, {high_limit}{BOUNDS[high][2]}, got {number}"
    return ""
