"""The recipe: every setting with its default and rule, one dataclass per section (``data.py``,
``optimization.py``, ``run.py``; ``fields.py`` for the rules), joined flat by ``Recipe``
(``recipe.py``), read from YAML and ``--key=value`` and written back (``io.py``). Imports no torch."""
