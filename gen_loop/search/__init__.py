"""Search: Optuna ask/tell over generator parameters, and the convergence rule."""

from gen_loop.search.convergence import Convergence, trial_noise_floor
from gen_loop.search.space import build_space
from gen_loop.search.storage import StudyMutex, make_storage
from gen_loop.search.study import (
    OBJECTIVE_NAME,
    SAMPLERS,
    from_objective,
    make_sampler,
    open_study,
    to_objective,
)
from gen_loop.search.workers import StudyView, claim_finalisation, fail_dead_trials

__all__ = [
    "OBJECTIVE_NAME",
    "SAMPLERS",
    "Convergence",
    "StudyMutex",
    "StudyView",
    "build_space",
    "claim_finalisation",
    "fail_dead_trials",
    "from_objective",
    "make_sampler",
    "make_storage",
    "open_study",
    "to_objective",
    "trial_noise_floor",
]
