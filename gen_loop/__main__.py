"""``python -m gen_loop <command> [hydra overrides]``.

Hydra has no subcommands: the command word is taken off argv here and the rest goes to a
Hydra application composed from ``conf/<command>.yaml``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from gen_loop.errors import GenLoopError

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from gen_loop.config.commands import AnalyzeConfig, GenerateConfig, TrainBaseConfig
    from gen_loop.config.schema import RunConfig

USAGE = """usage: python -m gen_loop <command> [overrides ...] [--multirun] [--cfg job]

commands:
  run          the whole loop: search generator parameters until the synthetic images look
               like the target to the detector, then select, fine-tune and evaluate
               e.g. python -m gen_loop run target=folder target.path=/data/client_cam
  generate     render a labeled batch to a YOLO-format folder
               e.g. python -m gen_loop generate out=/tmp/batch n=32 generator.params.fisheye=0.5
  train-base   train the base detector on source data (default-parameter images, or data=...)
               e.g. python -m gen_loop train-base epochs=40 install=cache
  analyze      find and explain the domain gap between named image sets and a reference
               e.g. python -m gen_loop analyze sets.source=/data/train sets.target=/data/client
  sweep-report tabulate the jobs of a `run --multirun` sweep as Markdown + CSV (not Hydra)
               e.g. python -m gen_loop sweep-report runs/multirun/<time>
  onnx-tensors list the tensors of an ONNX model that embedder.layers can name (not Hydra)
               e.g. python -m gen_loop onnx-tensors model.onnx --imgsz 640

Overrides use Hydra syntax (key=value, group=option); add --help after the command for the
composed config and its groups. Results: runs/<time>/summary.json and the MLflow store.
"""

log = logging.getLogger("gen_loop")


def _run(cfg: RunConfig) -> None:
    from gen_loop.config.validate import check_run_config

    # Checked before the loop is imported (torch): a bad value fails in well under a second.
    check_run_config(cfg)
    from gen_loop.loop.run import run

    run(cfg)


def _generate(cfg: GenerateConfig) -> None:
    from gen_loop.commands import generate

    generate(cfg)


def _train_base(cfg: TrainBaseConfig) -> None:
    from gen_loop.commands import train_base_command

    train_base_command(cfg)


def _analyze(cfg: AnalyzeConfig) -> None:
    from gen_loop.analysis.command import analyze

    analyze(cfg)


COMMANDS: dict[str, tuple[str, Callable[[Any], None]]] = {
    "run": ("run", _run),
    "generate": ("generate", _generate),
    "train-base": ("train_base", _train_base),
    "analyze": ("analyze", _analyze),
}

# Exceptions that left a command (not Hydra's composition): shown with their traceback.
_TASK_ERRORS: list[BaseException] = []


def _reported(task: Callable[[Any], None]) -> Callable[[DictConfig], None]:
    """The Hydra task: the config checked and converted (:func:`to_settings`), then ``task``;
    gen_loop's own errors printed as one line (exit 2) instead of a traceback."""

    def wrapper(cfg: DictConfig) -> None:
        from gen_loop.config.composition import to_settings

        try:
            task(to_settings(cfg))
        except GenLoopError as err:
            _remove_unused_run_dir()
            _report(err)
            sys.exit(2)
        except KeyboardInterrupt:
            print("stopped by the user", file=sys.stderr, flush=True)
            sys.exit(130)
        except BaseException as err:
            _TASK_ERRORS.append(err)
            raise

    return wrapper


def _report(err: BaseException) -> None:
    from gen_loop._secrets import mask_text

    print(f"error: {mask_text(str(err))}", file=sys.stderr, flush=True)


def _remove_unused_run_dir() -> None:
    """Remove the job's output folder when it holds only what Hydra wrote there (its config
    subfolder and the job's log) and the resolved config: a run that stopped on bad input
    before any work leaves no empty run behind. A folder with any result (summary, study,
    MLflow run id, ...) is kept, so a failed resume loses nothing."""
    import shutil
    from pathlib import Path

    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return
    hydra = HydraConfig.get()
    if hydra.output_subdir is None:  # generate writes no Hydra files: its folder is `out`
        return
    run_dir = Path(hydra.runtime.output_dir)
    subdir = run_dir / hydra.output_subdir
    own = {subdir, run_dir / f"{hydra.job.name}.log", run_dir / "config.yaml"}
    if not subdir.is_dir() or run_dir.resolve() == Path.cwd().resolve():
        return
    if all(path in own for path in run_dir.iterdir()):
        root = logging.getLogger()
        for handler in list(root.handlers):  # the job log is closed before its file goes
            if isinstance(handler, logging.FileHandler) and handler.baseFilename.startswith(
                str(run_dir.resolve())
            ):
                root.removeHandler(handler)
                handler.close()
        shutil.rmtree(run_dir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch the command word; return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    command, rest = args[0], args[1:]
    if command == "sweep-report":
        from gen_loop.sweep.report import sweep_report_main

        return sweep_report_main(rest)
    if command == "onnx-tensors":
        from gen_loop.embedder.exported import onnx_tensors_main

        return onnx_tensors_main(rest)
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    from gen_loop._env import set_env_defaults

    set_env_defaults()
    import hydra

    from gen_loop.config.store import CONF_DIR, register_configs

    register_configs()
    config_name, task = COMMANDS[command]
    sys.argv = [f"gen_loop {command}", *rest]
    app = hydra.main(config_path=str(CONF_DIR), config_name=config_name, version_base="1.3")(
        _reported(task)
    )
    return _composed(app)


def _composed(app: Callable[[], None]) -> int:
    """Run the Hydra app; a config Hydra cannot compose is one ``error:`` line, exit code 2.

    Hydra prints composition errors itself (several lines, exit code 1) unless
    ``HYDRA_FULL_ERROR`` is set, when it raises them; set here, so they can be reported like
    every other user error. A user who set it gets Hydra's full tracebacks, as before.
    """
    import os

    from gen_loop.config.composition import composition_error

    asked_full = bool(os.environ.get("HYDRA_FULL_ERROR"))
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        app()
    except Exception as err:
        error = None if asked_full or err in _TASK_ERRORS else composition_error(err)
        if error is None:
            raise
        _report(error)
        return 2
    finally:
        if not asked_full:
            del os.environ["HYDRA_FULL_ERROR"]
    return 0


if __name__ == "__main__":
    sys.exit(main())
