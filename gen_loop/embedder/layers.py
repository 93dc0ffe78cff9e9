"""YOLOv7 layers that ultralytics has no module for, for the shipped ``yolov7`` layout."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from ultralytics.nn.modules import Conv, RepConv


class SPPCSPC(nn.Module):
    """YOLOv7's spatial pyramid pooling block with a cross-stage-partial shortcut.

    One branch runs 1x1, 3x3 and 1x1 convs, max-pools their output at each of ``k`` (stride
    1, same size), concatenates the four and reduces them with a 1x1 and a 3x3 conv; the other
    is a single 1x1 conv of the input; a last 1x1 conv fuses the two. Submodule names
    (``cv1``-``cv7``, ``m``) are the original's, so its state dict maps one to one.

    Args:
        c1: input channels.
        c2: output channels.
        e: hidden-channel ratio (hidden = ``2 * c2 * e``).
        k: the max-pool kernel sizes.
    """

    def __init__(self, c1: int, c2: int, e: float = 0.5, k: Sequence[int] = (5, 9, 13)) -> None:
        super().__init__()
        hidden = int(2 * c2 * e)
        self.cv1 = Conv(c1, hidden, 1, 1)
        self.cv2 = Conv(c1, hidden, 1, 1)
        self.cv3 = Conv(hidden, hidden, 3, 1)
        self.cv4 = Conv(hidden, hidden, 1, 1)
        self.m = nn.ModuleList(nn.MaxPool2d(size, 1, size // 2) for size in k)
        self.cv5 = Conv(4 * hidden, hidden, 1, 1)
        self.cv6 = Conv(hidden, hidden, 3, 1)
        self.cv7 = Conv(2 * hidden, c2, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.cv4(self.cv3(self.cv1(x)))
        pooled = torch.cat([x1, *(pool(x1) for pool in self.m)], 1)
        y1 = self.cv6(self.cv5(pooled))
        return self.cv7(torch.cat((y1, self.cv2(x)), 1))


#: Layers a model YAML may name that ultralytics' ``parse_model`` cannot size (it takes their
#: output channels to be their input's): built by :func:`gen_loop.embedder.layout.build_net`.
#: ``RepConv`` is ultralytics' own (the original's 3x3 + 1x1 conv-BN branches, summed, SiLU;
#: ``fuse()`` folds it into one conv).
CUSTOM_LAYERS: dict[str, type[nn.Module]] = {"SPPCSPC": SPPCSPC, "RepConv": RepConv}
