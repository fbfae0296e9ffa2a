"""Import shims that let pytorchvideo 0.1.5 run on today's torchvision.

pytorchvideo 0.1.5 (its last release) imports ``torchvision.transforms.functional_tensor``,
which torchvision 0.17 renamed to ``_functional_tensor``. Importing this module first
registers the old name as an alias, so ``import pytorchvideo.transforms`` works again.
The modules that import pytorchvideo (``models/``, ``data/transforms.py``) import it first;
the package itself does not, so that reading a recipe imports no torch.
"""

import sys
import warnings

try:
    import torchvision.transforms.functional_tensor  # noqa: F401  (a torchvision that still has it)
except ModuleNotFoundError:
    from torchvision.transforms import _functional_tensor

    sys.modules["torchvision.transforms.functional_tensor"] = _functional_tensor

# pytorchvideo decorates a few functions with torch.jit.script at import time, which torch
# now flags as deprecated on every import; the message is about pytorchvideo, not the user.
warnings.filterwarnings("ignore", message=r"`torch\.jit\.script", category=FutureWarning)
