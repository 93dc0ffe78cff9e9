"""Optuna study and sampler: seeded, stored, resumable."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import optuna

from gen_loop.errors import ConfigError

SAMPLERS = ("tpe", "gp", "random", "qmc")
OBJECTIVE_NAME = "log_distance"


def to_objective(distance: float) -> float:
    """The value the study minimises: log of the distance.

    Distances rise by 10-40x the noise floor over a parameter's range, so a Gaussian process
    models their log far better (measured: GP reached 4.8x the floor in 100 trials on the log
    against 13.9x on the raw distance); TPE, CMA-ES, random and QMC only use ranks and are
    unaffected. The distance itself is kept as the trial's ``distance`` user attribute.
    """
    return math.log(max(distance, 1e-300))


def from_objective(value: float) -> float:
    """The distance of a stored trial value."""
    return math.exp(value)


def make_sampler(
    kind: str, seed: int, n_startup_trials: int, multivariate: bool
) -> optuna.samplers.BaseSampler:
    """The search's sampler.

    TPE is multivariate (models parameter interactions such as exposure vs gamma) with
    ``n_startup_trials`` random trials first. GP (Gaussian-process Bayesian optimisation) suits
    the loop's deterministic, continuous, low-dimensional objective; random and scrambled-Sobol
    QMC are baselines.
    """
    with warnings.catch_warnings():  # multivariate/group/constant_liar are "experimental"
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if kind == "tpe":
            return optuna.samplers.TPESampler(
                seed=seed,
                n_startup_trials=n_startup_trials,
                multivariate=multivariate,
                group=multivariate,
                constant_liar=True,  # several workers on one study don't pile onto one point
            )
        if kind == "gp":
            return optuna.samplers.GPSampler(seed=seed, n_startup_trials=n_startup_trials)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "qmc":
        return optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=seed)
    raise ConfigError("search.sampler", f"{kind!r}: use one of {list(SAMPLERS)}")


def open_study(
    name: str,
    storage: str | optuna.storages.BaseStorage,
    sampler: optuna.samplers.BaseSampler | None,
    start_params: Mapping[str, object],
    priors: Sequence[Mapping[str, object]] = (),
) -> optuna.Study:
    """Create the study, or load it when ``name`` already exists in ``storage`` (resume).

    A new study gets the generator's current parameters enqueued as trial 0, so every study
    shows how far the starting point is from the target, then the ``priors`` (other known
    settings) in order.
    """
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=sampler,
        direction="minimize",
        load_if_exists=True,
    )
    if not study.trials:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([OBJECTIVE_NAME])
        study.enqueue_trial(dict(start_params), user_attrs={"role": "start"})
        for prior in priors:
            study.enqueue_trial(dict(prior), user_attrs={"role": "prior"})
    return study
