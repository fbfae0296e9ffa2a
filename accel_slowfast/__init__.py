"""accel_slowfast: SlowFast action recognition trained the mmaction2 way on pytorchvideo + Accelerate.

    from accel_slowfast import Recipe, train
    runner = train(Recipe(max_epochs=2))          # the synthetic default

The names below are imported on first use: ``import accel_slowfast`` (and with it every command's
``--help``) imports no torch, and ``python -m accel_slowfast.<module>`` finds its module not yet
imported, as runpy needs.
"""

import importlib

_EXPORTS = {"Recipe": "config", "load_recipe": "recipe_io", "build_model": "models", "Runner": "runner",
            "train": "training"}

__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'accel_slowfast' has no attribute {name!r}")
    return getattr(importlib.import_module(f"accel_slowfast.{_EXPORTS[name]}"), name)

