"""The loop following its own advice (``search.advice_rounds``): the next round's space.

A search that stops above the floor says why it may have: unsearched parameters that explain
the remaining distance (:mod:`gen_loop.search.attribution`, "add them with
+search.space.gamma=...") and searched ones whose best value sits at a bound of its range
(:mod:`gen_loop.search.bounds`, "widen with search.space.color_temp_k.high=..."). A user who
follows both runs again. With ``search.advice_rounds=N`` the run does it itself, up to N
times: each round's space is the last one's with the named suspects added over the
generator's range and the ranges at a bound widened, and it starts from the last round's
best camera. Measured on the fog/JPEG camera of experiments/mismatch (5 seeds,
experiments/downstream/RESULTS.md Result 7): two rounds end as close to the target as the
hints followed by hand, or closer, but gave 0.120 mAP50 against 0.170 by hand (fresh runs)
and 0.118 without any; hence off by default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from gen_loop.config.schema import ParamRangeConfig, SearchConfig
from gen_loop.search.attribution import named

if TYPE_CHECKING:
    from gen_loop.loop.summary import RunSummary

#: The next round's run folder, inside this round's.
ADVISED_DIR = "advised"
#: The stops after which the run follows its advice (``RunSummary.stop_reason`` prefixes): a
#: plateau or the trial budget; a time budget (``search.timeout_s``) or failures end the run.
ADVISED_STOPS = ("plateau:", "budget:")


def follows_advice(stop_reason: str) -> bool:
    """Whether a search that stopped for ``stop_reason`` goes on to an advised round."""
    return stop_reason.startswith(ADVISED_STOPS)


@dataclasses.dataclass(frozen=True)
class Advice:
    """What the next round changes.

    Attributes:
        space: the next round's ``search.space`` (every entry, changed or not).
        overrides: the changes as the Hydra overrides a user would type, in order: the added
            suspects, then the widened bounds.
    """

    space: dict[str, ParamRangeConfig]
    overrides: list[str]


def advised_space(
    space: Mapping[str, ParamRangeConfig],
    suspects: Sequence[Mapping[str, Any]] | None,
    bound_hits: Sequence[Mapping[str, Any]] | None,
) -> Advice | None:
    """The space of the next round, or None when the advice changes nothing.

    Args:
        space: this round's ``search.space``.
        suspects: ``summary.unsearched_suspects`` (:meth:`Suspect.to_dict` forms, largest
            share first); the named ones (:func:`~gen_loop.search.attribution.named`) are
            added, a numeric one over the generator's range, a categorical one over its
            choices.
        bound_hits: ``summary.at_range_bounds`` (:meth:`BoundHit.to_dict` forms); a hit
            with a widened bound moves that bound, one at the generator's limit is left.
    """
    out = {name: dataclasses.replace(entry) for name, entry in space.items()}
    overrides = []
    for suspect in named(list(suspects or [])):
        name = str(suspect["name"])
        if name in out:
            continue  # two choices of one categorical parameter: added once
        if suspect.get("choices"):
            out[name] = ParamRangeConfig(type="categorical", choices=list(suspect["choices"]))
        else:
            out[name] = ParamRangeConfig(low=float(suspect["low"]), high=float(suspect["high"]))
        overrides.append(str(suspect["override"]))
    for hit in bound_hits or []:
        if hit.get("widened") is None or hit["name"] not in out:
            continue
        entry, widened = out[hit["name"]], float(hit["widened"])
        if hit["side"] == "low":
            out[hit["name"]] = dataclasses.replace(entry, low=widened)
        else:
            out[hit["name"]] = dataclasses.replace(entry, high=widened)
        overrides.append(str(hit["override"]))
    return Advice(out, overrides) if overrides else None


def next_round(search: SearchConfig, summary: RunSummary) -> SearchConfig:
    """``search`` for the round ``summary.advised`` announces: the advised space, the best
    camera so far as its first prior (``search.advice_from_best``; else the user's own priors
    only, a fresh start), one round fewer to follow, a study of its own name (a shared storage
    holds every round's study). A run folder resumed with fewer rounds than it was started
    with still finishes the round its summary announced."""
    advice = advised_space(search.space, summary.unsearched_suspects, summary.at_range_bounds)
    if advice is None:
        raise ValueError("the summary's advice changes nothing")
    start = {k: v for k, v in summary.all_params.items() if k in advice.space}
    return dataclasses.replace(
        search,
        space=advice.space,
        enqueue=[start] if search.advice_from_best else list(search.enqueue),
        advice_rounds=max(search.advice_rounds - 1, 0),
        study_name=f"{search.study_name}-{ADVISED_DIR}",
    )
