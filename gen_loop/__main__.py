"""``python -m gen_loop <command> [hydra overrides]``.

Hydra has no subcommands: the command word is taken off argv here and the rest goes to a
Hydra application composed from ``conf/<command>.yaml``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence

from omegaconf import DictConfig

from gen_loop.errors import GenLoopError

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

Overrides use Hydra syntax (key=value, group=option); add --help after the command for the
composed config and its groups. Results: runs/<time>/summary.json and the MLflow store.
"""

log = logging.getLogger("gen_loop")


def _run(cfg: DictConfig) -> None:
    from omegaconf import OmegaConf

    from gen_loop.config.validate import check_run_config

    run_cfg = OmegaConf.to_object(cfg)
    # Checked before the loop is imported (torch): a bad value fails in well under a second.
    check_run_config(run_cfg)  # type: ignore[arg-type]
    from gen_loop.loop.run import run

    run(run_cfg)  # type: ignore[arg-type]


def _generate(cfg: DictConfig) -> None:
    from omegaconf import OmegaConf

    from gen_loop.commands import generate

    generate(OmegaConf.to_object(cfg))  # type: ignore[arg-type]


def _train_base(cfg: DictConfig) -> None:
    from omegaconf import OmegaConf

    from gen_loop.commands import train_base_command

    train_base_command(OmegaConf.to_object(cfg))  # type: ignore[arg-type]


def _analyze(cfg: DictConfig) -> None:
    from omegaconf import OmegaConf

    from gen_loop.analysis.command import analyze

    analyze(OmegaConf.to_object(cfg))  # type: ignore[arg-type]


COMMANDS: dict[str, tuple[str, Callable[[DictConfig], None]]] = {
    "run": ("run", _run),
    "generate": ("generate", _generate),
    "train-base": ("train_base", _train_base),
    "analyze": ("analyze", _analyze),
}


def _reported(task: Callable[[DictConfig], None]) -> Callable[[DictConfig], None]:
    """Print gen_loop's own errors as one line (exit 2) instead of a traceback."""

    def wrapper(cfg: DictConfig) -> None:
        from omegaconf.errors import MissingMandatoryValue

        try:
            task(cfg)
        except GenLoopError as err:
            print(f"error: {err}", file=sys.stderr, flush=True)
            sys.exit(2)
        except MissingMandatoryValue as err:  # a `???` left unset, e.g. target=folder alone
            key = err.full_key
            print(f"error: config key '{key}' must be given: add {key}=...", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("stopped by the user", file=sys.stderr, flush=True)
            sys.exit(130)

    return wrapper


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
    app()
    return 0


if __name__ == "__main__":
    sys.exit(main())
