"""Fine-tune and evaluate the detector: the ultralytics trainer, or the user's own command."""

from gen_loop.finetune.base import train_base
from gen_loop.finetune.command import CommandFinetuner
from gen_loop.finetune.evaluate import finetune_and_evaluate, train_device
from gen_loop.finetune.finetuner import Finetuner, UltralyticsFinetuner
from gen_loop.finetune.replay import add_replay
from gen_loop.finetune.train import DetectionMetrics, evaluate_detector, train_detector

__all__ = [
    "CommandFinetuner",
    "DetectionMetrics",
    "Finetuner",
    "UltralyticsFinetuner",
    "add_replay",
    "evaluate_detector",
    "finetune_and_evaluate",
    "train_base",
    "train_detector",
    "train_device",
]
