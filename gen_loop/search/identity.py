"""What a study's distances were measured against, recorded once and checked on every resume.

A trial's value is a distance to one target, in one embedding, by one scorer. A study resumed
with another target (or embedder, or scorer) would rank the old trials against the new ones
and report the old best against the new noise floor. So the study records a fingerprint of
each part when it is created, and a resume whose parts differ is refused, naming what changed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import optuna

from gen_loop.errors import ConfigError

log = logging.getLogger(__name__)

#: The study's user attribute holding ``{part name: {"label": ..., "fingerprint": ...}}``.
IDENTITY_ATTR = "distance_identity"


@dataclass(frozen=True)
class Part:
    """One thing a distance depends on.

    Attributes:
        key: the config key that chooses it (named in the error), e.g. ``target``.
        label: what it is, in words (``folder /data/cam7 (120 images)``).
        fingerprint: a digest that changes whenever the distances it gives would.
    """

    key: str
    label: str
    fingerprint: str


def check_identity(study: optuna.Study, parts: Mapping[str, Part], where: str) -> None:
    """Record ``parts`` on a study that has none; on one that has, refuse any that differ.

    Call under the study mutex. A new study (no finished trial) takes the record; one with
    finished trials but no record (made before gen_loop kept it) is left unchanged, with a
    warning: it cannot be checked.

    Args:
        study: the opened study.
        parts: name -> the part as this run has it (``target``, ``embedder``, ``score``).
        where: the study's place for the message (the run folder, or ``name @ storage``).

    Raises:
        ConfigError: naming the part's config key, what the study was searched against and
            what this run has, when a recorded part differs.
    """
    recorded = study.user_attrs.get(IDENTITY_ATTR)
    if not isinstance(recorded, dict):
        if any(t.state.is_finished() for t in study.get_trials(deepcopy=False)):
            # Left unrecorded: a resume must not rewrite an earlier study it cannot check.
            log.warning(
                "%s: the study records no target/embedder/scorer fingerprint (made by an "
                "older gen_loop); it is assumed to match this run",
                where,
            )
            return
        current = {n: {"label": p.label, "fingerprint": p.fingerprint} for n, p in parts.items()}
        study.set_user_attr(IDENTITY_ATTR, current)
        return
    for name, part in parts.items():
        old = recorded.get(name)
        if isinstance(old, dict) and old.get("fingerprint") != part.fingerprint:
            raise ConfigError(
                part.key,
                f"{where} was searched against {old.get('label')} "
                f"({str(old.get('fingerprint'))[:12]}), not {part.label} "
                f"({part.fingerprint[:12]}): its distances would mean something else. Start a "
                f"new run folder (hydra.run.dir=...) or give the earlier {part.key} back",
            )
