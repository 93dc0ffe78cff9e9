"""Original YOLOv7 checkpoints (github.com/WongKinYiu/yolov7) as embedder and fine-tune weights.

``read_original_checkpoint`` reads such a ``.pt`` without the original code and runs none of it
(a restricted unpickler: original classes become inert stand-ins, any other global is refused);
``load_original`` maps its weights into the shipped ultralytics layout of its cfg
(``yolov7-tiny-original`` or ``yolov7``), every layer up to the head at its original index.
"""

from gen_loop.embedder.original.convert import load_original
from gen_loop.embedder.original.layout import ORIGINAL_LAYOUTS, match_layout
from gen_loop.embedder.original.unpickle import is_original_checkpoint, read_original_checkpoint

__all__ = [
    "ORIGINAL_LAYOUTS",
    "is_original_checkpoint",
    "load_original",
    "match_layout",
    "read_original_checkpoint",
]
