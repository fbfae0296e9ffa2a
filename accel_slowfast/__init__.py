"""accel_slowfast: SlowFast action recognition trained the mmaction2 way on pytorchvideo + Accelerate.

    from accel_slowfast import Recipe, train
    runner = train(Recipe(max_epochs=2))          # the synthetic default

The names below are imported on first use: ``import accel_slowfast`` (and with it every command's
``--help``) imports no torch.
"""

__all__ = ["Recipe", "Runner", "build_model", "load_recipe", "train"]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "Recipe":
        from accel_slowfast.recipe.recipe import Recipe
        return Recipe
    if name == "load_recipe":
        from accel_slowfast.recipe.io import load_recipe
        return load_recipe
    if name == "build_model":
        from accel_slowfast.models.builders import build_model
        return build_model
    if name == "Runner":
        from accel_slowfast.engine.runner import Runner
        return Runner
    if name == "train":
        from accel_slowfast.engine.training import train
        return train
    raise AttributeError(f"module 'accel_slowfast' has no attribute {name!r}")
