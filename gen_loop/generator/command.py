"""An external simulator run as a command: a JSON parameter file in, a YOLO folder out.

The contract (see ``experiments/simulator_adapter/README.md``): for each batch the generator
writes ``{"params": {...}, "seed": S, "n": N, "out_dir": DIR, "width": W, "height": H}`` to a
JSON file and runs the configured argument list (never through a shell) with the placeholders
``{params_json}``, ``{out_dir}``, ``{n}`` and ``{seed}`` replaced (the JSON path is also in the
environment as ``GEN_LOOP_PARAMS_JSON``). The command writes exactly N images to
``DIR/images/`` (image ``i`` is the ``i``-th in sorted file-name order), one YOLO label file
per image to ``DIR/labels/`` and a ``DIR/data.yaml`` with the class ``names``, then exits 0.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gen_loop._commands import check_argv, kill_group
from gen_loop.errors import ConfigError, GeneratorError, InputDataError
from gen_loop.generator._yolo_read import locate_yolo_dataset, read_labels
from gen_loop.generator.base import Batch, Generator, image_seeds
from gen_loop.generator.params import ParamSpec, ParamValue
from gen_loop.target.images import load_image_folder

log = logging.getLogger(__name__)

PARAMS_JSON_ENV = "GEN_LOOP_PARAMS_JSON"
_PLACEHOLDER = re.compile(r"\{(params_json|out_dir|n|seed)\}")
_TAIL_LINES = 20
_TAIL_CHARS = 1500  # the loop keeps 2000 characters of a failed trial's message
_SPEC_KEYS = {"type", "low", "high", "default", "unit", "doc", "choices"}


class CommandGenerator(Generator):
    """A simulator behind a command line, searched through the parameters the config declares.

    Every failure (the command cannot start, exits non-zero, runs past ``timeout_s``, writes
    nothing, unreadable images, bad label lines, the wrong number of images, no class names)
    raises :class:`~gen_loop.errors.GeneratorError` with the last lines of the command's
    stderr (stdout when stderr is empty); the loop records that trial as failed and goes on.
    The command runs in its own process group, which is killed on timeout or Ctrl-C.

    Args:
        command: the argument list; ``{params_json}``, ``{out_dir}``, ``{n}``, ``{seed}`` in
            any argument are replaced. Shell syntax (``;``, ``$(...)``, quotes) is passed
            literally.
        parameters: name -> ``{low, high, default, unit, doc}`` (numeric; ``type: int`` for
            integers) or ``{choices, default, doc}`` (categorical): the simulator's knobs.
        width: output width; the simulator's images are resized to it.
        height: output height.
        timeout_s: seconds one call may run before it is killed.
        work_dir: where each call's ``call_NNNN.json`` and ``call_NNNN/`` go; None: a
            temporary folder.
        keep_outputs: keep each call's files (default: deleted once read).
        class_names: class names when the output has no data.yaml ``names``.
    """

    def __init__(
        self,
        command: Sequence[str],
        parameters: Mapping[str, Mapping[str, Any]],
        width: int = 256,
        height: int = 256,
        timeout_s: float = 600.0,
        work_dir: str | None = None,
        keep_outputs: bool = False,
        class_names: Sequence[str] | None = None,
    ) -> None:
        check_argv(command, "generator.command")
        if not timeout_s > 0:
            raise ConfigError("generator.timeout_s", f"{timeout_s} must be > 0")
        self.command = tuple(command)
        self.width = width
        self.height = height
        self.timeout_s = float(timeout_s)
        self.keep_outputs = keep_outputs
        self._given_names = tuple(class_names) if class_names else None
        if self._given_names:
            self.class_names = self._given_names
        self._specs = parameter_specs(parameters)
        self._work_dir = Path(work_dir).expanduser() if work_dir else None
        self._root: Path | None = None
        self._calls = 0

    @property
    def parameters(self) -> Mapping[str, ParamSpec]:
        return self._specs

    def generate(self, params: Mapping[str, ParamValue], n: int, seed: int) -> Batch:
        resolved = self.resolve_request(params, n)
        out_dir, json_path = self._new_call()
        request = {
            "params": resolved,
            "seed": int(seed),
            "n": int(n),
            "out_dir": str(out_dir),
            "width": self.width,
            "height": self.height,
        }
        json_path.write_text(json.dumps(request, indent=2))
        values = {"params_json": str(json_path), "out_dir": str(out_dir), "n": str(n)}
        values["seed"] = str(seed)
        argv = [_PLACEHOLDER.sub(lambda m: values[m.group(1)], arg) for arg in self.command]
        try:
            tail = self._run(argv, json_path)
            return self._read_output(out_dir, n, seed, resolved, tail)
        finally:
            if not self.keep_outputs:
                shutil.rmtree(out_dir, ignore_errors=True)
                json_path.unlink(missing_ok=True)

    def _new_call(self) -> tuple[Path, Path]:
        """A fresh, empty output folder and the JSON path beside it."""
        if self._root is None:
            if self._work_dir is not None:
                self._work_dir.mkdir(parents=True, exist_ok=True)
                self._root = self._work_dir
            else:
                self._root = Path(tempfile.mkdtemp(prefix="gen_loop_sim_"))
                if not self.keep_outputs:
                    weakref.finalize(self, shutil.rmtree, self._root, True)
        while True:  # several workers may share a work_dir: skip numbers already taken
            self._calls += 1
            out_dir = self._root / f"call_{self._calls:04d}"
            try:
                out_dir.mkdir()
            except FileExistsError:
                continue
            return out_dir, out_dir.with_suffix(".json")

    def _run(self, argv: list[str], json_path: Path) -> str:
        """Run the command; return its output tail (for later messages) or raise."""
        env = {**os.environ, PARAMS_JSON_ENV: str(json_path)}
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,  # its own process group: a timeout kills its children
            )
        except OSError as error:
            raise GeneratorError(f"cannot start simulator command {argv[0]!r}: {error}") from error
        try:
            stdout, stderr = proc.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            stdout, stderr = _drain(proc)
            raise GeneratorError(
                f"simulator command timed out after {self.timeout_s:g} s (generator.timeout_s) "
                f"and was killed: {_show(argv)}{output_tail(stderr, stdout)}"
            ) from None
        except BaseException:  # Ctrl-C: the child is in another session and did not get it
            kill_group(proc)
            raise
        tail = output_tail(stderr, stdout)
        if proc.returncode != 0:
            raise GeneratorError(
                f"simulator command exited with code {proc.returncode}: {_show(argv)}{tail}"
            )
        log.debug("simulator command %s finished%s", _show(argv), tail)
        return tail

    def _read_output(
        self, out_dir: Path, n: int, seed: int, params: dict[str, ParamValue], tail: str
    ) -> Batch:
        """The output folder as a Batch, checked: YOLO layout, n readable images, good labels."""
        if not out_dir.is_dir() or not any(out_dir.iterdir()):
            raise GeneratorError(
                f"simulator command exited 0 but wrote nothing to {out_dir}{tail}"
            )
        try:
            layout = locate_yolo_dataset(out_dir)
            loaded = [load_image_folder(d, (self.width, self.height)) for d in layout.image_dirs]
        except InputDataError as err:
            raise GeneratorError(f"simulator output is not a YOLO dataset: {err}{tail}") from err
        skipped = [f"{p} ({reason})" for part in loaded for p, reason in part.skipped]
        if skipped:
            raise GeneratorError(
                f"simulator wrote {len(skipped)} unreadable image(s): {', '.join(skipped[:3])}"
                f"{tail}"
            )
        paths = [p for part in loaded for p in part.paths]
        if len(paths) != n:
            raise GeneratorError(
                f"simulator wrote {len(paths)} images to {out_dir}, expected n={n}{tail}"
            )
        names = layout.class_names or self._given_names
        if names is None:
            raise GeneratorError(
                f"simulator output {out_dir} has no data.yaml with 'names' and "
                f"generator.class_names is not set{tail}"
            )
        labels, issues = read_labels(paths, len(names))
        if issues:
            shown = "; ".join(str(i) for i in issues[:3])
            raise GeneratorError(
                f"simulator wrote {len(issues)} bad label line(s): {shown}"
                f"{' ...' if len(issues) > 3 else ''}{tail}"
            )
        self.class_names = names
        images = np.concatenate([part.images for part in loaded])
        return Batch(images, tuple(labels), names, params, image_seeds(seed, n))


def parameter_specs(config: Mapping[str, Mapping[str, Any]]) -> dict[str, ParamSpec]:
    """Parameter specs from config entries; errors name ``generator.parameters.NAME``."""
    if not config:
        raise ConfigError("generator.parameters", "is empty; declare the simulator's knobs")
    specs = {}
    for name, entry in config.items():
        key = f"generator.parameters.{name}"
        given = {k: v for k, v in dict(entry).items() if v is not None}
        unknown = sorted(set(given) - _SPEC_KEYS)
        if unknown:
            raise ConfigError(key, f"unknown field(s) {unknown}; known: {sorted(_SPEC_KEYS)}")
        if "default" not in given:
            raise ConfigError(key, "needs a default (the simulator's current setting)")
        unit, doc = str(given.get("unit", "")), str(given.get("doc", ""))
        if given.get("choices"):
            choices = tuple(given["choices"])
            if given["default"] not in choices:
                raise ConfigError(key, f"default {given['default']!r} is not in {list(choices)}")
            specs[name] = ParamSpec(name, given["default"], unit=unit, doc=doc, choices=choices)
            continue
        kind = given.get("type", "float")
        if kind not in ("float", "int") or "low" not in given or "high" not in given:
            raise ConfigError(key, "give low, high and default (type float or int), or choices")
        try:
            low, high = float(given["low"]), float(given["high"])
            default = int(given["default"]) if kind == "int" else float(given["default"])
        except (TypeError, ValueError) as err:
            raise ConfigError(key, f"low, high and default must be numbers: {err}") from err
        if not low < high or not low <= default <= high:
            raise ConfigError(key, f"needs low < high and low <= default <= high, got {given}")
        specs[name] = ParamSpec(name, default, low, high, unit, doc)
    return specs


def output_tail(stderr: bytes | None, stdout: bytes | None) -> str:
    """The last lines of stderr (stdout when stderr is empty), formatted for a message."""
    for stream, data in (("stderr", stderr), ("stdout", stdout)):
        text = (data or b"").decode(errors="replace").strip()
        if text:
            lines = text.splitlines()[-_TAIL_LINES:]
            body = "\n".join(f"  {line}" for line in lines)
            if len(body) > _TAIL_CHARS:
                body = "  ..." + body[-_TAIL_CHARS:]
            return f"\n{stream} (last {len(lines)} lines):\n{body}"
    return "\n(nothing on stderr or stdout)"


def _show(argv: Sequence[str]) -> str:
    return " ".join(argv)


def _drain(proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """What the killed command had printed (give up if an escaped child holds the pipes)."""
    try:
        return proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        return b"", b""
