"""Is the noise floor known well enough to stop on? Small targets give a floor that is not.

The floor is the mean distance of random target batches from the rest of the target. A target
smaller than ``batch_size + 2`` images is split into halves instead (the floor's batch is cut,
e.g. from 8 to 2 for 4 images) and rescaled to the trial batch; with a reference of a few images
the z-score statistics are noise, and one split's distance varies by as much as the distance
itself. Reaching "1.5 x the floor" then says little, so the stop rule does not stop there
unless the user opts in (``search.stop_at_uncertain_floor``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

#: The largest relative spread (std / mean of the split distances) of a floor to stop on, and
#: the fewest target images the floor's reference (the target less the floor's batch) may have.
#: Measured (demo camera, 200 splits, 3 target draws, 96 px batch 8 and 256 px batch 32):
#: references of 8 images or more gave 0.27-0.46 (targets of 48+ images: 0.27-0.33); references
#: of 2-6 images 0.38-1.95, and a 4-image target "converged" at its first trial (floor 37 from
#: 2 against 2 images, where 24 images give 0.39).
MAX_FLOOR_REL_STD = 0.5
MIN_FLOOR_REFERENCE = 8


@dataclass(frozen=True)
class FloorQuality:
    """How well the run's noise floor is known (``summary.json``: ``floor_quality``).

    Attributes:
        target_images: images in the target.
        trial_batch: the trial batch size (``search.batch_size``).
        floor_batch: the batch the floor was measured with (smaller for a small target).
        rel_std: std / mean of the floor's split distances.
        max_rel_std: the largest ``rel_std`` the stop rule stops on (:data:`MAX_FLOOR_REL_STD`).
        min_reference: the fewest reference images it stops on (:data:`MIN_FLOOR_REFERENCE`).
        stop_at_floor: whether the stop rule may stop at the floor (False for an uncertain
            floor, unless ``search.stop_at_uncertain_floor``).
    """

    target_images: int
    trial_batch: int
    floor_batch: int
    rel_std: float
    max_rel_std: float
    min_reference: int
    stop_at_floor: bool

    @property
    def reference(self) -> int:
        """Target images each floor split's batch is scored against."""
        return self.target_images - self.floor_batch

    @property
    def small_target(self) -> bool:
        """The target has fewer than ``trial_batch + 2`` images: the floor's batch was cut."""
        return self.floor_batch < self.trial_batch

    @property
    def uncertain(self) -> bool:
        """The floor's splits spread more than :attr:`max_rel_std` of their mean, or its
        reference has fewer than :attr:`min_reference` images."""
        spread = not self.rel_std <= self.max_rel_std  # NaN (0 / 0) is uncertain too
        return spread or self.reference < self.min_reference

    def notes(self) -> list[str]:
        """Plain sentences for the console (none for a target that is large enough)."""
        out = []
        if self.small_target:
            out.append(
                f"the target has only {self.target_images} images, fewer than search.batch_size "
                f"+ 2 = {self.trial_batch + 2}: the noise floor is measured on batches of "
                f"{self.floor_batch} against the other {self.reference} (trials use "
                f"{self.trial_batch}) and rescaled"
            )
        if self.uncertain:
            what = (
                "the stop rule stops at it anyway (search.stop_at_uncertain_floor=true)"
                if self.stop_at_floor
                else "the search will not stop as converged at it, only at the budget or a "
                "plateau (search.stop_at_uncertain_floor=true to stop at it anyway)"
            )
            out.append(
                f"the noise floor is uncertain (its splits vary by ±{self.rel_std:.0%}, the most "
                f"to stop on is ±{self.max_rel_std:.0%}; its reference has {self.reference} "
                f"images, the fewest to stop on is {self.min_reference}): {what}. More target "
                "images make it certain"
            )
        return out


def floor_quality(
    mean: float,
    std: float,
    floor_batch: int,
    target_images: int,
    trial_batch: int,
    stop_at_uncertain_floor: bool = False,
) -> FloorQuality:
    """Judge a measured floor (``NoiseFloor.mean``/``std``/``batch_size``) for a run."""
    rel = std / mean if mean > 0 else float("nan")
    quality = FloorQuality(
        target_images=target_images,
        trial_batch=trial_batch,
        floor_batch=floor_batch,
        rel_std=rel,
        max_rel_std=MAX_FLOOR_REL_STD,
        min_reference=MIN_FLOOR_REFERENCE,
        stop_at_floor=True,
    )
    if quality.uncertain and not stop_at_uncertain_floor:
        return dataclasses.replace(quality, stop_at_floor=False)
    return quality
