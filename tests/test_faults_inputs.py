"""Fault injection on the command line: bad input of every kind, each given to the real CLI.

Every case runs ``python -m gen_loop`` in its own folder, which already holds an earlier
result (a real MLflow store with a finished run, a run folder with its summary and study).
A bad input must end with exit code 2 and one ``error:`` line naming the config key or file,
without a traceback; no run folder is left behind, and every earlier file is byte-identical
afterwards. The processes of all cases start together (most stop in about a second, before
torch is imported), a few at a time.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.cli import cli_env, run_cli

pytestmark = pytest.mark.integration

SECRET = "s3cretpw"
_PARALLEL = 4
_SIDECARS = (".db-wal", ".db-shm")


@dataclass(frozen=True)
class Case:
    """One bad input: the command line, what the error line must name, the files it needs."""

    args: tuple[str, ...]
    names: tuple[str, ...]  # substrings of the one `error:` line (the key, the file, ...)
    setup: Callable[[Path], None] = lambda cwd: None
    # Held around the process (a lock on the store, an immutable file), given the case folder.
    hold: Callable[[Path], AbstractContextManager[None]] = lambda cwd: nullcontext()
    also: tuple[str, ...] = ()  # substrings of stderr outside the error line (named skips)
    absent: tuple[str, ...] = ()  # substrings stderr must not hold
    no_new: tuple[str, ...] = ()  # paths (relative to the case folder) that must not appear
    extra: dict[str, str] = field(default_factory=dict)  # environment


# --- what the cases need in their folder ---------------------------------------------------


def _write_images(folder: Path, n: int, seed: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        cv2.imwrite(str(folder / f"img_{i}.png"), rng.integers(0, 255, (40, 40, 3), np.uint8))


def _two_images(cwd: Path) -> None:
    _write_images(cwd / "cam", 2)


def _one_image_file(cwd: Path) -> None:
    _write_images(cwd / "cam", 1)


def _empty_folder(cwd: Path) -> None:
    (cwd / "cam").mkdir()


def _corrupt_only(cwd: Path) -> None:
    (cwd / "cam").mkdir()
    for name in ("a.jpg", "b.png"):
        (cwd / "cam" / name).write_bytes(b"not an image")


def _symlink_loops(cwd: Path) -> None:
    _write_images(cwd / "cam", 3)
    (cwd / "cam" / "loop_a.png").symlink_to("loop_b.png")
    (cwd / "cam" / "loop_b.png").symlink_to("loop_a.png")


def _text_weights(cwd: Path) -> None:
    (cwd / "x.pt").write_text("this is not a checkpoint\n")


def _earlier_dataset(cwd: Path) -> None:
    for i in range(8):
        (cwd / "data" / "images").mkdir(parents=True, exist_ok=True)
        (cwd / "data" / "labels").mkdir(parents=True, exist_ok=True)
        (cwd / "data" / "images" / f"img_{i:04d}.png").write_bytes(b"earlier %d" % i)
        (cwd / "data" / "labels" / f"img_{i:04d}.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    (cwd / "data" / "params.json").write_text('{"params": {"fisheye": 0.9}}')


def _notes_folder(cwd: Path) -> None:
    (cwd / "notes").mkdir()
    (cwd / "notes" / "todo.md").write_text("mine\n")


def _a_file(cwd: Path) -> None:
    (cwd / "existing_file.txt").write_text("mine\n")


def _free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _locked_store(cwd: Path) -> Iterator[None]:
    """Another process's exclusive transaction on the store (here: this test's)."""
    with closing(sqlite3.connect(cwd / "mlflow.db", isolation_level=None)) as con:
        con.execute("BEGIN EXCLUSIVE")
        yield
        con.execute("ROLLBACK")


def _read_only(path: Path) -> AbstractContextManager[None]:
    """``path`` read-only: ``chattr +i`` as root (root ignores file modes), else chmod."""

    @contextmanager
    def hold() -> Iterator[None]:
        if os.geteuid() != 0:
            path.chmod(0o444)
            try:
                yield
            finally:
                path.chmod(0o644)
            return
        if shutil.which("chattr") is None:
            pytest.skip("running as root without chattr: no way to make a file read-only")
        made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
        if made.returncode != 0:
            pytest.skip(f"chattr +i is not supported here: {made.stderr.strip()}")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)

    return hold()


_RUN = ("run", "debug=smoke")
_FOLDER = (*_RUN, "target=folder", "target.path=cam")
_DEAD_PORT = _free_port()

CASES: dict[str, Case] = {
    # --- Hydra composition and unknown keys (issue 12 items 4, 5, 12)
    "typo_key": Case((*_RUN, "search.n_trial=5"), ("search.n_trial", "search.n_trials")),
    "typo_key_plus": Case((*_RUN, "+search.n_trial=5"), ("search.n_trial", "search.n_trials")),
    "typo_nested": Case(
        (*_RUN, "search.space.fisheye.lo=0.1"), ("search.space.fisheye.lo", "low")
    ),
    "no_such_option": Case((*_RUN, "search=nope"), ("search", "nope", "tpe")),
    "typo_debug": Case(("run", "debug=smokee"), ("debug", "smokee", "smoke")),
    "bad_type": Case((*_RUN, "search.n_trials=many"), ("search.n_trials", "many")),
    "parse_error": Case((*_RUN, "search.n_trials=[1"), ("search.n_trials=[1",)),
    "unknown_search_param": Case(
        (*_RUN, "+search.space.gama={low: 0.6, high: 1.6}"), ("search.space.gama", "gamma")
    ),
    "bad_range": Case((*_RUN, "search.space.fisheye.low=2"), ("search.space.fisheye",)),
    "zero_trials": Case((*_RUN, "search.n_trials=0"), ("search.n_trials",)),
    # --- the target (items 7, 12, and the cases that worked before)
    "target_missing": Case((*_RUN, "target=folder", "target.path=nope"), ("target.path", "nope")),
    "target_no_path": Case((*_RUN, "target=folder"), ("target.path",)),
    "target_one_image_file": Case(
        (*_RUN, "target=folder", "target.path=cam/img_0.png"),
        ("target.path", "one image file"),
        setup=_one_image_file,
    ),
    "target_empty": Case(_FOLDER, ("cam", "no image or video file"), setup=_empty_folder),
    "target_unreadable": Case(
        _FOLDER, ("cam", "a.jpg"), setup=_corrupt_only, also=("skipped 2 of 2",)
    ),
    "target_two_images": Case(_FOLDER, ("target.path", "2 readable", "4"), setup=_two_images),
    "target_symlink_loops": Case(
        _FOLDER,
        ("target.path", "3 readable", "2 more skipped"),
        setup=_symlink_loops,
        also=("loop_a.png (symlink loop)", "loop_b.png (symlink loop)"),
    ),
    # --- the model (item 6)
    "weights_not_a_checkpoint": Case(
        (*_RUN, "embedder.weights=x.pt"),
        ("embedder.weights", "x.pt"),
        setup=_text_weights,
        absent=("yolo predict", "Recommended"),
    ),
    # --- the MLflow store and server (item 9, and what worked before)
    "store_read_only": Case(
        _RUN,
        ("tracking.uri", "mlflow.db"),
        hold=lambda c: _read_only(c / "mlflow.db"),
        absent=("SQLAlchemy", "[SQL:"),
    ),
    "store_locked": Case(
        _RUN, ("tracking.uri", "mlflow.db", "locked"), hold=_locked_store, absent=("[SQL:",)
    ),
    "server_dead_password_masked": Case(
        (*_RUN, f"tracking.uri=http://gen_loop:{SECRET}@127.0.0.1:{_DEAD_PORT}"),
        ("tracking.uri", "unreachable", "gen_loop:***@"),
    ),
    "password_masked_in_parse_error": Case(
        (*_RUN, f"search.storage=postgresql://gen_loop:{SECRET}@db/optuna["),
        ("search.storage", "gen_loop:***@"),
    ),
    # --- generate (items 2, 8, 12)
    "generate_into_earlier_dataset": Case(
        ("generate", "out=data", "n=2"), ("out", "data", "overwrite=true"), setup=_earlier_dataset
    ),
    "generate_overwrite_foreign_files": Case(
        ("generate", "out=notes", "n=2", "overwrite=true"), ("out", "todo.md"), setup=_notes_folder
    ),
    "generate_out_is_a_file": Case(
        ("generate", "out=existing_file.txt", "n=2"), ("out", "existing_file.txt"), setup=_a_file
    ),
    "generate_n_zero": Case(("generate", "out=new", "n=0"), ("'n'",), no_new=("new",)),
}


# --- the earlier result every case folder starts with ---------------------------------------


_EARLIER_RUN = """
import sys
from gen_loop.tracking import Tracker
from mlflow import MlflowClient
with Tracker(sys.argv[1], "gen_loop", "earlier") as tracker:
    tracker.log_metrics({"best_distance": 0.5})
print(MlflowClient(sys.argv[1]).get_run(tracker.run_id).data.metrics)
"""


@pytest.fixture(scope="module")
def earlier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder as a finished run leaves it: a real MLflow store holding a run (made by a
    process of its own, which closes the store as a run does), and a run folder with its
    summary and study."""
    root = tmp_path_factory.mktemp("earlier")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    made = subprocess.run(
        [sys.executable, "-c", _EARLIER_RUN, uri],
        env=cli_env(root / "cache"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    assert made.stdout.splitlines()[-1] == "{'best_distance': 0.5}"
    shutil.rmtree(root / "cache", ignore_errors=True)
    run = root / "runs" / "2020-01-01_00-00-00"
    run.mkdir(parents=True)
    (run / "summary.json").write_text('{"best_distance": 0.5}\n')
    with closing(sqlite3.connect(run / "optuna.db")) as con:
        con.execute("CREATE TABLE trials (number INTEGER)")
        con.commit()
    return root


def _hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` but the gen_loop cache the CLI makes."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink() and p.relative_to(root).parts[0] != "cache"
    }


@dataclass(frozen=True)
class Outcome:
    cwd: Path
    before: dict[str, str]
    after: dict[str, str]
    done: subprocess.CompletedProcess[str]
    skip: str | None  # why the fault could not be made here


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory, earlier: Path) -> dict[str, Outcome]:
    """Every case run by the real CLI, ``_PARALLEL`` at a time."""
    pending = list(CASES.items())
    running: dict[str, tuple[Path, dict[str, str], ExitHold, subprocess.Popen[str]]] = {}
    results: dict[str, Outcome] = {}
    while pending or running:
        while pending and len(running) < _PARALLEL:
            name, case = pending.pop(0)
            cwd = tmp_path_factory.mktemp(name)
            shutil.copytree(earlier, cwd, dirs_exist_ok=True)
            case.setup(cwd)
            before = _hashes(cwd)
            hold = ExitHold(case.hold(cwd))
            proc = subprocess.Popen(
                [sys.executable, "-m", "gen_loop", *case.args],
                cwd=cwd,
                env={**cli_env(cwd / "cache"), **case.extra},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            running[name] = (cwd, before, hold, proc)
        name = next(iter(running))
        cwd, before, hold, proc = running.pop(name)
        try:
            out, err = proc.communicate(timeout=240)
        finally:
            hold.close()
        done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        results[name] = Outcome(cwd, before, _hashes(cwd), done, hold.skip)
    return results


class ExitHold:
    """A context manager entered now and left by :meth:`close` (a skip inside it is kept)."""

    def __init__(self, manager: AbstractContextManager[None]) -> None:
        self._manager = manager
        self.skip: str | None = None
        try:
            manager.__enter__()
        except pytest.skip.Exception as skip:
            self.skip = str(skip)

    def close(self) -> None:
        if self.skip is None:
            self._manager.__exit__(None, None, None)


@pytest.mark.parametrize("name", CASES)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    outcomes: dict[str, Outcome], name: str
) -> None:
    case, outcome = CASES[name], outcomes[name]
    if outcome.skip is not None:
        pytest.skip(outcome.skip)
    stderr = outcome.done.stderr
    assert outcome.done.returncode == 2, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr[-3000:]
    for part in case.names:
        assert part in errors[0], f"{part!r} not in {errors[0]!r}"
    # Nothing else but log records ("[time][logger][LEVEL] - ...") and the error line.
    stray = [
        line
        for line in stderr.splitlines()
        if line.strip() and not line.startswith(("error: ", "["))
    ]
    assert not stray, stderr[-3000:]
    for part in case.also:  # the log (Hydra's console handler writes to stdout)
        assert part in outcome.done.stdout + stderr, f"{part!r} not in the output"
    for part in (*case.absent, SECRET):
        assert part not in stderr and part not in outcome.done.stdout, part
    # Nothing earlier changed or lost; no run folder, nothing made that the case forbids.
    changed = [k for k, digest in outcome.before.items() if outcome.after.get(k) != digest]
    assert not changed, changed
    # New files: none, but the side files SQLite makes next to a database it opened (a
    # read-only database keeps them: SQLite cannot remove them).
    new = [k for k in outcome.after.keys() - outcome.before.keys() if not k.endswith(_SIDECARS)]
    assert not new, new
    runs = outcome.cwd / "runs"
    assert sorted(p.name for p in runs.iterdir()) == ["2020-01-01_00-00-00"]
    for path in case.no_new:
        assert not (outcome.cwd / path).exists(), path


# --- the forms that must now work -------------------------------------------------------------


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(cwd, *args, timeout=240)


@pytest.mark.parametrize(
    "override",
    [
        "+search.space.gamma={low: 0.6, high: 1.6}",
        "search.space.gamma={low: 0.6, high: 1.6}",
        "++search.space.gamma={low: 0.6, high: 1.6}",
    ],
)
def test_a_search_parameter_can_be_added_from_the_command_line(
    tmp_path: Path, override: str
) -> None:
    done = _cli(tmp_path, "run", override, "--cfg", "job")
    assert done.returncode == 0, done.stderr
    space = done.stdout.split("\n  space:\n", 1)[1].split("\n  fixed:", 1)[0]
    assert "    gamma:\n      low: 0.6\n      high: 1.6" in space
    assert "    fisheye:" in space  # added to the search space, not replacing it


def test_generate_overwrite_replaces_the_earlier_dataset(tmp_path: Path) -> None:
    _earlier_dataset(tmp_path)
    done = _cli(
        tmp_path,
        "generate",
        "out=data",
        "n=2",
        "overwrite=true",
        "generator.width=32",
        "generator.height=32",
        "generator.params.fisheye=0.25",
    )
    assert done.returncode == 0, done.stderr
    images = sorted(p.name for p in (tmp_path / "data" / "images").iterdir())
    labels = sorted(p.name for p in (tmp_path / "data" / "labels").iterdir())
    assert images == ["img_0000.png", "img_0001.png"]  # no image of the earlier dataset left
    assert labels == ["img_0000.txt", "img_0001.txt"]
    assert all(cv2.imread(str(tmp_path / "data" / "images" / n)) is not None for n in images)
    assert '"fisheye": 0.25' in (tmp_path / "data" / "params.json").read_text()
