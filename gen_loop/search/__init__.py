"""Search: Optuna ask/tell over generator parameters, and the convergence rule."""

from gen_loop.search.convergence import Convergence
from gen_loop.search.space import build_space
from gen_loop.search.study import SAMPLERS, make_sampler, open_study

__all__ = ["SAMPLERS", "Convergence", "build_space", "make_sampler", "open_study"]
