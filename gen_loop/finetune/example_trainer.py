"""An example trainer for ``finetune=command``, with ultralytics standing in for your own.

It fulfils the contract of ``gen_loop/finetune/COMMAND.md``: evaluate the base weights on the
labeled target data (when ``--eval`` is given), fine-tune them on ``--data``, evaluate the
result the same way, and write ``<out>/metrics.json`` naming the weights. Its training and
evaluation are the built-in fine-tune's (``gen_loop.finetune.train``), so a run with
``finetune=command`` and this adapter gives the built-in's numbers. To plug in another
trainer, copy this file and replace :func:`evaluate` and :func:`train`.

    python -m gen_loop.finetune.example_trainer --data selected/data.yaml \\
        --weights base.pt --out out/ --epochs 8 --imgsz 256 [--eval target/data.yaml]

Exit codes: 0 done; 2 bad arguments; 3 training or evaluation failed (traceback on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from gen_loop.finetune._result_json import RESULT_FILE, detection_metrics_json
from gen_loop.finetune.train import DetectionMetrics

EXIT_FAILED = 3


def evaluate(
    weights: Path, data_yaml: Path, args: argparse.Namespace, name: str
) -> DetectionMetrics:
    """mAP50, mAP50-95 and per-class AP50 of ``weights`` on the ``val`` split of ``data_yaml``."""
    from gen_loop.finetune.train import evaluate_detector

    return evaluate_detector(
        weights, data_yaml, args.imgsz, args.batch, args.device, args.out / name
    )


def train(args: argparse.Namespace) -> Path:
    """Fine-tune ``args.weights`` on ``args.data``; the path of the fine-tuned weights."""
    from gen_loop.finetune.train import train_detector

    return train_detector(
        args.data,
        args.out / "train",
        args.model,
        args.weights,
        args.epochs,
        args.imgsz,
        args.batch,
        args.device,
        args.seed,
        lr0=args.lr0,
        augment=args.augment,
    )


def class_warning(weights: Path, data_yaml: Path) -> str | None:
    """The built-in's note when the detector's classes are not the data's."""
    import yaml

    from gen_loop.finetune.evaluate import class_mismatch

    names = yaml.safe_load(data_yaml.read_text())["names"]
    names = [names[k] for k in sorted(names)] if isinstance(names, dict) else list(names)
    return class_mismatch(weights, tuple(str(n) for n in names))


def run(args: argparse.Namespace) -> dict[str, object]:
    """Evaluate, fine-tune, evaluate; the content of ``metrics.json``."""
    from gen_loop._env import configure_offline, configure_ultralytics

    configure_offline()  # no downloads, ultralytics' MLflow integration off
    configure_ultralytics()
    result: dict[str, object] = {}
    warning = class_warning(args.weights, args.data)
    if warning:
        result["warning"] = warning
    if args.eval is not None:
        result["before"] = detection_metrics_json(
            evaluate(args.weights, args.eval, args, "eval_before")
        )
    weights = train(args)
    result["weights"] = str(weights.relative_to(args.out))
    if args.eval is not None:
        result["after"] = detection_metrics_json(evaluate(weights, args.eval, args, "eval_after"))
    return result


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; argparse exits 2 on a bad one."""
    parser = argparse.ArgumentParser(prog="python -m gen_loop.finetune.example_trainer")
    parser.add_argument("--data", type=Path, required=True, help="the selection's data.yaml")
    parser.add_argument("--weights", type=Path, required=True, help="the base checkpoint")
    parser.add_argument("--out", type=Path, required=True, help="output folder (exists)")
    parser.add_argument("--eval", type=Path, default=None, help="labeled target data.yaml")
    parser.add_argument("--model", default="yolov7-tiny", help="architecture (weights win)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--imgsz", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr0", type=_optional_float, default=0.001)
    parser.add_argument("--augment", type=_boolean, default=False)
    parser.add_argument("--device", default="cpu", help="cpu, 0, 1, ... (ultralytics' form)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name in ("data", "weights", "eval"):
        path = getattr(args, name)
        if path is not None and not path.is_file():
            parser.error(f"--{name} {path} is not a file")
    if not args.out.is_dir():
        parser.error(f"--out {args.out} is not a folder")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the adapter; the exit code."""
    args = parse_args(argv)
    try:
        result = run(args)
    except Exception:
        traceback.print_exc()
        return EXIT_FAILED
    (args.out / RESULT_FILE).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out / RESULT_FILE}")
    return 0


def _boolean(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"{text!r}: use true or false")
    return text.lower() == "true"


def _optional_float(text: str) -> float | None:
    return None if text == "" else float(text)


if __name__ == "__main__":
    sys.exit(main())
