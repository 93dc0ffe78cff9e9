"""Selection: the generated samples closest to the target."""

from gen_loop.selection.select import SELECTION_METHODS, closest_camera, select_closest

__all__ = ["SELECTION_METHODS", "closest_camera", "select_closest"]
