"""``python -m gen_loop run``: the whole loop, from target to fine-tuned detector."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from gen_loop._env import configure_offline, configure_ultralytics, default_cache_dir
from gen_loop._secrets import install_log_filter, mask_text
from gen_loop.config.schema import RunConfig
from gen_loop.config.validate import check_run_config
from gen_loop.loop.components import build_embedder, build_generator, resolve_weights
from gen_loop.loop.report import final_table
from gen_loop.loop.target_data import TargetData, load_target

log = logging.getLogger(__name__)


def run(cfg: RunConfig) -> dict[str, Any]:
    """Run the loop and return the summary (also written to ``<run_dir>/summary.json``)."""
    check_run_config(cfg)
    install_log_filter()  # no database password in the console or <job>.log
    if cfg.tracking.uri:  # a dead tracking server fails here, before any work
        from gen_loop.tracking import check_server

        check_server(cfg.tracking.uri)
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
    # The resolved config, passwords of database/tracking URLs masked.
    (run_dir / "config.yaml").write_text(mask_text(OmegaConf.to_yaml(OmegaConf.structured(cfg))))
    print(f"run folder: {run_dir}", flush=True)
    print(f"target: {target.description} ({len(target.images.images)} images)", flush=True)

    from gen_loop.loop.session import LoopSession

    session = LoopSession(
        cfg, run_dir, cache_dir, generator, base_params, space, embedder, weights, target, timings
    )
    summary = session.execute()
    print("\n" + final_table(summary), flush=True)
    print(f"\nsummary: {run_dir / 'summary.json'}", flush=True)
    uri = summary["mlflow"]["tracking_uri"]
    if uri.startswith(("http://", "https://")):
        print(f"MLflow:  {uri}/#/experiments/{summary['mlflow'].get('experiment_id', '')}")
    else:
        print(f"MLflow:  mlflow ui --backend-store-uri {uri}", flush=True)
    lost = summary["mlflow"].get("lost_logs") or {}
    if lost.get("n_trials") or lost.get("run_logs"):
        print(
            f"warning: the MLflow store {uri} was unreachable during the run: logs of "
            f"{lost['n_trials']} trial(s) and {lost['run_logs']} run-level log call(s) were "
            "lost (summary.json: mlflow.lost_logs). The Optuna study has every trial.",
            flush=True,
        )
    return summary


__all__ = ["TargetData", "run"]
