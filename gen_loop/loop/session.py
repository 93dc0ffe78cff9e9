"""One ``run``: score the target, search, select, fine-tune, and record it all."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from omegaconf import OmegaConf
from optuna.distributions import BaseDistribution
from optuna.trial import TrialState

from gen_loop._secrets import mask_url as _mask
from gen_loop.config.schema import RunConfig
from gen_loop.embedder.base import Embedder
from gen_loop.embedder.cache import cached_embeddings
from gen_loop.finetune.verdict import Verdict, gain_verdict, unknown_verdict
from gen_loop.generator.base import Generator
from gen_loop.generator.params import ParamValue
from gen_loop.loop.components import build_scorer
from gen_loop.loop.finish import (
    add_replay,
    finetune_and_evaluate,
    ranked_params,
    select_pool,
)
from gen_loop.loop.report import write_summary
from gen_loop.loop.search_loop import SearchOutcome, TrialSetup, search
from gen_loop.loop.target_data import TargetData
from gen_loop.score.scorer import NoiseFloor, Scorer
from gen_loop.search.convergence import Convergence, trial_noise_floor
from gen_loop.search.space import SearchSpace
from gen_loop.search.storage import StudyMutex, make_storage
from gen_loop.search.study import from_objective, make_sampler, open_study
from gen_loop.search.workers import (
    claim_finalisation,
    join_study,
    mark_finalised,
    superseded,
)
from gen_loop.tracking import plots
from gen_loop._git import git_commit
from gen_loop.tracking import Tracker

log = logging.getLogger(__name__)


class LoopSession:
    """Holds the built components of one run and executes it step by step."""

    def __init__(
        self,
        cfg: RunConfig,
        run_dir: Path,
        cache_dir: Path,
        generator: Generator,
        base_params: dict[str, ParamValue],
        space: SearchSpace,
        embedder: Embedder,
        weights: Path | None,
        target: TargetData,
        timings: dict[str, float],
    ) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.cache_dir = cache_dir
        self.generator = generator
        self.base_params = base_params
        self.space = space
        self.embedder = embedder
        self.weights = weights
        self.target = target
        self.timings = timings

    def execute(self) -> dict[str, Any]:
        """Score the target, search, select and fine-tune; return the summary."""
        cfg = self.cfg
        clock = time.perf_counter()
        target_emb = cached_embeddings(
            self.embedder,
            self.target.images.images,
            self.target.images.fingerprint,
            self.cache_dir,
        )
        scorer = build_scorer(cfg.score).fit(target_emb)
        floor = scorer.noise_floor(
            cfg.search.batch_size,
            cfg.score.noise_floor_splits,
            np.random.default_rng(cfg.search.seed),
        )
        self.timings["target_embed_s"] = time.perf_counter() - clock
        print(
            f"noise floor: {floor.mean:.4f} ± {floor.std:.4f} "
            f"(batch {floor.batch_size}, {floor.n_splits} splits)",
            flush=True,
        )

        tracking_uri = cfg.tracking.uri or f"sqlite:///{Path.cwd() / 'mlflow.db'}"
        storage = cfg.search.storage or f"sqlite:///{self.run_dir / 'optuna.db'}"
        with Tracker(
            tracking_uri,
            cfg.tracking.experiment,
            self.run_dir.name,
            artifact_location=cfg.tracking.artifact_location,
            resume_run_id=self._previous_run_id(),
            parent_run_id=cfg.tracking.parent_run_id,
        ) as tracker:
            (self.run_dir / "mlflow_run_id").write_text(tracker.run_id)
            self._log_start(tracker, floor, storage)
            start = self.space.restrict(self.base_params)
            priors = [self.space.restrict({**self.base_params, **p}) for p in self.space.priors]
            mutex = StudyMutex(storage, cfg.search.study_name)
            with mutex.hold():
                study = open_study(
                    cfg.search.study_name, _storage(storage, cfg), None, start, priors
                )
                joined = join_study(study)
            study.sampler = make_sampler(
                cfg.search.sampler,
                cfg.search.seed + joined,  # distinct draws per worker and per resumed run
                cfg.search.n_startup_trials,
                cfg.search.multivariate,
            )
            convergence = Convergence(
                # The floor as a trial is scored: batch_size against all target embeddings.
                noise_floor=trial_noise_floor(
                    floor.mean,
                    floor.batch_size,
                    len(target_emb),
                    cfg.search.batch_size,
                    cfg.score.metric,
                ),
                floor_factor=cfg.search.floor_factor,
                patience=cfg.search.patience,
                min_rel_improvement=cfg.search.min_rel_improvement,
                n_trials=cfg.search.n_trials,
                timeout_s=cfg.search.timeout_s,
            )
            setup = TrialSetup(
                self.generator,
                self.embedder,
                scorer,
                self.base_params,
                self.space,
                cfg.search.batch_size,
                cfg.search.scene_seed,
                cfg.tracking.trial_images,
                cfg.search.max_consecutive_failures,
                cfg.search.scene_seeds,
                cfg.search.refine,
            )
            clock = time.perf_counter()
            outcome = search(study, setup, convergence, tracker, mutex)
            self.timings["search_s"] = time.perf_counter() - clock
            summary = self._summarise(study, outcome, floor, tracker, storage)
            tracker.set_tags({"gen_loop.stop_reason": outcome.stop_reason})
            if summary["best_distance"] is not None:
                tracker.log_metrics(
                    {
                        "final_best_distance": summary["best_distance"],
                        "default_distance": summary["default_distance"] or float("nan"),
                        "best_over_floor": summary["best_distance"] / floor.mean,
                    }
                )
            self._write(summary, tracker)
            if outcome.interrupted:
                print(
                    "interrupted: results so far are kept; run again with the same "
                    f"hydra.run.dir={self.run_dir} to resume",
                    flush=True,
                )
                raise KeyboardInterrupt
            if summary["best_trial"] is not None and self._claim(study, mutex, summary):
                self._finish(summary, study, scorer, tracker)
                with mutex.hold():
                    mark_finalised(study, cfg.search.n_trials)
            tracker.log_metrics({k: v for k, v in self.timings.items()})
            self._write(summary, tracker)
            tracker.log_artifact(self.run_dir / "summary.json")
        return summary

    def _claim(self, study, mutex: StudyMutex, summary: dict[str, Any]) -> bool:
        """Take the study's final select/fine-tune, or say which worker has it."""
        with mutex.hold():
            holder = claim_finalisation(study, self.cfg.search.n_trials, str(self.run_dir))
        if holder is None:
            return True
        summary["finalised_by"] = holder
        done = "finalised" if holder.get("done") else "finalises"
        print(
            f"another worker {done} the study: {holder['host']}:{holder['pid']} "
            f"({holder['run_dir']})",
            flush=True,
        )
        return False

    def _previous_run_id(self) -> str | None:
        marker = self.run_dir / "mlflow_run_id"
        return marker.read_text().strip() if marker.exists() else None

    def _log_start(self, tracker: Tracker, floor: NoiseFloor, storage: str) -> None:
        cfg = self.cfg
        params = OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)
        assert isinstance(params, dict)
        for group, key in (("search", "storage"), ("tracking", "uri")):
            if params[group][key]:  # no database password in MLflow params
                params[group][key] = _mask(params[group][key])
        changed = tracker.log_params({str(k): v for k, v in params.items()})
        if changed:  # a resumed run with other settings: config.yaml holds the new ones
            tracker.set_tags({"gen_loop.changed_on_resume": ", ".join(changed)})
        tracker.log_artifact(self.run_dir / "config.yaml")
        tracker.set_tags(
            {
                "gen_loop.target_fingerprint": self.target.images.fingerprint,
                "gen_loop.target": self.target.description,
                "gen_loop.embedder": self.embedder.fingerprint,
                "gen_loop.study": f"{cfg.search.study_name} @ {_mask(storage)}",
                "gen_loop.run_dir": str(self.run_dir),
                "mlflow.source.git.commit": git_commit(Path(__file__)) or "unknown",
            }
        )
        tracker.log_metrics(
            {
                "noise_floor": floor.mean,
                "noise_floor_std": floor.std,
                "n_target_images": float(len(self.target.images.images)),
            }
        )

    def _summarise(
        self, study, outcome: SearchOutcome, floor: NoiseFloor, tracker: Tracker, storage: str
    ) -> dict[str, Any]:
        done = [t for t in study.trials if t.state == TrialState.COMPLETE]
        best = min(done, key=lambda t: t.value) if done else None
        start = next((t for t in done if t.user_attrs.get("role") == "start"), None)
        best_params = {**self.base_params, **(best.params if best else {})}
        hidden = self.target.hidden_params
        summary: dict[str, Any] = {
            "best_params": {k: best_params[k] for k in self.space.distributions},
            "all_params": best_params,
            "best_distance": from_objective(best.value) if best else None,
            "best_trial": best.number if best else None,
            "default_distance": from_objective(start.value) if start else None,
            "default_params": self.space.restrict(self.base_params),
            "noise_floor": asdict(floor) | {"values": list(floor.values)},
            "n_trials": len(study.trials),
            "n_failed": outcome.n_failed,
            "n_retried": len(superseded(study.trials)),
            # search.refine: trials proposed by the least-squares stage, and the best's stage
            "n_refine_trials": sum(t.user_attrs.get("stage") == "refine" for t in study.trials),
            "best_stage": best.user_attrs.get("stage") if best else None,
            "stop_reason": outcome.stop_reason,
            "selected_count": 0,
            "pool_size": 0,
            "evaluation": {},
            "verdict": asdict(unknown_verdict("unknown: not fine-tuned by this run")),
            "target": {
                "description": self.target.description,
                "n_images": len(self.target.images.images),
                "skipped": len(self.target.images.skipped),
                "fingerprint": self.target.images.fingerprint,
            },
            "mlflow": {
                "run_id": tracker.run_id,
                "tracking_uri": tracker.tracking_uri,
                "experiment_id": tracker.experiment_id,
                "experiment": self.cfg.tracking.experiment,
            },
            "study": {"name": self.cfg.search.study_name, "storage": _mask(storage)},
            "seeds": {
                "scene_seed": self.cfg.search.scene_seed,
                "pool_seed": self.cfg.selection.pool_seed,
                "search_seed": self.cfg.search.seed,
            },
            "timings_s": self.timings,
            "run_dir": str(self.run_dir),
        }
        if hidden is not None:
            searched = self.space.distributions
            summary["target_hidden_params"] = {k: hidden[k] for k in searched}
            summary["recovery_error"] = _recovery_error(best_params, hidden, searched)
        return summary

    def _finish(self, summary: dict[str, Any], study, scorer: Scorer, tracker: Tracker) -> None:
        cfg = self.cfg
        self._log_plots(study, summary, scorer, tracker)
        clock = time.perf_counter()
        selection = select_pool(
            self.generator,
            self.embedder,
            scorer,
            summary["all_params"],
            cfg.selection,
            cfg.finetune.val_fraction,
            self.run_dir / "selected",
            ranked_params(study, self.base_params, cfg.selection.pool_trials)[1:],
        )
        self.timings["selection_s"] = time.perf_counter() - clock
        summary["selected_count"] = len(selection.batch)
        summary["replay_count"] = add_replay(
            selection,
            self.generator,
            dict(self.base_params),
            cfg.finetune,
            cfg.selection.pool_seed + 7919,  # a seed of its own: not the pool's scenes
        )
        summary["pool_size"] = selection.pool_size
        summary["selection_threshold"] = selection.threshold
        tracker.log_artifact(selection.manifest, "selection")
        tracker.log_metrics(
            {
                "selected_count": float(len(selection.batch)),
                "selection_threshold": selection.threshold,
            }
        )
        if not cfg.finetune.enabled:
            summary["evaluation"] = {"skipped": "fine-tuning disabled (finetune.enabled=false)"}
            _record_verdict(summary, unknown_verdict("unknown: fine-tuning disabled"), tracker)
            return
        if self.weights is None:
            summary["evaluation"] = {"skipped": "no base weights (embedder.weights=random)"}
            _record_verdict(summary, unknown_verdict("unknown: no base weights"), tracker)
            return
        clock = time.perf_counter()
        device = _train_device(cfg.finetune.device)
        weights, evaluation = finetune_and_evaluate(
            self.weights,
            cfg.embedder.model,
            selection,
            self.target.labels_yaml,
            cfg.finetune,
            device,
            self.run_dir / "finetune",
        )
        self.timings["finetune_s"] = time.perf_counter() - clock
        summary["evaluation"] = evaluation
        summary["finetuned_weights"] = str(weights)
        for stage in ("before", "after"):
            if stage in evaluation:
                tracker.log_metrics({f"{stage}_{k}": v for k, v in evaluation[stage].items()})
        verdict = gain_verdict(evaluation, cfg.finetune.min_gain, cfg.finetune.require_gain)
        _record_verdict(summary, verdict, tracker)
        # Rejected weights stay on disk and in MLflow, but not under the result's name.
        summary["result_weights"] = str(weights if verdict.accepted else self.weights)
        tracker.log_artifact(weights, "finetuned" if verdict.accepted else "rejected")

    def _log_plots(self, study, summary: dict[str, Any], scorer: Scorer, tracker: Tracker) -> None:
        done = [t for t in study.trials if t.state == TrialState.COMPLETE]
        history = plots.history_figure(
            [t.number for t in done],
            [from_objective(t.value) for t in done],
            summary["noise_floor"]["mean"],
            summary["default_distance"],
            [str(t.user_attrs.get("stage", "sampler")) for t in done],
        )
        tracker.log_image(history, "plots/optimization_history.png")
        if len(done) >= 3:
            import optuna

            try:
                importances = optuna.importance.get_param_importances(study)
                tracker.log_image(
                    plots.importance_figure(importances), "plots/param_importances.png"
                )
                summary["param_importances"] = importances
            except (RuntimeError, ValueError) as err:  # e.g. all values equal
                log.warning("parameter importances not computed: %s", err)
        k = min(8, len(self.target.images.images), self.cfg.search.batch_size)
        best = self.generator.generate(summary["all_params"], k, self.cfg.search.scene_seed)
        grid = plots.side_by_side(
            plots.image_grid(self.target.images.images[:k], ncols=4),
            plots.image_grid(best.images, ncols=4, boxes=best.labels),
            ("target", "best batch"),
        )
        tracker.log_image(grid, "plots/target_vs_best.png")
        plots.save_png(grid, self.run_dir / "target_vs_best.png")
        plots.save_png(history, self.run_dir / "optimization_history.png")

    def _write(self, summary: dict[str, Any], tracker: Tracker | None = None) -> None:
        if tracker is not None:  # what did not reach MLflow (the study has every trial)
            summary["mlflow"]["lost_logs"] = tracker.lost_logs
        write_summary(self.run_dir / "summary.json", summary)


def _record_verdict(summary: dict[str, Any], verdict: Verdict, tracker: Tracker) -> None:
    """The fine-tune's verdict in summary.json, as a parent-run tag, and on the console."""
    summary["verdict"] = asdict(verdict)
    tracker.set_tags({"gen_loop.verdict": verdict.status})
    print(f"verdict: {verdict.message}", flush=True)


def _recovery_error(
    found: Mapping[str, ParamValue],
    hidden: Mapping[str, ParamValue],
    space: Mapping[str, BaseDistribution],
) -> dict[str, float]:
    """|found - hidden| / search range, per searched numeric parameter."""
    errors = {}
    for name, dist in space.items():
        low, high = getattr(dist, "low", None), getattr(dist, "high", None)
        if low is None or high is None:
            continue
        errors[name] = abs(float(found[name]) - float(hidden[name])) / (high - low)
    return errors


def _storage(url: str, cfg: RunConfig) -> optuna.storages.BaseStorage:
    """The study's storage; heartbeats only where workers of several processes meet.

    A SQLite file lives on one machine: a dead worker there is found by its process id at
    once (``fail_dead_trials``), and a heartbeat thread would only add write contention.
    """
    beats = not url.startswith("sqlite")
    return make_storage(
        url,
        cfg.search.heartbeat_interval_s if beats else None,
        cfg.search.grace_period_s if beats else None,
    )


def _train_device(device: str) -> str:
    from gen_loop.embedder.yolo import resolve_device

    resolved = resolve_device(device)
    return "cpu" if resolved.type == "cpu" else str(resolved.index or 0)
