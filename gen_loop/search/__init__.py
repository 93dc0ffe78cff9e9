"""Search: Optuna ask/tell over generator parameters, and the convergence rule."""

from gen_loop.search.convergence import Convergence
from gen_loop.search.space import build_space
from gen_loop.search.study import (
    OBJECTIVE_NAME,
    SAMPLERS,
    from_objective,
    make_sampler,
    open_study,
    to_objective,
)

__all__ = [
    "OBJECTIVE_NAME",
    "SAMPLERS",
    "Convergence",
    "build_space",
    "from_objective",
    "make_sampler",
    "open_study",
    "to_objective",
]
