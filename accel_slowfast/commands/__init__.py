"""The ``accel-slowfast`` command (``cli.py``) and one module per subcommand."""
