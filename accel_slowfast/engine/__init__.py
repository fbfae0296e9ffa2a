"""The training engine: the runner and its loop, the hooks, the accelerator and the wiring from a
recipe to a finished run (``training.py``)."""
