"""``python -m accel_slowfast COMMAND ...``: the ``accel-slowfast`` command without its script.

    python -m accel_slowfast --help
"""

from accel_slowfast.commands.cli import main

main()
