"""Issue 11, mismatch: which rule names the unsearched parameters a target differs in?

Usage (after ``any_camera.py --arm default --cameras 100-109`` wrote the runs' results):

    .venv/bin/python experiments/recovery/attribution.py --cameras 100-109

For each mismatch target (a camera of the recovery design that also differs in gamma,
saturation and sensor noise, which the default space does not search), the finite-difference
effects at the run's best point are measured once, as the loop measures them
(:func:`gen_loop.search.attribution.measure_effects`: the run's 32-image batch from scene seed
0, one render per searched and per unsearched parameter), and two rules rank the suspects on
the very same effects:

- ``independent`` (the loop's rule, :func:`gen_loop.search.attribution.rank`): each
  candidate's share is what it alone adds to an unbounded linear fit of the residual on the
  searched parameters; a candidate whose fit wants it past its bound gets 0;
- ``bounded``: the same, but every fit is a bounded least squares (no parameter moves past
  its range);
- ``stepwise``: bounded least squares, candidates added greedily, each share what it adds to
  the searched ones and the suspects before it.

A target counts as right when both named suspects (the top two with a share of at least
``MIN_SHARE``) are among its three true differences. Targets 100-104 were seen while the
other two rules were designed; 105-109 were drawn afterwards and never tuned on.
Writes ``attribution.json`` beside this script and prints the table.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from any_camera import OUT, UNSEARCHED, _camera_list, hidden_of, target_overrides

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/: _demo
from _demo import load_demo

from gen_loop.search.attribution import (
    MIN_SHARE,
    Effects,
    Suspect,
    explained,
    measure_effects,
    rank,
    unsearched_numeric,
)

HERE = Path(__file__).resolve().parent
RESULT = HERE / "attribution.json"
EFFECTS = HERE / "runs" / "attribution"  # the measured effects (git-ignored)
SEEN = range(100, 105)  # the targets the stepwise rule was designed on


def bounded(effects: Effects) -> list[Suspect]:
    """Each candidate alone on top of the searched parameters, every fit bounded."""
    r = effects.residual
    norm2 = float(r @ r)
    base, low, high = effects.searched, effects.searched_low, effects.searched_high
    base_fit = _bounded_fit(base, low, high, r)[0]
    out = []
    for name, (column, lo, hi, spec) in effects.candidates.items():
        assert spec.low is not None and spec.high is not None
        if column is None or norm2 == 0.0 or not np.any(column):
            out.append(Suspect(name, 0.0, 0, spec.low, spec.high))
            continue
        fit = np.column_stack([base, column])
        gain, move = _bounded_fit(fit, np.append(low, lo), np.append(high, hi), r)
        direction = 1 if move > 0 else -1 if move < 0 else 0
        share = max(gain - base_fit, 0.0) / norm2
        out.append(Suspect(name, share, direction, spec.low, spec.high))
    return sorted(out, key=lambda s: -s.share)


def stepwise(effects: Effects) -> list[Suspect]:
    """Bounded fits, the candidates added greedily (forward stepwise selection): each share is
    what a candidate adds to the searched parameters and the suspects before it."""
    r = effects.residual
    norm2 = float(r @ r)
    columns, low, high = effects.searched, effects.searched_low, effects.searched_high
    left = {n: c for n, c in effects.candidates.items() if c[0] is not None and np.any(c[0])}
    removed = _bounded_fit(columns, low, high, r)[0]
    out: list[Suspect] = []
    while left and norm2 > 0.0:
        gains = {}
        for name, (column, lo, hi, _) in left.items():
            fit = np.column_stack([columns, column])
            gains[name] = _bounded_fit(fit, np.append(low, lo), np.append(high, hi), r)
        name = max(gains, key=lambda n: gains[n][0])
        gain, move = gains[name]
        column, lo, hi, spec = left.pop(name)
        assert spec.low is not None and spec.high is not None
        direction = 1 if move > 0 else -1 if move < 0 else 0
        share = max(gain - removed, 0.0) / norm2
        out.append(Suspect(name, share, direction, spec.low, spec.high))
        columns = np.column_stack([columns, column])
        low, high = np.append(low, lo), np.append(high, hi)
        removed = max(gain, removed)
    return out


def _bounded_fit(
    columns: np.ndarray, low: np.ndarray, high: np.ndarray, r: np.ndarray
) -> tuple[float, float]:
    """How much of ``|r|^2`` the best bounded move of ``columns`` removes (``r + columns @
    move`` minimised, each move within its range), and the last column's move."""
    from scipy.optimize import lsq_linear

    move = lsq_linear(columns, -r, bounds=(low, high + 1e-12)).x
    rest = r + columns @ move
    return float(r @ r - rest @ rest), float(move[-1])


def in_turn(
    residual: np.ndarray,
    params: dict[str, Any],
    candidates: dict[str, Any],
    searched: dict[str, tuple[float, float]],
    evaluate: Callable[[dict[str, Any]], np.ndarray],
    rounds: int = 2,
) -> list[Suspect]:
    """Rank in rounds: the loop's rule (:func:`rank`) at the best point; its top suspect
    moved to where it best removes its part (:func:`move_suspect`); the others ranked again
    from there, each share then a share of what is left. Tried in session 8 against the
    collinearity that stepwise runs into; renders twice as many batches."""
    r = np.asarray(residual, dtype=np.float64)
    point, numeric = dict(params), dict(candidates)
    found: list[Suspect] = []
    for turn in range(rounds):
        effects = measure_effects(r, point, numeric, searched, evaluate)
        ranking = rank(effects)
        if turn == rounds - 1 or not ranking or ranking[0].share < MIN_SHARE:
            return found + ranking
        found.append(ranking[0])
        point, r = move_suspect(effects, ranking[0], point, evaluate)
        numeric.pop(ranking[0].name)
    return found


#: The moves :func:`move_suspect` renders for a numeric suspect, fractions of the room from
#: its value to the range's bound on the side the target looks like.
LINE = (1 / 3, 2 / 3, 1.0)


def move_suspect(
    effects: Effects,
    suspect: Suspect,
    params: dict[str, Any],
    evaluate: Callable[[dict[str, Any]], np.ndarray],
) -> tuple[dict[str, Any], np.ndarray]:
    """``params`` with ``suspect`` moved to where it best removes its part of the residual,
    and the residual there.

    A categorical suspect is switched to its choice (its residual is already measured). A
    numeric one is rendered at :data:`LINE` of the room towards the side the target looks
    like, and at the linear fit's own move when that lies inside the range; the move whose
    residual is smallest beyond the searched parameters' linear fit (they may still
    compensate) is kept.
    """
    r = effects.residual
    if suspect.choice is not None:
        column = effects.candidates[f"{suspect.name}={suspect.choice}"][0]
        assert column is not None
        return {**params, suspect.name: suspect.choice}, r + column
    column, low, high, _ = effects.candidates[suspect.name]
    assert column is not None
    room = high if suspect.direction > 0 else low
    moves = {room * f for f in LINE}
    fit = np.column_stack([effects.searched, column])
    predicted = -float(np.linalg.lstsq(fit, r, rcond=None)[0][-1])
    if low <= predicted <= high:
        moves.add(predicted)
    span = suspect.high - suspect.low
    value = float(params[suspect.name])

    def left(v: np.ndarray) -> float:
        fitted = explained(effects.searched, v) if effects.searched.shape[1] else 0.0
        return float(v @ v) - fitted

    tried = []
    for move in sorted(moves):
        point = {**params, suspect.name: min(max(value + move * span, suspect.low), suspect.high)}
        moved = np.asarray(evaluate(point), dtype=np.float64)
        tried.append((left(moved), point, moved))
    _, point, moved = min(tried, key=lambda t: t[0])
    return point, moved


RULES: dict[str, Callable[[Effects], list[Suspect]]] = {
    "independent": rank,
    "bounded": bounded,
    "stepwise": stepwise,
}
#: Every rule of the table: those ranked on the one set of effects, then ``in_turn``, which
#: renders again after moving its first suspect.
TABLE_RULES = (*RULES, "in_turn")


def named(suspects: list[Suspect]) -> list[Suspect]:
    return [s for s in suspects[:2] if s.share >= MIN_SHARE]


def one_target(camera: int) -> dict[str, Any]:
    """Measure the effects at the run's best point and rank them by every rule."""
    run = json.loads((OUT / f"default_c{camera}_s0.json").read_text())
    hidden = hidden_of(camera)
    demo = load_demo(target_overrides(camera))
    n, seed = demo.cfg.search.batch_size, demo.cfg.search.scene_seed
    params = {**demo.base_params, **run["best_params"]}

    def residual_at(p: dict[str, Any]) -> np.ndarray:
        return demo.scorer.residual(demo.embed_at(p, n, seed))  # type: ignore[attr-defined]

    candidates = unsearched_numeric(
        demo.generator.parameters, set(demo.space.distributions), set(demo.space.fixed)
    )
    effects = measure_effects(residual_at(params), params, candidates, demo.ranges, residual_at)
    EFFECTS.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {
        "camera": camera,
        "seen": camera in SEEN,
        "unsearched": {k: hidden[k] for k in UNSEARCHED},
        "best_over_floor": run["best_over_floor"],
        "loop_named": [s["name"] for s in run["unsearched_suspects"] or []][:2],
    }
    np.savez(
        EFFECTS / f"c{camera}.npz",
        residual=effects.residual,
        searched=effects.searched,
        names=np.array(list(effects.candidates)),
        candidates=np.stack(
            [
                c if c is not None else np.zeros_like(effects.residual)
                for c, *_ in effects.candidates.values()
            ]
        ),
    )
    rules = {name: rule(effects) for name, rule in RULES.items()}
    rules["in_turn"] = in_turn(effects.residual, params, candidates, demo.ranges, residual_at)
    for rule, ranking in rules.items():
        out[rule] = scored(ranking)
    return out


def scored(ranking: list[Suspect]) -> dict[str, Any]:
    """A rule's ranking as recorded: every suspect, the named ones, how many are right."""
    chosen = named(ranking)
    return {
        "ranking": [(s.name, round(s.share, 4), s.direction) for s in ranking],
        "named": [s.name for s in chosen],
        "right": sum(s.name in UNSEARCHED for s in chosen),
    }


def table(results: list[dict[str, Any]], rules: Sequence[str] = TABLE_RULES) -> str:
    """Per target, each of ``rules``' named suspects; then how often both were right."""
    lines = [
        "| target | seen | unsearched (hidden) | best/floor | "
        + " | ".join(f"{rule}: named (share) | right" for rule in rules)
        + " |",
        "|---|---|---|---|" + "---|---|" * len(rules),
    ]
    for r in results:
        cells = []
        for rule in rules:
            shares = dict((n, s) for n, s, _ in r[rule]["ranking"])
            text = ", ".join(f"{n} {100 * shares[n]:.0f}%" for n in r[rule]["named"]) or "none"
            cells += [text, f"{r[rule]['right']}/2"]
        hidden = ", ".join(f"{k} {v:g}" for k, v in r["unsearched"].items())
        lines.append(
            f"| {r['camera']} | {'yes' if r['seen'] else 'no'} | {hidden} | "
            f"{r['best_over_floor']:.1f} | {' | '.join(cells)} |"
        )
    for rule in rules:
        for label, part in (
            ("seen", [r for r in results if r["seen"]]),
            ("held out", [r for r in results if not r["seen"]]),
        ):
            both = sum(r[rule]["right"] == 2 for r in part)
            lines.append(f"\n{rule}, {label}: both named right in {both}/{len(part)}")
    return "\n".join(lines)


def measure(
    description: str, one: Callable[[int], dict[str, Any]], result: Path
) -> list[dict[str, Any]]:
    """``one(camera)`` for each camera of ``--cameras`` (default the ten mismatch targets),
    kept in ``result`` with the earlier targets' results; all of them, by camera."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--cameras", type=_camera_list, default=list(range(100, 110)))
    args = parser.parse_args()
    kept = {r["camera"]: r for r in json.loads(result.read_text())} if result.exists() else {}
    for camera in args.cameras:
        kept[camera] = one(camera)
        result.write_text(json.dumps(sorted(kept.values(), key=lambda r: r["camera"]), indent=1))
        print(f"target {camera}: done", flush=True)
    return sorted(kept.values(), key=lambda r: r["camera"])


def main() -> None:
    print(table(measure(__doc__.splitlines()[0], one_target, RESULT)))


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parents[1]))
    main()
