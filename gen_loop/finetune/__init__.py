"""Fine-tune and evaluate the detector with the ultralytics trainer."""

from gen_loop.finetune.base import train_base
from gen_loop.finetune.train import DetectionMetrics, evaluate_detector, train_detector

__all__ = ["DetectionMetrics", "evaluate_detector", "train_base", "train_detector"]
