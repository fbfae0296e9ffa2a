"""Import shims that let pytorchvideo 0.1.5 run on today's torchvision.

pytorchvideo 0.1.5 (its last release) imports ``torchvision.transforms.functional_tensor``,
which torchvision 0.17 renamed to ``_functional_tensor``. Importing this module first
registers the old name as an alias, so ``import pytorchvideo.transforms`` works again.
The modules that import pytorchvideo (``models.py``, ``data/transforms.py``) import it first;
the package itself does not, so that reading a recipe imports no torch.
"""

import importlib
import sys
import warnings

_OLD_NAME = "torchvision.transforms.functional_tensor"

if _OLD_NAME not in sys.modules:
    try:
        importlib.import_module(_OLD_NAME)
    except ModuleNotFoundError:
        sys.modules[_OLD_NAME] = importlib.import_module("torchvision.transforms._functional_tensor")

# pytorchvideo decorates a few functions with torch.jit.script at import time, which torch
# now flags as deprecated on every import; the message is about pytorchvideo, not the user.
warnings.filterwarnings("ignore", message=r"`torch\.jit\.script", category=FutureWarning)
