"""mmaction2's SlowFast parameter names and ours (pytorchvideo's): the mapping ``load_from`` and
``accel-slowfast convert`` use.

Key mapping (``p`` = 0 for ``slow_path``, 1 for ``fast_path``; ``L`` = 1..4; ``b`` = block;
``conv/bn`` -> ``conv/norm``; ``conv1/2/3`` -> ``conv_a/b/c``)::

    backbone.{slow,fast}_path.conv1.{conv,bn}          -> blocks.0.multipathway_blocks.p.{conv,norm}
    backbone.*_path.layerL.b.conv{1,2,3}.{conv,bn}     -> blocks.L.multipathway_blocks.p.res_blocks.b.branch2.
                                                          {conv,norm}_{a,b,c}
    backbone.*_path.layerL.0.downsample.{conv,bn}      -> blocks.L.multipathway_blocks.p.res_blocks.0.
                                                          branch1_{conv,norm}
    backbone.slow_path.conv1_lateral.conv              -> blocks.0.multipathway_fusion.conv_fast_to_slow
    backbone.slow_path.layerL_lateral.conv (L = 1..3)  -> blocks.L.multipathway_fusion.conv_fast_to_slow
    cls_head.fc_cls.{weight,bias}                      -> blocks.6.proj.{weight,bias}

mmaction2's head concatenates the pooled features as ``[fast, slow]``, ours as ``[slow, fast]``, so
the FC weight's input columns are rotated: ``[W[:, F:], W[:, :F]]`` with ``F`` the fast pathway's
output width, read from the checkpoint (256 for R50 with beta_inv 8; 2048 + 256 = 2304 inputs).
Lateral BatchNorms (mmaction2's ``lateral_norm=True``) map to ``multipathway_fusion.norm``.
"""

import re

import torch

MMACTION2_BACKBONE_PREFIXES = ("backbone.slow_path.", "backbone.fast_path.")
_PATHWAY = re.compile(r"backbone\.(slow|fast)_path\.(.+)")
_STEM = re.compile(r"conv1\.(conv|bn)\.(\w+)")
_RES = re.compile(r"layer(\d)\.(\d+)\.(conv[123]|downsample)\.(conv|bn)\.(\w+)")
_LATERAL = re.compile(r"(conv1|layer(\d))_lateral\.(conv|bn)\.(\w+)")


def is_mmaction2_state_dict(state: dict[str, torch.Tensor]) -> bool:
    """True if ``state`` has mmaction2 SlowFast backbone keys (``backbone.slow_path...``)."""
    return any(key.startswith(MMACTION2_BACKBONE_PREFIXES) for key in state)


def is_other_mmaction2_state_dict(state: dict[str, torch.Tensor]) -> bool:
    """True if ``state`` is an mmaction2 recognizer of another backbone (``backbone.*`` or ``cls_head.*``
    keys, no SlowFast pathways), such as its X3D: those have no mapping here."""
    return not is_mmaction2_state_dict(state) and any(key.startswith(("backbone.", "cls_head.")) for key in state)


def _rename(key: str) -> str | None:
    """Our name for mmaction2 parameter ``key``, or None if it has no counterpart."""
    if key in ("cls_head.fc_cls.weight", "cls_head.fc_cls.bias"):
        return "blocks.6.proj." + key.rsplit(".", 1)[1]
    match = _PATHWAY.fullmatch(key)
    if match is None:
        return None
    pathway, rest = (0 if match[1] == "slow" else 1), match[2]
    if stem := _STEM.fullmatch(rest):
        kind, param = stem.groups()
        return f"blocks.0.multipathway_blocks.{pathway}.{'conv' if kind == 'conv' else 'norm'}.{param}"
    if res := _RES.fullmatch(rest):
        stage, block, part, kind, param = res.groups()
        if part == "downsample":
            name = "branch1_conv" if kind == "conv" else "branch1_norm"
        else:  # conv1/2/3 -> conv_a/b/c
            name = f"branch2.{'conv' if kind == 'conv' else 'norm'}_{'abc'[int(part[-1]) - 1]}"
        return f"blocks.{stage}.multipathway_blocks.{pathway}.res_blocks.{block}.{name}.{param}"
    if pathway == 0 and (lateral := _LATERAL.fullmatch(rest)):
        _, stage, kind, param = lateral.groups()
        return f"blocks.{stage or 0}.multipathway_fusion.{'conv_fast_to_slow' if kind == 'conv' else 'norm'}.{param}"
    return None


def _output_width(state: dict[str, torch.Tensor], pathway: str) -> int:
    """Channels the last block of ``pathway`` puts out (the head's input from that pathway)."""
    pattern = re.compile(rf"backbone\.{pathway}_path\.layer(\d)\.(\d+)\.conv3\.conv\.weight")
    blocks = [(tuple(map(int, m.groups())), key) for key in state if (m := pattern.fullmatch(key))]
    if not blocks:
        raise ValueError(f"cannot find the {pathway} pathway's last block (backbone.{pathway}_path.layer*.conv3)")
    return state[max(blocks)[1]].shape[0]


def mmaction2_to_ours(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename an mmaction2 SlowFast state dict to ours and reorder the FC's input columns.

    Returns the converted state dict and the mmaction2 keys that have no counterpart (e.g.
    ``data_preprocessor.*`` buffers or non-local blocks); the caller reports them.
    """
    converted, dropped = {}, []
    for key, value in state.items():
        new_key = _rename(key)
        if new_key is None:
            dropped.append(key)
        else:
            converted[new_key] = value
    if "blocks.6.proj.weight" in converted:
        weight = converted["blocks.6.proj.weight"]  # (classes, fast + slow)
        fast, slow = _output_width(state, "fast"), _output_width(state, "slow")
        if weight.shape[1] != fast + slow:
            raise ValueError(f"cls_head.fc_cls.weight has {weight.shape[1]} inputs; the backbone puts out "
                             f"{slow} (slow) + {fast} (fast) = {slow + fast} channels")
        converted["blocks.6.proj.weight"] = torch.cat([weight[:, fast:], weight[:, :fast]], dim=1)  # [slow, fast]
    return converted, dropped
