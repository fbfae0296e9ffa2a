"""The recipe: every setting with its default and rule (``recipe.py``, ``fields.py``, ``source.py``),
read from YAML and ``--key=value`` and written back (``io.py``). Imports no torch."""
