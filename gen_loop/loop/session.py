"""One ``run``: score the target, search, select, fine-tune; observers record it all."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from omegaconf import OmegaConf
from optuna.trial import TrialState

from gen_loop._environment import environment, environment_changes
from gen_loop._secrets import mask_text, mask_url
from gen_loop.config.schema import RunConfig, SearchConfig
from gen_loop.embedder.base import Embedder
from gen_loop.embedder.cache import cached_embeddings
from gen_loop.errors import FinetuneError
from gen_loop.finetune import Finetuner, add_replay
from gen_loop.finetune.verdict import unknown_verdict
from gen_loop.generator.base import Generator
from gen_loop.generator.params import ParamValue
from gen_loop.loop.analysis_stage import analyse_selection
from gen_loop.loop.camera_uncertainty import camera_uncertainty, per_image_residuals
from gen_loop.loop.components import build_scorer
from gen_loop.loop.console import INTERRUPTED, ConsoleObserver
from gen_loop.loop.control_stage import ControlResult, judge_against_control, run_control
from gen_loop.loop.figures import run_figures
from gen_loop.loop.finetune_stage import finetune_stage
from gen_loop.loop.mlflow_observer import MlflowObserver, open_tracker
from gen_loop.loop.observer import FinishOutputs, LoopObserver, Observers, RunStart
from gen_loop.loop.polish_stage import MeasuredJacobian, polish
from gen_loop.loop.resume import distance_parts, earlier_summary, is_finished
from gen_loop.loop.search_loop import SearchOutcome, search
from gen_loop.loop.summary import (
    FinalStage,
    MlflowInfo,
    RunSummary,
    Seeds,
    StudyInfo,
    TargetInfo,
)
from gen_loop.loop.target_data import TargetData
from gen_loop.loop.timing import timed
from gen_loop.loop.trial import TrialSetup
from gen_loop.loop.unsearched import range_bound_hits, unsearched_suspects
from gen_loop.score.scorer import NoiseFloor, Scorer
from gen_loop.search.advice import ADVISED_DIR, advised_space, follows_advice
from gen_loop.search.basins import Basins
from gen_loop.search.convergence import Convergence, trial_noise_floor
from gen_loop.search.floor_quality import FloorQuality, floor_quality
from gen_loop.search.identity import check_identity
from gen_loop.search.space import SearchSpace
from gen_loop.search.storage import StudyMutex, make_storage
from gen_loop.search.study import from_objective, make_sampler, open_study
from gen_loop.search.workers import claim_finalisation, join_study, mark_finalised, superseded
from gen_loop.selection import ranked_params, select_pool

log = logging.getLogger(__name__)


@dataclass
class LoopSession:
    """The built components of one run, and the run itself (:meth:`execute`).

    Attributes:
        cfg: the resolved run config.
        run_dir: the run folder (summary.json, optuna.db, plots, the selected dataset).
        cache_dir: where embeddings and the demo target are cached.
        generator / base_params / space: the generator, its current (source) parameters and
            the search space.
        embedder: the detector's backbone.
        weights: the checkpoint fine-tuning starts from (None: nothing to fine-tune).
        target: the loaded target.
        timings: seconds per stage, filled as the run goes.
        finetuner: fine-tunes and evaluates the best camera's selection (None:
            ``finetune.enabled=false``).
        no_weights_reason: why ``weights`` is None, for the summary and its verdict.
    """

    cfg: RunConfig
    run_dir: Path
    cache_dir: Path
    generator: Generator
    base_params: dict[str, ParamValue]
    space: SearchSpace
    embedder: Embedder
    weights: Path | None
    target: TargetData
    timings: dict[str, float]
    finetuner: Finetuner | None
    no_weights_reason: str

    def execute(self) -> RunSummary:
        """Score the target, search, select and fine-tune; return the summary.

        A run folder whose study is finished (:func:`~gen_loop.loop.resume.is_finished`) is
        shown and left as it is; its stored summary is returned. With
        ``search.advice_rounds`` left and advice to follow, the summary's ``advised`` names
        the next round and this one makes no final stage (:func:`~gen_loop.loop.run.run`
        goes on). Nothing is written before the study has been checked against this run's
        target, embedder and scorer.

        Raises:
            KeyboardInterrupt: after recording the results so far, when the user pressed
                Ctrl-C during the search (the same run folder resumes).
            FinetuneError: after recording the search and a ``failed`` verdict, when the
                fine-tune failed; the final stage is not marked done, so the same run folder
                makes it again (the search is not repeated).
            ConfigError: when the run folder's study was searched against another target,
                embedder or scorer.
            InputDataError: when the run folder's ``summary.json`` cannot be read.
        """
        cfg = self.cfg
        earlier = earlier_summary(self.run_dir)
        scorer, floor, target_emb = timed(self.timings, "target_embed_s", self._fit_scorer)
        n_target = len(target_emb)
        quality = self._floor_quality(floor, n_target)
        convergence = self._convergence(floor, n_target, quality.stop_at_floor)
        storage = cfg.search.storage or f"sqlite:///{self.run_dir / 'optuna.db'}"
        study, mutex = self._open_study(storage)
        console = ConsoleObserver()
        if is_finished(study, convergence, earlier):
            assert earlier is not None
            console.on_already_finished(earlier, self.run_dir, cfg.search.n_trials)
            return earlier
        self._join(study, mutex)
        env = environment()
        self._check_environment(earlier, env)
        # The resolved config, passwords of database/tracking URLs masked.
        (self.run_dir / "config.yaml").write_text(
            mask_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))
        )
        noted = quality if quality.small_target or quality.uncertain else None
        with (
            open_tracker(cfg.tracking, self.run_dir) as tracker,
            MlflowObserver(tracker, cfg.tracking.trial_images, cfg.tracking.experiment) as mlflow,
        ):
            observer = Observers([console, mlflow])
            observer.on_start(
                RunStart(
                    cfg,
                    self.run_dir,
                    self.target,
                    floor,
                    self.embedder.fingerprint,
                    f"{cfg.search.study_name} @ {mask_url(storage)}",
                    noted,
                    env,
                )
            )
            setup = self._trial_setup(scorer)
            outcome = timed(
                self.timings, "search_s", search, study, setup, convergence, observer, mutex
            )
            measured, outcome = self._polish(study, setup, convergence, observer, mutex, outcome)
            summary = self._summarise(study, outcome, floor, storage, mlflow.info())
            summary.floor_quality = noted
            summary.environment = env
            if not outcome.interrupted:
                self._diagnose(summary, study, setup, target_emb, measured, outcome)
            observer.on_search_end(summary)
            # Until this run has a final stage of its own, the earlier one stays recorded.
            summary.keeping(earlier).write(self.run_dir / "summary.json")
            if outcome.interrupted:
                raise KeyboardInterrupt
            result, failure = summary, None
            if summary.best_trial is not None and self._claim(study, mutex, summary):
                if summary.advised is None:  # else the last round makes the final stage
                    failure = self._finish(summary, study, scorer, observer)
                if failure is None:
                    with mutex.hold():
                        mark_finalised(study, cfg.search.n_trials)
            else:
                result = summary.keeping(earlier)
            result.mlflow = mlflow.info()
            result.write(self.run_dir / "summary.json")
            observer.on_end(result)
            if failure is not None:  # the MLflow run ends FAILED, the summary is written
                raise failure
        return result

    def _check_environment(self, earlier: RunSummary | None, env: dict[str, str]) -> None:
        """Warn when the run folder was searched before on another machine or stack: its
        earlier trials' distances can differ from this session's from the fifth digit on, so
        a comparison of two sessions' trials mixes the machines (the study continues)."""
        moved = environment_changes(earlier.environment if earlier else None, env)
        if moved:
            log.warning(
                "%s was searched before on another machine or stack (%s): distances of its "
                "earlier trials can differ from this session's from the fifth digit on; the "
                "study continues, and summary.json's environment records this session's",
                self.run_dir,
                "; ".join(moved),
            )

    def _polish(
        self,
        study: optuna.Study,
        setup: TrialSetup,
        convergence: Convergence,
        observer: LoopObserver,
        mutex: StudyMutex,
        outcome: SearchOutcome,
    ) -> tuple[MeasuredJacobian | None, SearchOutcome]:
        """The polish trial (``search.polish``, :mod:`gen_loop.loop.polish_stage`) after a
        search that ended converged or on a plateau; Ctrl-C during it ends the search as
        interrupted (the trial is re-queued for the next run)."""
        if outcome.interrupted or not self.cfg.search.polish:
            return None, outcome
        try:
            measured = timed(
                self.timings,
                "polish_s",
                polish,
                study,
                setup,
                convergence,
                observer,
                mutex,
                outcome.stop_reason,
            )
        except KeyboardInterrupt:
            return None, SearchOutcome(INTERRUPTED, outcome.n_failed, interrupted=True)
        return measured, outcome

    def _diagnose(
        self,
        summary: RunSummary,
        study: optuna.Study,
        setup: TrialSetup,
        target_emb: np.ndarray,
        measured: MeasuredJacobian | None,
        outcome: SearchOutcome,
    ) -> None:
        """Fill ``summary``'s diagnosis of a search that was not interrupted: the unsearched
        suspects and range bounds (above the floor), the parameters' uncertainty
        (``search.uncertainty``) and the next round's advice (``search.advice_rounds``)."""
        converged = outcome.stop_reason.startswith("converged")
        summary.unsearched_suspects = unsearched_suspects(summary, setup, converged)
        summary.at_range_bounds = range_bound_hits(summary, setup, converged)
        if self.cfg.search.uncertainty:
            summary.parameter_uncertainty = timed(
                self.timings,
                "uncertainty_s",
                camera_uncertainty,
                study,
                summary,
                setup,
                per_image_residuals(setup.scorer, target_emb),
                measured,
            )
        summary.advised = self._advice(summary, converged)

    def _advice(self, summary: RunSummary, converged: bool) -> dict[str, Any] | None:
        """The next round when the run follows its own advice (``search.advice_rounds``),
        the search ended on a plateau or its trial budget (a time budget or failures end the
        run as they are) and the advice changes the space
        (:func:`~gen_loop.search.advice.advised_space`)."""
        s = self.cfg.search
        if s.advice_rounds < 1 or converged or summary.best_trial is None:
            return None
        if not follows_advice(summary.stop_reason):
            return None
        advice = advised_space(s.space, summary.unsearched_suspects, summary.at_range_bounds)
        if advice is None:
            return None
        return {
            "run_dir": str(self.run_dir / ADVISED_DIR),
            "overrides": advice.overrides,
            "from_best": s.advice_from_best,
        }

    def _fit_scorer(self) -> tuple[Scorer, NoiseFloor, np.ndarray]:
        """Embed the target (cached), fit the scorer, measure the noise floor; returns the
        target's embeddings too."""
        cfg = self.cfg
        images = self.target.images
        target_emb = cached_embeddings(
            self.embedder, images.images, images.fingerprint, self.cache_dir
        )
        scorer = build_scorer(cfg.score).fit(target_emb)
        floor = scorer.noise_floor(
            cfg.search.batch_size,
            cfg.score.noise_floor_splits,
            np.random.default_rng(cfg.search.seed),
        )
        return scorer, floor, target_emb

    def _open_study(self, storage: str) -> tuple[optuna.Study, StudyMutex]:
        """Open (or resume) the study, trial 0 at the current parameters; check that it was
        searched against this run's target, embedder and scorer (a new one records them)."""
        s = self.cfg.search
        start = self.space.restrict(self.base_params)
        priors = [self.space.restrict({**self.base_params, **p}) for p in self.space.priors]
        mutex = StudyMutex(storage, s.study_name)
        where = str(self.run_dir) if s.storage is None else f"study {s.study_name!r}"
        parts = distance_parts(self.cfg, self.target, self.embedder)
        with mutex.hold():
            study = open_study(s.study_name, _storage(storage, s), None, start, priors)
            check_identity(study, parts, where)
        return study, mutex

    def _join(self, study: optuna.Study, mutex: StudyMutex) -> None:
        """Join the study as one more worker session; seed its sampler by arrival."""
        s = self.cfg.search
        with mutex.hold():
            joined = join_study(study)
        # one Sobol design for the study; tpe, gp and random draw apart per worker session and
        # resumed run, vector_gp draws each proposal from (search.seed, trial number)
        study.sampler = make_sampler(
            s.sampler,
            s.seed + joined,
            s.n_startup_trials,
            s.multivariate,
            design_seed=s.seed,
            parallel_proposals=s.parallel_proposals,
        )

    def _trial_setup(self, scorer: Scorer) -> TrialSetup:
        s = self.cfg.search
        return TrialSetup(
            generator=self.generator,
            embedder=self.embedder,
            scorer=scorer,
            base_params=self.base_params,
            space=self.space,
            batch_size=s.batch_size,
            scene_seed=s.scene_seed,
            max_consecutive_failures=s.max_consecutive_failures,
            scene_seeds=s.scene_seeds,
            refine=s.refine,
        )

    def _floor_quality(self, floor: NoiseFloor, n_target: int) -> FloorQuality:
        s = self.cfg.search
        return floor_quality(
            floor.mean,
            floor.std,
            floor.batch_size,
            n_target,
            s.batch_size,
            s.stop_at_uncertain_floor,
        )

    def _convergence(self, floor: NoiseFloor, n_target: int, stop_at_floor: bool) -> Convergence:
        s = self.cfg.search
        return Convergence(
            # The floor as a trial is scored: batch_size against all target embeddings.
            noise_floor=trial_noise_floor(
                floor.mean, floor.batch_size, n_target, s.batch_size, self.cfg.score.metric
            ),
            floor_factor=s.floor_factor,
            patience=s.patience,
            min_rel_improvement=s.min_rel_improvement,
            n_trials=s.n_trials,
            timeout_s=s.timeout_s,
            stop_at_floor=stop_at_floor,
        )

    def _claim(self, study: optuna.Study, mutex: StudyMutex, summary: RunSummary) -> bool:
        """Take the study's final select/fine-tune, or record which worker has it."""
        with mutex.hold():
            holder = claim_finalisation(study, self.cfg.search.n_trials, str(self.run_dir))
        summary.finalised_by = holder
        return holder is None

    def _summarise(
        self,
        study: optuna.Study,
        outcome: SearchOutcome,
        floor: NoiseFloor,
        storage: str,
        mlflow: MlflowInfo,
    ) -> RunSummary:
        cfg = self.cfg
        done = [t for t in study.trials if t.state == TrialState.COMPLETE]
        best = min(done, key=lambda t: t.value) if done else None  # type: ignore[arg-type,return-value]
        start = next((t for t in done if t.user_attrs.get("role") == "start"), None)
        best_params = {**self.base_params, **(best.params if best else {})}
        hidden = self.target.hidden_params
        searched = self.space.distributions
        images = self.target.images
        return RunSummary(
            best_params={k: best_params[k] for k in searched},
            all_params=best_params,
            best_distance=from_objective(best.value) if best else None,  # type: ignore[arg-type]
            best_trial=best.number if best else None,
            default_distance=from_objective(start.value) if start else None,  # type: ignore[arg-type]
            default_params=self.space.restrict(self.base_params),
            noise_floor=floor,
            n_trials=len(study.trials),
            n_failed=outcome.n_failed,
            n_retried=len(superseded(study.trials)),
            # search.refine: trials proposed by the least-squares stage, and the best's stage
            n_refine_trials=sum(t.user_attrs.get("stage") == "refine" for t in study.trials),
            best_stage=best.user_attrs.get("stage") if best else None,
            stop_reason=outcome.stop_reason,
            selected_count=0,
            pool_size=0,
            evaluation={},
            verdict=unknown_verdict("unknown: not fine-tuned by this run"),
            target=TargetInfo(
                self.target.description,
                len(images.images),
                len(images.skipped),
                images.fingerprint,
            ),
            mlflow=mlflow,
            study=StudyInfo(cfg.search.study_name, mask_url(storage)),
            seeds=Seeds(cfg.search.scene_seed, cfg.selection.pool_seed, cfg.search.seed),
            timings_s=self.timings,
            run_dir=str(self.run_dir),
            target_hidden_params={k: hidden[k] for k in searched} if hidden else None,
            recovery_error=self.space.range_errors(best_params, hidden) if hidden else None,
            left_basins=list(Basins.of(study).left) or None,
        )

    def _finish(
        self, summary: RunSummary, study: optuna.Study, scorer: Scorer, observer: LoopObserver
    ) -> FinetuneError | None:
        """Plots, selection, fine-tune and evaluation of the best camera; the verdict.

        Returns the fine-tune's error when it failed (the summary then has a ``failed``
        verdict and the base detector as its result), else None.
        """
        cfg = self.cfg
        plot_files = run_figures(
            study,
            summary,
            self.target.images.images,
            self.generator,
            cfg.search.scene_seed,
            cfg.search.batch_size,
            self.run_dir,
        )
        selection = timed(
            self.timings,
            "selection_s",
            select_pool,
            self.generator,
            self.embedder,
            scorer,
            summary.all_params,
            cfg.selection,
            cfg.finetune.val_fraction,
            self.run_dir / "selected",
            ranked_params(study, self.base_params, cfg.selection.pool_trials)[1:],
            self.space,
        )
        summary.selected_count = len(selection.batch)
        summary.replay_count = add_replay(
            selection,
            self.generator,
            dict(self.base_params),
            cfg.finetune,
            cfg.selection.pool_seed + 7919,  # a seed of its own: not the pool's scenes
        )
        summary.pool_size = selection.pool_size
        summary.selection_threshold = selection.threshold
        if cfg.analysis.enabled:
            summary.analysis = timed(
                self.timings,
                "analysis_s",
                analyse_selection,
                cfg,
                summary,
                study,
                selection.batch,
                self.target,
                self.base_params,
                self.generator,
                self.embedder,
                self.weights,
                self.cache_dir,
                self.run_dir,
            )
        done = finetune_stage(
            summary,
            selection,
            self.finetuner,
            self.weights,
            self.no_weights_reason,
            cfg.embedder.model,
            self.target.labels_yaml,
            self.run_dir / "finetune",
            cfg.finetune,
            lambda judged: self._control(judged, scorer),
            self.timings,
        )
        summary.final_stage = FinalStage(cfg.search.n_trials, summary.n_trials, summary.best_trial)
        outputs = FinishOutputs(plot_files, selection.manifest, done.weights, done.control_weights)
        observer.on_finish(summary, outputs)
        return done.failure

    def _control(self, summary: RunSummary, scorer: Scorer) -> Path | None:
        """Fine-tune the domain-randomised control (``finetune.control=randomised``) on as many
        images as the selection, and judge the loop's fine-tune against it too."""
        cfg = self.cfg
        assert self.finetuner is not None and self.weights is not None
        assert self.target.labels_yaml is not None
        finetuner, weights, labels = self.finetuner, self.weights, self.target.labels_yaml

        def control() -> ControlResult:
            return timed(
                self.timings,
                "control_s",
                run_control,
                self.generator,
                self.embedder,
                scorer,
                self.space,
                self.base_params,
                cfg,
                finetuner,
                weights,
                labels,
                summary.selected_count,
                self.run_dir / "control",
            )

        return judge_against_control(summary, control, cfg.finetune.require_gain)


def _storage(url: str, s: SearchConfig) -> optuna.storages.BaseStorage:
    """The study's storage; heartbeats only where workers of several processes meet.

    A SQLite file lives on one machine: a dead worker there is found by its process id at
    once (``fail_dead_trials``), and a heartbeat thread would only add write contention.
    """
    beats = not url.startswith("sqlite")
    return make_storage(
        url, s.heartbeat_interval_s if beats else None, s.grace_period_s if beats else None
    )
