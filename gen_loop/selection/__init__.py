"""Selection: the generated samples closest to the target."""

from gen_loop.selection.select import SELECTION_METHODS, select_closest

__all__ = ["SELECTION_METHODS", "select_closest"]
