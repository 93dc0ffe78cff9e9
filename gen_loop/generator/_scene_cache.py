"""A bounded cache of rendered scenes: trials that share scene seeds render them once."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable

from gen_loop.generator.scene import Scene


class SceneCache:
    """Least-recently-used scenes, at most ``max_bytes`` of image and mask data.

    The search renders the same scene seeds in every trial (common random numbers) and only
    the camera changes, so the scenes (about a quarter to a half of a batch's render time)
    are drawn once. A scene is a pure function of its settings and seed, so a cached one is
    the one that would be drawn again. Callers must not modify what :meth:`get` returns.

    Args:
        max_bytes: the cache's budget; 0 turns it off.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._scenes: OrderedDict[Hashable, Scene] = OrderedDict()
        self._bytes = 0

    def get(self, key: Hashable, render: Callable[[], Scene]) -> Scene:
        """The scene stored under ``key``, rendered by ``render`` (and kept) on a miss."""
        scene = self._scenes.get(key)
        if scene is not None:
            self._scenes.move_to_end(key)
            return scene
        scene = render()
        size = _nbytes(scene)
        if size > self.max_bytes:
            return scene
        while self._bytes + size > self.max_bytes:
            _, old = self._scenes.popitem(last=False)
            self._bytes -= _nbytes(old)
        self._scenes[key] = scene
        self._bytes += size
        return scene

    def __len__(self) -> int:
        return len(self._scenes)


def _nbytes(scene: Scene) -> int:
    return scene.image.nbytes + scene.masks.nbytes + scene.classes.nbytes
