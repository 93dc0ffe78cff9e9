"""The config fields with a fixed set of values, as enums.

Composition rejects any other value with a message naming the key and the valid values, and
the enum is the one list of those values (the code that implements them is checked against it
in the tests).
"""

from enum import Enum


class Choice(str, Enum):
    """A config value out of a fixed set: equal to, printed and formatted as its plain string
    (``Sampler.tpe == "tpe"``, ``f"{Sampler.tpe}" == "tpe"``); member names equal values, since
    OmegaConf converts a YAML or command-line string to the member of that name."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class CentroidMetric(Choice):
    """``score.metric`` of ``score=centroid`` (``gen_loop.score.CentroidScorer``)."""

    zscore_l2 = "zscore_l2"
    l2 = "l2"
    cosine = "cosine"


class Kernel(Choice):
    """``score.kernel`` of ``score=mmd`` / ``score=kid`` (``gen_loop.score.MMDScorer``)."""

    rbf = "rbf"
    poly = "poly"  # the KID kernel (x.y/D + 1)^3


class Sampler(Choice):
    """``search.sampler`` (``gen_loop.search.study.REGISTRY``)."""

    vector_gp = "vector_gp"
    tpe = "tpe"
    gp = "gp"
    random = "random"
    qmc = "qmc"


class SceneSeeds(Choice):
    """``search.scene_seeds``: ``common``: every trial renders ``search.scene_seed``;
    ``fresh``: each trial its own scenes (a seed derived from ``scene_seed`` and the trial
    number, recorded as the trial's ``scene_seed``)."""

    common = "common"
    fresh = "fresh"


class RefineMethod(Choice):
    """``search.refine.method`` (``gen_loop.search.refine``)."""

    none = "none"
    gn = "gn"
    lsq = "lsq"
    auto = "auto"


class SelectionMethod(Choice):
    """``selection.method``: ``quantile`` and ``topk`` threshold one camera's pool
    (``gen_loop.selection.select_closest``); ``camera`` keeps, per scene, the closest of the
    best trials' renderings (``gen_loop.selection.closest_camera``); ``jitter`` keeps every scene,
    each under one of several cameras drawn around the best (``gen_loop.selection.around``)."""

    quantile = "quantile"
    topk = "topk"
    camera = "camera"
    jitter = "jitter"


class FinetuneControl(Choice):
    """``finetune.control``: ``none``, or ``randomised``: also fine-tune on domain-randomised
    images (no search) and call the loop's result better only if it beats them
    (``gen_loop.loop.control_stage``)."""

    none = "none"
    randomised = "randomised"
