"""accel_slowfast: SlowFast action recognition trained the mmaction2 way on pytorchvideo + Accelerate."""

from accel_slowfast import compat  # noqa: F401  (first: makes pytorchvideo.transforms importable)
from accel_slowfast.config import Recipe, load_recipe
from accel_slowfast.models import build_model
from accel_slowfast.runner import Runner
from accel_slowfast.training import train

__all__ = ["Recipe", "Runner", "build_model", "load_recipe", "train"]
__version__ = "0.1.0"
