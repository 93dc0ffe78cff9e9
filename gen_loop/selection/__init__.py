"""Selection: the generated samples closest to the target."""

from gen_loop.selection.dataset import Selection, write_selection
from gen_loop.selection.pool import randomised_selection, ranked_params, select_pool
from gen_loop.selection.select import SELECTION_METHODS, closest_camera, select_closest

__all__ = [
    "SELECTION_METHODS",
    "Selection",
    "closest_camera",
    "randomised_selection",
    "ranked_params",
    "select_closest",
    "select_pool",
    "write_selection",
]
