"""Build detection models from model YAMLs that name YOLOv7 layers ultralytics cannot size.

Ultralytics' ``parse_model`` knows each layer's output channels only for its own modules: for
any other it assumes the input's, which is wrong for ``SPPCSPC`` (1024 -> 512) and ``RepConv``
(128 -> 256) of YOLOv7. :func:`build_net` parses the YAML with a plain ``Conv`` of the right
output channels standing in for each such row, then puts the real layer in its place, so every
layer keeps the index of its row (the original cfg's index). :class:`LayoutTrainer` is the
ultralytics detection trainer building its model that way.
"""

from __future__ import annotations

import copy
from typing import Any

from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils.torch_utils import initialize_weights

from gen_loop.embedder.layers import CUSTOM_LAYERS


def custom_rows(cfg: dict[str, Any]) -> list[int]:
    """Indices of the rows of a model YAML dict that name a layer of :data:`CUSTOM_LAYERS`."""
    rows = [*cfg.get("backbone", []), *cfg.get("head", [])]
    return [i for i, row in enumerate(rows) if row[2] in CUSTOM_LAYERS]


def build_net(
    cfg: dict[str, Any], nc: int | None = None, ch: int = 3, verbose: bool = False
) -> DetectionModel:
    """An ultralytics ``DetectionModel`` of ``cfg`` (a model YAML dict), randomly initialised
    from torch's global generator (seed it in a forked RNG for a reproducible model).

    Args:
        cfg: the model YAML as a dict; may name :data:`CUSTOM_LAYERS` (their args are
            ``[c2, *rest]`` as for a ``Conv``; they use ultralytics' default SiLU).
        nc: classes of the detection head (None: ``cfg["nc"]``).
        ch: input channels.
        verbose: ultralytics' layer table.
    """
    rows = custom_rows(cfg)
    if not rows:
        return DetectionModel(copy.deepcopy(cfg), ch=ch, nc=nc, verbose=verbose)
    n_backbone = len(cfg["backbone"])
    parsed = copy.deepcopy(cfg)
    for i in rows:
        section, j = ("backbone", i) if i < n_backbone else ("head", i - n_backbone)
        source, repeats, _, args = parsed[section][j]
        parsed[section][j] = [source, repeats, "Conv", [args[0], 1, 1]]
    net: Any = DetectionModel(parsed, ch=ch, nc=nc, verbose=verbose)
    for i in rows:
        stand_in = net.model[i]
        _, _, name, args = (cfg["backbone"] + cfg["head"])[i]
        layer: Any = CUSTOM_LAYERS[name](stand_in.conv.in_channels, *args)
        initialize_weights(layer)  # BatchNorm eps/momentum as ultralytics sets them
        layer.i, layer.f, layer.type = stand_in.i, stand_in.f, f"gen_loop.{name}"
        layer.np = sum(p.numel() for p in layer.parameters())
        net.model[i] = layer
    # Ultralytics' stride probe ran on the stand-ins: they keep their input's size, as the
    # real layers do (stride 1), so the strides hold.
    net.yaml = {**copy.deepcopy(cfg), "nc": net.yaml["nc"]}
    return net


class LayoutTrainer(DetectionTrainer):
    """Ultralytics' detection trainer, its model built by :func:`build_net` (for model YAMLs
    that name :data:`CUSTOM_LAYERS`); weights transfer by name and shape as ultralytics'."""

    def get_model(
        self, cfg: Any = None, weights: Any = None, verbose: bool = True
    ) -> DetectionModel:
        net = build_net(cfg, nc=self.data["nc"], ch=self.data["channels"])
        if weights:
            net.load(weights)
        return net
