"""Errors a user can fix. Each is printed as one line (``error: ...``), never as a traceback,
and the command exits with status 2 before any work where it can be found that early.

- ``RecipeError``: a recipe key has a wrong value or an impossible combination.
- ``DataError``: an annotation/list file, a class folder or a video set is unusable.
- ``CheckpointError``: a checkpoint is missing, damaged, or does not fit the recipe.
"""


class UserError(Exception):
    """Bad input; the message names the key, file or folder and what to do."""


class RecipeError(UserError, ValueError):
    """A recipe key has a wrong value; the message names the key and the fix."""


class DataError(UserError, ValueError):
    """A data file or folder cannot be used as given; the message names it (``file:line`` where it can)."""


class CheckpointError(UserError):
    """A checkpoint cannot be used: missing, damaged, or made by an incompatible recipe."""
