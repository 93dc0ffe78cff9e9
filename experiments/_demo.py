"""The demo as ``python -m gen_loop run`` builds it, for the experiment scripts.

Every experiment that renders, embeds or scores the demo target gets its components here:
``conf/run.yaml`` composed by Hydra (with the script's overrides) and turned into the generator,
embedder, scorer, target and search space by the package's own builders, so a script cannot
drift from the configs (``conf/target/demo.yaml``, ``conf/search/tpe.yaml``, ...).

A script in ``experiments/<study>/`` imports it after putting this folder on the path::

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/: _demo
    from _demo import load_demo

Heavy libraries (torch, ultralytics) load only when an embedder is built.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from gen_loop.config import RunConfig
    from gen_loop.embedder.base import Embedder
    from gen_loop.generator.base import Generator
    from gen_loop.generator.params import ParamValue
    from gen_loop.loop.target_data import TargetData
    from gen_loop.score import Scorer
    from gen_loop.search.space import SearchSpace

EXPERIMENTS = Path(__file__).resolve().parent
REPO = EXPERIMENTS.parent


def compose_run(overrides: Sequence[str] = (), run_dir: Path | None = None) -> RunConfig:
    """``conf/run.yaml`` with Hydra ``overrides``, as the ``RunConfig`` that ``run`` receives.

    ``run_dir`` (which ``run`` takes from Hydra's output folder) defaults to a folder under the
    system's temp dir; nothing here writes to it.
    """
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from gen_loop.config import CONF_DIR, register_configs

    if run_dir is None:
        run_dir = Path(tempfile.gettempdir()) / "gen_loop_experiments"
    register_configs()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("run", overrides=[f"run_dir={run_dir}", *overrides])
    return OmegaConf.to_object(cfg)  # type: ignore[return-value]


def cache_dir_of(cfg: RunConfig) -> Path:
    """The cache root ``run`` uses (``cache_dir``, else the default), set up for offline use."""
    from gen_loop._env import configure_offline, default_cache_dir

    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
    configure_offline(cache_dir)
    return cache_dir


def build_demo_embedder(cfg: RunConfig) -> tuple[Embedder, Path | None]:
    """The embedder of ``cfg.embedder`` and the checkpoint it loaded (None: random weights)."""
    from gen_loop._env import configure_ultralytics
    from gen_loop.loop.components import build_embedder, resolve_weights

    cache_dir = cache_dir_of(cfg)
    configure_ultralytics()
    weights = resolve_weights(cfg.embedder, cache_dir)
    return build_embedder(cfg.embedder, weights), weights


def build_demo_scorer(cfg: RunConfig) -> Scorer:
    """The unfitted scorer of ``cfg.score`` (e.g. ``compose_run(["score.metric=l2"])``)."""
    from gen_loop.loop.components import build_scorer

    return build_scorer(cfg.score)


def search_ranges(space: SearchSpace) -> dict[str, tuple[float, float]]:
    """``(low, high)`` of every searched numeric parameter, in config order."""
    return {
        name: (float(dist.low), float(dist.high))  # type: ignore[attr-defined]
        for name, dist in space.distributions.items()
        if hasattr(dist, "low")
    }


@dataclass(frozen=True)
class Demo:
    """The demo run's components, built as ``run`` builds them.

    Attributes:
        cfg: the composed run config.
        generator: the generator of ``cfg.generator``.
        base_params: what every trial renders over: ``generator.params`` and ``search.fixed``.
        space: the search space of ``cfg.search``.
        target: the demo target (``target.images.images``: uint8 NHWC).
        hidden: the hidden camera values of ``target.demo.params`` (the searched ones).
        embedder: the embedder of ``cfg.embedder``.
        weights: its checkpoint (None: random weights).
        scorer: the scorer of ``cfg.score``, fitted on ``target_embeddings`` unless
            ``load_demo(fit=False)``.
        target_embeddings: the target's embeddings (None with ``fit=False``).
    """

    cfg: RunConfig
    generator: Generator
    base_params: dict[str, ParamValue]
    space: SearchSpace
    target: TargetData
    hidden: dict[str, ParamValue]
    embedder: Embedder
    weights: Path | None
    scorer: Scorer
    target_embeddings: np.ndarray | None

    @property
    def ranges(self) -> dict[str, tuple[float, float]]:
        """``(low, high)`` of every searched parameter, in config order."""
        return search_ranges(self.space)

    def render(self, params: Mapping[str, ParamValue], n: int, seed: int) -> np.ndarray:
        """``n`` images of ``params`` (over :attr:`base_params`) from scene seed ``seed``."""
        return self.generator.generate({**self.base_params, **params}, n, seed).images

    def embed_at(self, params: Mapping[str, ParamValue], n: int, seed: int) -> np.ndarray:
        """The embeddings of :meth:`render` (float32, as the embedder returns them)."""
        return np.asarray(self.embedder.embed(self.render(params, n, seed)))


def load_demo(overrides: Sequence[str] = (), *, fit: bool = True) -> Demo:
    """Compose ``conf/run.yaml`` with ``overrides`` and build the demo as ``run`` does.

    Args:
        overrides: Hydra overrides, e.g. ``["embedder.layers=[14,21]", "score.metric=l2"]``.
        fit: embed the target and fit the scorer on it (False: neither, the scorer unfitted).
    """
    from gen_loop.loop.components import build_generator
    from gen_loop.loop.target_data import load_target
    from gen_loop.search.space import build_space

    cfg = compose_run(overrides)
    cache_dir = cache_dir_of(cfg)
    generator, base_params = build_generator(cfg.generator)
    space = build_space(
        cfg.search.space, generator.parameters, cfg.search.fixed, cfg.search.enqueue
    )
    target = load_target(cfg.target, generator, cache_dir)
    embedder, weights = build_demo_embedder(cfg)
    scorer = build_demo_scorer(cfg)
    target_embeddings = None
    if fit:
        target_embeddings = np.asarray(embedder.embed(target.images.images))
        scorer.fit(target_embeddings)
    return Demo(
        cfg=cfg,
        generator=generator,
        base_params={**base_params, **space.fixed},
        space=space,
        target=target,
        hidden=dict(cfg.target.demo.params),
        embedder=embedder,
        weights=weights,
        scorer=scorer,
        target_embeddings=target_embeddings,
    )


def write_json(path: Path | None, result: Mapping[str, Any], indent: int = 2) -> None:
    """Write a benchmark's ``result`` to ``path`` (its folder made); nothing when None."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=indent))


def gen_loop_command(*args: str) -> list[str]:
    """``python -m gen_loop ARGS`` with this interpreter (for the scripts that run the loop)."""
    return [sys.executable, "-m", "gen_loop", *args]


def gen_loop_env(**extra: str) -> dict[str, str]:
    """This process's environment, offline and quiet as the README sets it, plus ``extra``
    (e.g. ``GEN_LOOP_CACHE``)."""
    from gen_loop._env import offline_env

    return {**offline_env(os.environ), **extra}


def run_gen_loop(
    cmd: list[str],
    run_dir: Path,
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    label: str = "run",
    keep_log: bool = False,
) -> tuple[dict[str, Any], float, str]:
    """Run ``cmd`` (a ``gen_loop run`` into ``run_dir``) in ``cwd``; its ``summary.json``,
    wall time and stdout. A failure exits naming ``label`` with the end of its output.

    Args:
        env: the environment (default :func:`gen_loop_env`).
        keep_log: also keep stdout and stderr in ``run_dir/stdout.log``.
    """
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=cwd, env=dict(env or gen_loop_env()), capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    if keep_log:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "stdout.log").write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    if proc.returncode != 0:
        log = f", log in {run_dir}/stdout.log" if keep_log else ""
        raise SystemExit(
            f"{label} failed (rc {proc.returncode}){log}:\n{proc.stdout[-3000:]}\n"
            f"{proc.stderr[-3000:]}"
        )
    return json.loads((run_dir / "summary.json").read_text()), wall, proc.stdout
