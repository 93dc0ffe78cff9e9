"""``python -m gen_loop run``: the whole loop, from target to fine-tuned detector."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from gen_loop._env import configure_offline, configure_ultralytics, default_cache_dir
from gen_loop.config.schema import RunConfig
from gen_loop.config.validate import check_run_config
from gen_loop.loop.components import build_embedder, build_generator, resolve_weights
from gen_loop.loop.report import final_table
from gen_loop.loop.target_data import TargetData, load_target

log = logging.getLogger(__name__)


def run(cfg: RunConfig) -> dict[str, Any]:
    """Run the loop and return the summary (also written to ``<run_dir>/summary.json``)."""
    check_run_config(cfg)
    run_dir = Path(cfg.run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
    configure_offline(cache_dir)

    from gen_loop.search.space import build_space

    generator, base_params = build_generator(cfg.generator)
    space = build_space(
        cfg.search.space, generator.parameters, cfg.search.fixed, cfg.search.enqueue
    )
    base_params = {**base_params, **space.fixed}
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    target = load_target(cfg.target, generator, cache_dir)  # errors before any heavy work
    timings["target_s"] = time.perf_counter() - clock

    configure_ultralytics()
    weights = resolve_weights(cfg.embedder, cache_dir)
    embedder = build_embedder(cfg.embedder, weights)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))
    print(f"run folder: {run_dir}", flush=True)
    print(f"target: {target.description} ({len(target.images.images)} images)", flush=True)

    from gen_loop.loop.session import LoopSession

    session = LoopSession(
        cfg, run_dir, cache_dir, generator, base_params, space, embedder, weights, target, timings
    )
    summary = session.execute()
    print("\n" + final_table(summary), flush=True)
    print(f"\nsummary: {run_dir / 'summary.json'}", flush=True)
    print(
        f"MLflow:  mlflow ui --backend-store-uri {summary['mlflow']['tracking_uri']}", flush=True
    )
    return summary


__all__ = ["TargetData", "run"]
