"""Shared fixtures: the real Hydra config, composed with every output under ``tmp_path``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from gen_loop.config import CONF_DIR, RunConfig, register_configs
from gen_loop.config.commands import AnalyzeConfig
from gen_loop.config.validate import check_run_config
from gen_loop.errors import ConfigError
from tests.cli import cli_env
from tests.pg_server import PgServer, start_server

if TYPE_CHECKING:
    import optuna
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

    from gen_loop.embedder import YoloEmbedder
    from gen_loop.generator import Generator
    from gen_loop.loop.search_loop import SearchOutcome
    from gen_loop.loop.summary import RunSummary
    from gen_loop.loop.trial import TrialSetup
    from gen_loop.score import CentroidScorer, Scorer
    from gen_loop.search.space import SearchSpace


@pytest.fixture
def compose_run(tmp_path: Path) -> Callable[[list[str]], RunConfig]:
    """A function that composes ``conf/run.yaml`` with Hydra overrides into a ``RunConfig``.

    ``run_dir`` points at the test's ``tmp_path`` (later overrides win); nothing else is
    changed, so pass ``debug=smoke`` for the seconds-long profile.
    """
    register_configs()

    def _compose(overrides: list[str]) -> RunConfig:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            cfg = compose("run", overrides=[f"run_dir={tmp_path}", *overrides])
        return OmegaConf.to_object(cfg)  # type: ignore[return-value]

    return _compose


@pytest.fixture
def compose_analyze(tmp_path: Path) -> Callable[[list[str]], AnalyzeConfig]:
    """Compose ``conf/analyze.yaml`` with every output (report, MLflow, cache) under tmp_path."""
    register_configs()

    def _compose(overrides: list[str]) -> AnalyzeConfig:
        base = [
            f"out_dir={tmp_path / 'out'}",
            f"cache_dir={tmp_path / 'cache'}",
            f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
        ]
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            cfg = compose("analyze", overrides=[*base, *overrides])
        return OmegaConf.to_object(cfg)  # type: ignore[return-value]

    return _compose


@pytest.fixture
def config_error() -> Callable[..., ConfigError]:
    """A function ``(key, call, *args, prefix=False)`` that calls ``call(*args)`` and asserts
    it raises a ``ConfigError`` naming ``key``: as its ``.key`` (with ``prefix=True``: a key
    that starts with ``key``, e.g. ``search.space.fisheye.choices``) and in its message.
    Returns the error for further checks."""

    def _check(
        key: str, call: Callable[..., Any], *args: Any, prefix: bool = False
    ) -> ConfigError:
        with pytest.raises(ConfigError) as info:
            call(*args)
        err = info.value
        if prefix:
            assert err.key.startswith(key), f"{err.key!r} is not under {key!r}: {err}"
        else:
            assert err.key == key, f"{err.key!r} != {key!r}: {err}"
        assert key in str(err)
        return err

    return _check


@pytest.fixture
def assert_config_error(
    compose_run: Callable[[list[str]], RunConfig], config_error: Callable[..., ConfigError]
) -> Callable[[str | Sequence[str], str], ConfigError]:
    """A function ``(overrides, key)``: the smoke profile with ``overrides`` (one string or a
    list) must fail ``check_run_config`` with a ``ConfigError`` whose key is ``key`` and whose
    message names it. Returns the error."""

    def _check(overrides: str | Sequence[str], key: str) -> ConfigError:
        extra = [overrides] if isinstance(overrides, str) else list(overrides)
        return config_error(key, check_run_config, compose_run(["debug=smoke", *extra]))

    return _check


@pytest.fixture
def start_cli() -> Callable[..., subprocess.Popen[str]]:
    """A function ``(cwd, *args, cache=None, stderr=PIPE)`` that starts ``python -m gen_loop
    ARGS`` in ``cwd`` (cache ``cwd/cache`` unless given) and returns the ``Popen``, text mode,
    stdout piped: for tests that read a run's output while it runs, then stop or kill it."""

    def _start(
        cwd: Path, *args: str, cache: Path | None = None, stderr: int = subprocess.PIPE
    ) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "gen_loop", *args],
            cwd=cwd,
            env=cli_env(cwd / "cache" if cache is None else cache),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )

    return _start


@pytest.fixture
def run_workers(
    start_cli: Callable[..., subprocess.Popen[str]],
) -> Callable[[Path, int, Sequence[str]], list[tuple[str, str]]]:
    """A function ``(tmp_path, n, args)`` that starts ``n`` ``python -m gen_loop ARGS``
    workers together, each in its own folder ``tmp_path/w<i>`` (like machines: own run
    folder and MLflow store, one shared cache), asserts that every one exits 0 and returns
    their (stdout, stderr)."""

    def _run(tmp_path: Path, n: int, args: Sequence[str]) -> list[tuple[str, str]]:
        procs = []
        for i in range(n):
            cwd = tmp_path / f"w{i}"
            cwd.mkdir()
            procs.append(start_cli(cwd, *args, cache=tmp_path / "cache"))
        outputs = [p.communicate(timeout=900) for p in procs]
        for proc, (out, err) in zip(procs, outputs, strict=True):
            assert proc.returncode == 0, out[-2000:] + err[-3000:]
        return outputs

    return _run


# --- The search loop on real parts (tests/test_search_loop.py, test_scene_seeds.py,
# test_refine.py): a random-init YOLOv7-tiny at 64 px, shared by the whole session.
LOOP_SIZE = 64


@pytest.fixture(scope="session")
def tiny_embedder(tmp_path_factory: pytest.TempPathFactory) -> YoloEmbedder:
    """The shipped YOLOv7-tiny layout, random init, layer 14, 64 px, on the CPU."""
    from gen_loop._env import configure_offline, configure_ultralytics
    from gen_loop.embedder import YoloEmbedder

    configure_offline(tmp_path_factory.mktemp("cache"))
    configure_ultralytics()
    return YoloEmbedder("yolov7-tiny", None, [14], LOOP_SIZE, device="cpu")


@pytest.fixture(scope="session")
def fit_scorer(tiny_embedder: YoloEmbedder) -> Callable[..., CentroidScorer]:
    """A function ``(generator, params, n, seed)``: a centroid scorer fitted on ``n`` images
    the generator renders with ``params`` (over its defaults) from scene seed ``seed``."""
    from gen_loop.score import CentroidScorer

    def _fit(generator: Generator, params: dict[str, Any], n: int, seed: int) -> CentroidScorer:
        target = generator.generate({**generator.default_params(), **params}, n, seed)
        return CentroidScorer().fit(tiny_embedder.embed(target.images))

    return _fit


@pytest.fixture(scope="session")
def trial_setup(tiny_embedder: YoloEmbedder) -> Callable[..., TrialSetup]:
    """A function ``(generator, scorer, space, batch_size, **settings)``: the trials' shared
    setup with the tiny embedder and the generator's default parameters as the base."""
    from gen_loop.loop.trial import TrialSetup

    def _setup(
        generator: Generator, scorer: Scorer, space: SearchSpace, batch_size: int, **settings: Any
    ) -> TrialSetup:
        return TrialSetup(
            generator=generator,
            embedder=tiny_embedder,
            scorer=scorer,
            base_params=generator.default_params(),
            space=space,
            batch_size=batch_size,
            **settings,
        )

    return _setup


@dataclass(frozen=True)
class SearchLog:
    """What :func:`logged_search` returns: the outcome and the MLflow record of the search."""

    outcome: SearchOutcome
    client: MlflowClient
    parent_run_id: str
    experiment_id: str

    def children(self) -> list[Run]:
        """The trial (child) runs of the parent run."""
        query = f"tags.mlflow.parentRunId = '{self.parent_run_id}'"
        return self.client.search_runs([self.experiment_id], query)


def random_study(tmp_path: Path, name: str = "s") -> optuna.Study:
    """A study in ``tmp_path/o.db`` with Optuna's random sampler (seed 0) and the loop's
    start point for the two-parameter space of these tests (fisheye 0, 6500 K) enqueued."""
    from gen_loop.search import make_sampler, open_study

    return open_study(
        name,
        f"sqlite:///{tmp_path / 'o.db'}",
        make_sampler("random", 0, 0, False),
        {"fisheye": 0.0, "color_temp_k": 6500.0},
    )


@pytest.fixture
def logged_search(tmp_path: Path) -> Iterator[Callable[..., SearchLog]]:
    """A function ``(study, setup, convergence, trial_images=2)`` that runs the search with the
    real console and MLflow observers (store ``tmp_path/m.db``; every search of the test in
    one parent run, ended when the test ends) and returns a :class:`SearchLog`."""
    from mlflow.tracking import MlflowClient

    from gen_loop.loop.console import ConsoleObserver
    from gen_loop.loop.mlflow_observer import MlflowObserver
    from gen_loop.loop.observer import Observers
    from gen_loop.loop.search_loop import search
    from gen_loop.tracking import Tracker

    store = f"sqlite:///{tmp_path / 'm.db'}"
    with Tracker(store, "e", "loop") as tracker:

        def _search(study: Any, setup: Any, convergence: Any, trial_images: int = 2) -> SearchLog:
            with MlflowObserver(tracker, trial_images, "e") as mlflow:
                observer = Observers([ConsoleObserver(), mlflow])
                outcome = search(study, setup, convergence, observer)
            return SearchLog(outcome, MlflowClient(store), tracker.run_id, tracker.experiment_id)

        yield _search


@pytest.fixture
def make_summary() -> Callable[..., RunSummary]:
    """A function ``(**changes)``: a complete, valid ``RunSummary`` of a small finished run
    (4 trials, best 1.5 against a floor of 0.5, not fine-tuned) with ``changes`` applied, for
    tests of what reads ``summary.json`` (``.to_dict()`` is its JSON form)."""
    from gen_loop.finetune.verdict import unknown_verdict
    from gen_loop.loop.summary import MlflowInfo, RunSummary, Seeds, StudyInfo, TargetInfo
    from gen_loop.score import NoiseFloor

    def _make(**changes: Any) -> RunSummary:
        summary = RunSummary(
            best_params={"fisheye": 0.5},
            all_params={"fisheye": 0.5, "weather": "clear"},
            best_distance=1.5,
            best_trial=3,
            default_distance=6.0,
            default_params={"fisheye": 0.0},
            noise_floor=NoiseFloor(0.5, 0.1, 8, 2, (0.4, 0.6)),
            n_trials=4,
            n_failed=1,
            n_retried=0,
            n_refine_trials=0,
            best_stage="sampler",
            stop_reason="budget: 4 trials",
            selected_count=0,
            pool_size=0,
            evaluation={},
            verdict=unknown_verdict("unknown: not fine-tuned by this run"),
            target=TargetInfo("folder x", 10, 1, "abc"),
            mlflow=MlflowInfo("r1", "sqlite:///m.db", "0", "gen_loop"),
            study=StudyInfo("gen_loop", "sqlite:///o.db"),
            seeds=Seeds(0, 1, 0),
            timings_s={"search_s": 1.0},
            run_dir="/tmp/run",
        )
        for key, value in changes.items():
            if not hasattr(summary, key):
                raise AttributeError(f"RunSummary has no field {key!r}")
            setattr(summary, key, value)
        return summary

    return _make


# --- A real SQLite MLflow store (tests/test_tracking.py, test_tracking_writer.py).


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One SQLite MLflow store per test module: creating the schema takes about a second."""
    yield f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"


@pytest.fixture
def experiment(request: pytest.FixtureRequest) -> str:
    """A fresh experiment name per test, so tests sharing the store do not see each other."""
    return f"exp-{request.node.name}"


@pytest.fixture
def clean_tracking_uri(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tracker sets the global URI (and MLFLOW_TRACKING_URI); keep it out of other tests."""
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    yield
    mlflow.set_tracking_uri(None)


# --- A throw-away PostgreSQL server (tests/test_workers.py, test_tracking_server.py).


@pytest.fixture(scope="module")
def postgres() -> Iterator[PgServer]:
    """A PostgreSQL server on a free loopback port, trust authentication (any password is
    accepted); skips the test where PostgreSQL is not installed."""
    try:
        server = start_server()
    except FileNotFoundError as err:
        pytest.skip(f"PostgreSQL not installed ({err}); .ci/run installs it")
    yield server
    server.stop()
