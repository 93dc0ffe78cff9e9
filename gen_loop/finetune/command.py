"""``finetune=command``: the user's own trainer, run as a command (never through a shell).

The contract is written down in ``gen_loop/finetune/COMMAND.md``: gen_loop replaces the
placeholders of the argument list, runs it with its stdout and stderr in
``<run_dir>/finetune/command.log``, and reads ``{out_dir}/metrics.json``: the fine-tuned
weights and, with labeled target data, the target mAP of the base (``before``) and the
fine-tuned (``after``) detector. The verdict is the built-in fine-tune's.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gen_loop._commands import check_argv, kill_group
from gen_loop.errors import ConfigError, FinetuneError
from gen_loop.finetune._result_json import RESULT_FILE, read_result
from gen_loop.finetune.finetuner import Finetuner

if TYPE_CHECKING:
    from gen_loop.selection.dataset import Selection

log = logging.getLogger(__name__)

KEY = "finetune.command"
LOG_FILE = "command.log"
OUTPUT_DIR = "output"
PLACEHOLDERS = (
    "data_yaml",
    "weights",
    "model",
    "out_dir",
    "epochs",
    "imgsz",
    "batch",
    "lr0",
    "augment",
    "device",
    "seed",
    "eval_yaml",
)
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TAIL_LINES = 10


class CommandFinetuner(Finetuner):
    """A trainer behind a command line (``finetune.command``).

    Args:
        command: the argument list; the :data:`PLACEHOLDERS` in braces are replaced in any
            argument, and an argument that holds ``{eval_yaml}`` is left out when there is no
            labeled target data. Shell syntax is passed literally.
        epochs / batch / imgsz / lr0 / augment / seed: the values of their placeholders.
        device: auto, cpu, cuda or cuda:N; ``{device}`` is it as ultralytics takes it
            (``cpu``, ``0``, ``1``, ...).
        timeout_s: seconds the command may run before its process group is killed (None: no
            limit).

    Raises:
        ConfigError: naming ``finetune.command`` when it is not a non-empty list of strings,
            uses an unknown placeholder, or its program is not found.
    """

    def __init__(
        self,
        command: Sequence[str],
        epochs: int = 8,
        batch: int = 16,
        imgsz: int = 256,
        lr0: float | None = 0.001,
        augment: bool = False,
        device: str = "auto",
        seed: int = 0,
        timeout_s: float | None = None,
    ) -> None:
        check_argv(command, KEY)
        unknown = sorted({m for a in command for m in _PLACEHOLDER.findall(a)} - {*PLACEHOLDERS})
        if unknown:
            raise ConfigError(
                KEY, f"unknown placeholder(s) {unknown}; known: {', '.join(PLACEHOLDERS)}"
            )
        if _PLACEHOLDER.search(command[0]) is None and _program(command[0]) is None:
            raise ConfigError(
                KEY, f"program {command[0]!r} not found (not an executable file, not on PATH)"
            )
        if timeout_s is not None and not timeout_s > 0:
            raise ConfigError("finetune.timeout_s", f"{timeout_s} must be > 0 (or null)")
        self.command = tuple(command)
        self.timeout_s = timeout_s
        self.device = device
        self._values = {
            "epochs": str(epochs),
            "imgsz": str(imgsz),
            "batch": str(batch),
            "lr0": "" if lr0 is None else str(lr0),
            "augment": str(augment).lower(),
            "seed": str(seed),
        }

    def finetune(
        self,
        base_weights: Path,
        model: str,
        selection: Selection,
        eval_yaml: Path | None,
        out_dir: Path,
    ) -> tuple[Path, dict[str, Any]]:
        from gen_loop.finetune.evaluate import NO_LABELS, train_device

        out_dir.mkdir(parents=True, exist_ok=True)
        output = out_dir / OUTPUT_DIR
        shutil.rmtree(output, ignore_errors=True)  # an earlier attempt's files are not read
        output.mkdir()
        values = {
            **self._values,
            "data_yaml": str(selection.data_yaml.resolve()),
            "weights": str(base_weights.resolve()),
            "model": model,
            "out_dir": str(output.resolve()),
            "device": train_device(self.device),
            "eval_yaml": "" if eval_yaml is None else str(eval_yaml.resolve()),
        }
        argv = [
            _PLACEHOLDER.sub(lambda m: values[m.group(1)], arg)
            for arg in self.command
            if eval_yaml is not None or "{eval_yaml}" not in arg
        ]
        log_path = out_dir / LOG_FILE
        self._run(argv, log_path)
        try:
            weights, metrics, warning = read_result(output / RESULT_FILE, eval_yaml is not None)
        except ValueError as err:
            raise FinetuneError(
                f"{KEY} exited 0 but {err} (log: {log_path}){_tail(log_path)}"
            ) from None
        evaluation: dict[str, Any] = {"warning": warning} if warning else {}
        if metrics:
            evaluation.update({stage: m.as_dict() for stage, m in metrics.items()})
        else:
            evaluation["skipped"] = NO_LABELS
        log.info("trainer command wrote %s", weights)
        return weights, evaluation

    def _run(self, argv: list[str], log_path: Path) -> None:
        """Run ``argv`` with its output in ``log_path``; raise FinetuneError unless it exits 0."""
        where = f"(log: {log_path})"
        with log_path.open("w") as log_file:
            log_file.write(f"# gen_loop {KEY}: {' '.join(argv)}\n")
            log_file.flush()
            try:
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: a timeout kills it all
                )
            except OSError as err:
                log_file.write(f"# cannot start: {err}\n")
                raise FinetuneError(f"{KEY}: cannot start {argv[0]!r}: {err} {where}") from None
            try:
                code = proc.wait(timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                raise FinetuneError(
                    f"{KEY} ran past finetune.timeout_s={self.timeout_s:g} s and was killed "
                    f"{where}{_tail(log_path)}"
                ) from None
            except BaseException:  # Ctrl-C: the child is in another session and did not get it
                _kill_group(proc)
                raise
        if code != 0:
            raise FinetuneError(f"{KEY} exited with code {code} {where}{_tail(log_path)}")


def _program(name: str) -> str | None:
    """The executable ``name`` runs (a path, or a name looked up on PATH), or None."""
    if os.sep in name:
        path = Path(name).expanduser()
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    return shutil.which(name)


def _tail(log_path: Path) -> str:
    """The log's last lines, indented, for the end of an error message."""
    lines = log_path.read_text(errors="replace").strip().splitlines()[-_TAIL_LINES:]
    return "".join(f"\n  | {line[-300:]}" for line in lines)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    kill_group(proc)
    proc.wait()
