"""``python -m gen_loop run``: the whole loop, from target to fine-tuned detector."""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

from gen_loop._env import configure_offline, configure_ultralytics, default_cache_dir
from gen_loop._secrets import install_log_filter
from gen_loop.config.schema import RunConfig
from gen_loop.config.validate import check_run_config
from gen_loop.loop.components import (
    build_embedder,
    build_finetuner,
    build_generator,
    finetune_weights,
    resolve_weights,
)
from gen_loop.loop.summary import RunSummary
from gen_loop.loop.target_data import TargetData, load_target

log = logging.getLogger(__name__)


def run(cfg: RunConfig) -> RunSummary:
    """Run the loop and return the summary (also written to ``<run_dir>/summary.json``)."""
    check_run_config(cfg)
    install_log_filter()  # no database password in the console or <job>.log
    from gen_loop.loop.mlflow_observer import store_uri
    from gen_loop.tracking import check_server, check_writable

    if cfg.tracking.uri:  # a dead tracking server fails here, before any work
        check_server(cfg.tracking.uri)
    check_writable(store_uri(cfg.tracking))  # ... and a read-only or locked SQLite store
    run_dir = Path(cfg.run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
    configure_offline(cache_dir)

    from gen_loop.search.space import build_space

    generator, base_params = build_generator(cfg.generator)
    # Built now: a trainer command that is not found stops the run before the search.
    finetuner = build_finetuner(cfg.finetune) if cfg.finetune.enabled else None
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
    base_weights, no_weights_reason = finetune_weights(cfg, weights)
    from gen_loop.loop.session import LoopSession

    session = LoopSession(
        cfg,
        run_dir,
        cache_dir,
        generator,
        base_params,
        space,
        embedder,
        base_weights,
        target,
        timings,
        finetuner,
        no_weights_reason,
    )
    summary = session.execute()
    while summary.advised is not None:  # search.advice_rounds: the next round, in a subfolder
        from gen_loop.search.advice import ADVISED_DIR, next_round

        search = next_round(cfg.search, summary)
        run_dir = run_dir / ADVISED_DIR  # (a moved run folder resumes where it is now)
        cfg = dataclasses.replace(cfg, search=search, run_dir=str(run_dir))
        space = build_space(search.space, generator.parameters, search.fixed, search.enqueue)
        run_dir.mkdir(parents=True, exist_ok=True)
        session = dataclasses.replace(session, cfg=cfg, run_dir=run_dir, space=space, timings={})
        summary = session.execute()
    return summary


__all__ = ["RunSummary", "TargetData", "run"]
