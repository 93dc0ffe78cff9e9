"""Map an original-YOLOv7 checkpoint into the shipped ultralytics layout of its cfg.

What carries over: every layer in front of the detection head, exactly (YOLOv7-tiny: layers
0-76, YOLOv7: 0-104), with each layer at the index it has in the original cfg, and the class
names and ``nc``. What does not: the head. The original's ``IDetect`` is anchor-based (1x1 convs
with the implicit ``ImplicitA``/``ImplicitM`` layers, anchors per level); ultralytics' ``Detect``,
which its trainer and validator need, is anchor-free, so it starts from random weights (seeded)
and is learnt by fine-tuning.
"""

from __future__ import annotations

import copy
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from gen_loop.embedder.original.layout import LayoutMismatch, match_layout, shipped_layout
from gen_loop.embedder.original.unpickle import OriginalModule, read_original_checkpoint
from gen_loop.errors import ConfigError

if TYPE_CHECKING:
    from ultralytics.nn.tasks import DetectionModel

log = logging.getLogger(__name__)

#: Submodule names of the original ``RepConv`` and of ultralytics' ``RepConv``.
_REPCONV_NAMES = (
    (r"\.rbr_dense\.0\.", ".conv1.conv."),
    (r"\.rbr_dense\.1\.", ".conv1.bn."),
    (r"\.rbr_1x1\.0\.", ".conv2.conv."),
    (r"\.rbr_1x1\.1\.", ".conv2.bn."),
    (r"\.rbr_identity\.", ".bn."),
)


def load_original(
    path: Path, seed: int = 0, key: str = "embedder.weights"
) -> tuple[str, DetectionModel]:
    """The shipped layout's name and an ultralytics model holding ``path``'s weights.

    The checkpoint's ``ema`` model is used when it has one (as the original code's own loader
    does), else ``model``; float32, in train mode like a freshly built model.

    Args:
        path: an original-YOLOv7 ``.pt``.
        seed: initialises the new ``Detect`` head (in a forked RNG).
        key: the config key named in errors.

    Raises:
        ConfigError: the file is refused (see ``read_original_checkpoint``), its cfg is none of
            the shipped layouts, or its tensors do not fit the layout.
    """
    from gen_loop.embedder.layout import build_net

    ckpt = read_original_checkpoint(path, key)
    original = ckpt["ema"] if isinstance(ckpt.get("ema"), OriginalModule) else ckpt["model"]
    cfg = getattr(original, "yaml", None)
    if not isinstance(cfg, dict):
        raise ConfigError(key, f"{path}: its model keeps no cfg dict (.yaml); cannot map it")
    try:
        name = match_layout(cfg)
    except LayoutMismatch as err:
        raise ConfigError(key, f"{path}: {err}") from None
    nc, names = _classes(original, cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net: Any = build_net(shipped_layout(name), nc=nc)
    net.yaml["yaml_file"] = f"{name}.yaml"
    head = len(net.model) - 1
    try:
        _copy_state(original, net, head)
    except ValueError as err:
        raise ConfigError(key, f"{path}: {err}") from None
    net.names = dict(enumerate(names))
    log.info(
        "original YOLOv7 checkpoint %s mapped to the %s layout: layers 0-%d carried over, "
        "the Detect head (%d) re-initialised; nc=%d",
        path,
        name,
        head - 1,
        head,
        nc,
    )
    return name, net


def _classes(original: nn.Module, cfg: dict[str, Any]) -> tuple[int, list[str]]:
    """``nc`` and the class names of an original model (names ``0``, ``1``, ... if absent)."""
    nc = int(getattr(original, "nc", None) or cfg["nc"])
    names = getattr(original, "names", None)
    names = list(names.values()) if isinstance(names, dict) else names
    if not isinstance(names, list) or len(names) != nc:
        names = [str(i) for i in range(nc)]
    return nc, [str(n) for n in names]


def _rename(key: str) -> str:
    for pattern, repl in _REPCONV_NAMES:
        key = re.sub(pattern, repl, key)
    return key


def _copy_state(original: nn.Module, net: Any, head: int) -> None:
    """Copy every parameter and buffer of layers ``0..head-1`` (and BatchNorm eps/momentum),
    checking that the two sides hold exactly the same tensors."""
    theirs = {
        _rename(k): v.float()
        for k, v in original.state_dict().items()
        if int(k.split(".")[1]) < head
    }
    ours = {k: v for k, v in net.state_dict().items() if int(k.split(".")[1]) < head}
    missing, extra = sorted(set(ours) - set(theirs)), sorted(set(theirs) - set(ours))
    if missing or extra:
        raise ValueError(
            f"its layers do not fit the layout: missing {missing[:3]}, unexpected {extra[:3]}"
        )
    for k, v in theirs.items():
        if v.shape != ours[k].shape:
            raise ValueError(f"{k} has shape {tuple(v.shape)}, the layout {tuple(ours[k].shape)}")
    net.load_state_dict(theirs, strict=False)
    for k, module in original.named_modules():
        if isinstance(module, nn.BatchNorm2d) and int(k.split(".")[1]) < head:
            mine: Any = net.get_submodule(_rename(k + ".")[:-1])
            mine.eps, mine.momentum = module.eps, module.momentum


def save_as_ultralytics(net: DetectionModel, out: Path, source: Path) -> Path:
    """Write ``net`` as an ultralytics checkpoint, in half precision as ultralytics saves
    (``YOLO(out)`` loads it; its trainer fine-tunes from it, transferring every layer)."""
    import ultralytics

    out.parent.mkdir(parents=True, exist_ok=True)
    ckpt: dict[str, Any] = {
        "model": copy.deepcopy(net).half(),
        "ema": None,
        "train_args": {},
        "version": ultralytics.__version__,
        "converted_from": str(source),
    }
    torch.save(ckpt, out)
    return out
