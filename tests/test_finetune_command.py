"""``finetune=command``: the user's own trainer run as a command, against the built-in fine-tune.

The example adapter (``gen_loop.finetune.example_trainer``) must end a smoke run with the
summary and the verdict of the built-in fine-tune; a trainer that fails must end the run with
one error line naming ``finetune.command`` and its log file, and keep the search's results.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from gen_loop.errors import ConfigError, FinetuneError
from gen_loop.finetune import CommandFinetuner
from gen_loop.finetune._result_json import read_result
from gen_loop.finetune.evaluate import NO_LABELS
from gen_loop.finetune.verdict import gain_verdict
from gen_loop.generator import ProceduralGenerator
from gen_loop.generator.yolo_io import write_yolo_dataset
from gen_loop.loop.summary import RunSummary
from gen_loop.selection.dataset import Selection
from tests.cli import run_cli

# A fake trainer: `fake_trainer.py MODE OUT_DIR [args...]`, misbehaving as MODE says.
FAKE = r"""
import json, subprocess, sys, time
from pathlib import Path

mode, out = sys.argv[1], Path(sys.argv[2])
print("fake trainer: epoch 1/1")
if mode == "exit3":
    print("fake trainer: CUDA out of memory", file=sys.stderr)
    sys.exit(3)
(out / "w.pt").write_bytes(b"weights")
if mode == "no_metrics":
    sys.exit(0)
if mode == "sleep":
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    (out / "child.pid").write_text(str(child.pid))
    time.sleep(60)
(out / "metrics.json").write_text(json.dumps({"weights": "w.pt", "argv": sys.argv}))
"""

GOOD = {"map50": 0.5, "map50_95": 0.25, "per_class_ap50": {"car": 0.5}}


@pytest.fixture(scope="module")
def fake_trainer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trainer") / "fake_trainer.py"
    path.write_text(FAKE)
    return path


def _command(*args: str | Path) -> str:
    """A ``finetune.command=[...]`` override, every argument quoted for Hydra."""
    return "finetune.command=[" + ",".join(f"'{a}'" for a in args) + "]"


def _with_command(*args: str | Path) -> tuple[str, str]:
    """The overrides of a ``finetune=command`` run with this command."""
    return "finetune=command", _command(*args)


def _run(cwd: Path, name: str, *overrides: str) -> CompletedProcess[str]:
    return run_cli(cwd, "run", "debug=smoke", *overrides, f"hydra.run.dir=runs/{name}")


def _summary(cwd: Path, name: str) -> RunSummary:
    return RunSummary.load(cwd / "runs" / name / "summary.json")


def _verdict_tag(summary: RunSummary) -> str:
    client = MlflowClient(summary.mlflow.tracking_uri)
    return client.get_run(summary.mlflow.run_id).data.tags["gen_loop.verdict"]


# --- The example adapter against the built-in fine-tune (one smoke run each).


@pytest.fixture(scope="module")
def builtin(tmp_path_factory: pytest.TempPathFactory) -> RunSummary:
    cwd = tmp_path_factory.mktemp("builtin")
    proc = _run(cwd, "r")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return _summary(cwd, "r")


@pytest.fixture(scope="module")
def command(tmp_path_factory: pytest.TempPathFactory) -> RunSummary:
    cwd = tmp_path_factory.mktemp("command")
    proc = _run(cwd, "r", "finetune=command")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return _summary(cwd, "r")


def _shape(value: Any) -> Any:
    """The keys of nested dicts (values dropped), to compare summaries' fields."""
    return {k: _shape(v) for k, v in value.items()} if isinstance(value, dict) else None


@pytest.mark.integration
@pytest.mark.slow
def test_the_example_adapter_ends_like_the_built_in_fine_tune(
    builtin: RunSummary, command: RunSummary
) -> None:
    # Same summary fields, down to the evaluation's per-class keys and the verdict's fields.
    assert _shape(command.to_dict()) == _shape(builtin.to_dict())
    assert set(command.evaluation) == {"before", "after"}
    # The verdict is computed the same way: from the evaluation, with the same margin.
    for summary in (builtin, command):
        assert summary.verdict == gain_verdict(summary.evaluation, 0.01, True)
    assert command.verdict.status == builtin.verdict.status
    # Same base weights, same labeled target, same evaluation code: the same "before".
    assert command.evaluation["before"] == pytest.approx(builtin.evaluation["before"], abs=1e-9)
    # The adapter's weights are the run's fine-tuned weights, inside the run folder.
    weights = Path(command.finetuned_weights or "")
    assert weights.is_file() and weights.is_relative_to(Path(command.run_dir) / "finetune")
    log = Path(command.run_dir) / "finetune" / "command.log"
    assert "gen_loop.finetune.example_trainer" in log.read_text().splitlines()[0]
    assert _verdict_tag(command) == command.verdict.status


# --- Trainers that fail. The first one searches; the others re-run a copy of its run folder,
# whose search is done: only the final stage is made again.


@pytest.fixture(scope="module")
def failed(tmp_path_factory: pytest.TempPathFactory, fake_trainer: Path) -> tuple[Path, Any]:
    cwd = tmp_path_factory.mktemp("failed")
    proc = _run(cwd, "r", *_with_command(sys.executable, fake_trainer, "exit3", "{out_dir}"))
    return cwd, proc


def _assert_failed(cwd: Path, proc: CompletedProcess[str], says: str) -> RunSummary:
    """One error line naming finetune.command, what went wrong and the log; the search kept."""
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    log = cwd / "runs" / "r" / "finetune" / "command.log"
    assert "finetune.command" in errors[0] and says in errors[0] and str(log) in errors[0]
    assert log.is_file()
    summary = _summary(cwd, "r")
    assert summary.n_trials == 6 and summary.best_distance is not None and summary.best_params
    assert summary.verdict.status == "failed" and summary.verdict.accepted is False
    assert "fine-tune failed" in summary.verdict.message
    assert "finetune.command" in summary.evaluation["failed"]
    assert summary.finetuned_weights is None
    assert Path(summary.result_weights or "").name == "yolov7-tiny-base.pt"
    assert _verdict_tag(summary) == "failed"
    return summary


@pytest.mark.integration
@pytest.mark.slow
def test_a_trainer_that_exits_3_fails_the_fine_tune_not_the_search(
    failed: tuple[Path, CompletedProcess[str]],
) -> None:
    cwd, proc = failed
    _assert_failed(cwd, proc, "exited with code 3")
    # The log holds the command's stdout and stderr; the error ends with its last lines.
    assert "CUDA out of memory" in (cwd / "runs/r/finetune/command.log").read_text()
    assert "| fake trainer: CUDA out of memory" in proc.stderr


def _rerun(tmp_path: Path, failed: tuple[Path, Any], *command: str | Path) -> tuple[Path, Any]:
    """The failed run's folder copied to ``tmp_path``, run again with ``command``."""
    cwd = tmp_path / "cwd"
    shutil.copytree(failed[0], cwd)
    return cwd, _run(cwd, "r", *_with_command(*command))


@pytest.mark.integration
@pytest.mark.slow
def test_a_trainer_that_writes_no_metrics_fails_the_fine_tune(
    tmp_path: Path, failed: tuple[Path, Any], fake_trainer: Path
) -> None:
    before = _summary(failed[0], "r")
    cwd, proc = _rerun(tmp_path, failed, sys.executable, fake_trainer, "no_metrics", "{out_dir}")
    summary = _assert_failed(cwd, proc, "wrote no")
    assert "metrics.json" in proc.stderr
    # The search was not repeated: the same trials, the same best.
    assert summary.best_distance == before.best_distance and summary.n_trials == before.n_trials


@pytest.mark.integration
@pytest.mark.slow
def test_a_trainer_that_cannot_start_fails_the_fine_tune(
    tmp_path: Path, failed: tuple[Path, Any]
) -> None:
    # The file is there and executable, but its interpreter is not: exec fails (ENOENT).
    trainer = tmp_path / "trainer.sh"
    trainer.write_text("#!/nonexistent/interpreter\n")
    trainer.chmod(0o755)
    cwd, proc = _rerun(tmp_path, failed, trainer, "{out_dir}")
    _assert_failed(cwd, proc, "cannot start")


@pytest.mark.integration
def test_a_trainer_not_found_stops_the_run_before_the_search(tmp_path: Path) -> None:
    proc = _run(tmp_path, "r", *_with_command("no-such-trainer-4f1c", "{out_dir}"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "config key 'finetune.command'" in proc.stderr and "not found" in proc.stderr
    assert not (tmp_path / "runs" / "r").exists()  # nothing was run, nothing is left


# --- The finetuner and the metrics file, without a run.


@pytest.fixture
def selection(tmp_path: Path) -> Selection:
    """A real two-image selection written as a YOLO dataset."""
    batch = ProceduralGenerator(64, 64).generate({}, 2, 0)
    data_yaml = write_yolo_dataset(batch, tmp_path / "selected", val=batch)
    return Selection(batch, np.zeros(2), 1.0, 2, data_yaml, data_yaml, 1)


def _finetuner(fake_trainer: Path, mode: str, *extra: str, **kwargs: Any) -> CommandFinetuner:
    args = [sys.executable, str(fake_trainer), mode, "{out_dir}", *extra]
    return CommandFinetuner(args, epochs=3, imgsz=64, device="cpu", **kwargs)


def test_placeholders_are_replaced_and_eval_is_left_out_without_labels(
    tmp_path: Path, selection: Selection, fake_trainer: Path
) -> None:
    trainer = _finetuner(fake_trainer, "argv", "{data_yaml}", "--e={epochs}", "--eval={eval_yaml}")
    base = tmp_path / "base.pt"
    base.write_bytes(b"x")
    weights, evaluation = trainer.finetune(base, "yolov7-tiny", selection, None, tmp_path / "ft")
    out = tmp_path / "ft" / "output"
    assert weights == out / "w.pt"
    assert evaluation == {"skipped": NO_LABELS}  # the built-in's words
    argv = json.loads((out / "metrics.json").read_text())["argv"]
    assert argv[2:] == [str(out.resolve()), str(selection.data_yaml.resolve()), "--e=3"]
    # With labels, the argument is there, and the metrics must say before and after.
    with pytest.raises(FinetuneError, match=r"'before' is missing.*\(log: "):
        trainer.finetune(base, "yolov7-tiny", selection, selection.data_yaml, tmp_path / "ft")
    argv = json.loads((out / "metrics.json").read_text())["argv"]
    assert argv[-1] == f"--eval={selection.data_yaml.resolve()}"


def test_a_trainer_past_its_timeout_is_killed_with_its_children(
    tmp_path: Path, selection: Selection, fake_trainer: Path
) -> None:
    import os

    trainer = _finetuner(fake_trainer, "sleep", timeout_s=3.0)
    clock = time.monotonic()
    with pytest.raises(FinetuneError, match=r"finetune.timeout_s=3 s and was killed \(log: "):
        trainer.finetune(tmp_path / "b.pt", "m", selection, None, tmp_path / "ft")
    assert time.monotonic() - clock < 30
    child = int((tmp_path / "ft" / "output" / "child.pid").read_text())
    for _ in range(50):  # the killed child is reaped by init soon after
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the trainer's child {child} outlived the timeout")


@pytest.mark.parametrize(
    ("command", "says"),
    [
        ("python train.py", "non-empty list of strings"),
        ([], "non-empty list of strings"),
        (["no-such-trainer-4f1c"], "not found"),
        ([sys.executable, "{weigths}"], "unknown placeholder(s) ['weigths']"),
    ],
)
def test_bad_commands_are_config_errors(command: Any, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        CommandFinetuner(command)
    assert info.value.key == "finetune.command" and says in str(info.value)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "wrote no"),
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "must hold a JSON object"),
        ({"before": GOOD, "after": GOOD}, "has no 'weights'"),
        ({"weights": "missing.pt", "before": GOOD, "after": GOOD}, "not a non-empty file"),
        ({"weights": "w.pt", "after": GOOD}, "'before' is missing"),
        ({"weights": "w.pt", "before": GOOD, "after": {**GOOD, "map50": 1.5}}, "'map50' must"),
        ({"weights": "w.pt", "before": GOOD, "after": {**GOOD, "map50": "0.5"}}, "'map50' must"),
        ({"weights": "w.pt", "before": {"map50": 0.5, "map50_95": 0.2}, "after": GOOD}, "per_"),
        (
            {"weights": "w.pt", "before": GOOD, "after": {**GOOD, "per_class_ap50": {"car": -1}}},
            "per_class_ap50 'car' must",
        ),
    ],
)
def test_malformed_metrics_are_named(tmp_path: Path, content: Any, says: str) -> None:
    (tmp_path / "w.pt").write_bytes(b"x")
    path = tmp_path / "metrics.json"
    if content is not None:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(ValueError, match=None) as info:
        read_result(path, evaluated=True)
    assert says in str(info.value)


def test_good_metrics_become_the_built_in_evaluation_fields(tmp_path: Path) -> None:
    (tmp_path / "w.pt").write_bytes(b"x")
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"weights": "w.pt", "before": GOOD, "after": GOOD}))
    weights, metrics, warning = read_result(path, evaluated=True)
    assert weights == tmp_path / "w.pt" and warning == ""
    assert metrics["after"].as_dict() == {"map50": 0.5, "map50_95": 0.25, "ap50_car": 0.5}
    # Without labels, before/after are not read (nor required).
    path.write_text(json.dumps({"weights": str(tmp_path / "w.pt")}))
    assert read_result(path, evaluated=False)[1] == {}
