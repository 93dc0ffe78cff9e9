"""Which Jacobian gives the parameter uncertainty? Fitted on the trials, or measured.

Usage (a finished search-only run on the demo target, then the comparison):

    .venv/bin/python -m gen_loop run finetune.enabled=false analysis.enabled=false \\
        search.polish=false hydra.run.dir=/tmp/demo_run
    .venv/bin/python experiments/recovery/jacobian_at_best.py /tmp/demo_run

Three Jacobians of the residual, each turned into standard deviations by
:func:`gen_loop.search.uncertainty.parameter_covariance`: fitted by least squares on the 12
trials nearest the best (no renders), a forward difference at the best (what
``search.uncertainty`` measures, one render a parameter) and a central difference at the hidden
camera (the truth the others approximate). Printed next to the search's real error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/: _demo
from _demo import load_demo


def main(run_dir: Path) -> None:
    import optuna
    from optuna.trial import TrialState

    from gen_loop.loop.camera_uncertainty import per_image_residuals
    from gen_loop.loop.trial import evaluate_params
    from gen_loop.search.refine import Box
    from gen_loop.search.uncertainty import parameter_covariance

    demo = load_demo()
    cfg, generator, embedder, scorer = demo.cfg, demo.generator, demo.embedder, demo.scorer
    assert demo.target_embeddings is not None
    per_image = per_image_residuals(scorer, demo.target_embeddings)
    assert per_image is not None
    summary = json.loads((run_dir / "summary.json").read_text())
    study = optuna.load_study(
        study_name=summary["study"]["name"], storage=f"sqlite:///{run_dir / 'optuna.db'}"
    )
    box = Box.of_space(demo.space)
    hidden = {**summary["all_params"], **summary["target_hidden_params"]}
    batch = cfg.search.batch_size

    def residual(u: np.ndarray) -> np.ndarray:
        params = {**hidden, **box.from_unit(u)}
        result = evaluate_params(generator, embedder, scorer, params, batch, cfg.search.scene_seed)
        return np.asarray(scorer.residual(result.embeddings))

    def shares(jac: np.ndarray) -> np.ndarray:
        return np.sqrt(np.diag(parameter_covariance(jac, per_image, batch)))

    trials = [
        t
        for t in study.get_trials(states=(TrialState.COMPLETE,))
        if t.user_attrs.get("residual") is not None
    ]
    points = np.array([box.to_unit({**summary["all_params"], **t.params}) for t in trials])
    residuals = np.array([t.user_attrs["residual"] for t in trials])
    best = next(i for i, t in enumerate(trials) if t.number == summary["best_trial"])
    offsets = points - points[best]
    near = [i for i in np.argsort(np.linalg.norm(offsets, axis=1)) if i != best][:12]
    fitted = np.linalg.lstsq(offsets[near], residuals[near] - residuals[best], rcond=None)[0].T
    u_best, u_hidden, h = points[best], box.to_unit(hidden), cfg.search.refine.diff_step
    eye = np.eye(len(box.names))
    forward = np.stack([(residual(u_best + h * e) - residuals[best]) / h for e in eye], axis=1)
    central = np.stack(
        [(residual(u_hidden + h * e) - residual(u_hidden - h * e)) / (2 * h) for e in eye], axis=1
    )
    print("std / range, and the search's error / range, per parameter:")
    print(f"{'':34s}" + "".join(f"{n[:12]:>13s}" for n in box.names))
    for label, values in (
        ("fitted on the 12 nearest trials", shares(fitted)),
        ("forward difference at the best", shares(forward)),
        ("central difference at the hidden", shares(central)),
        ("the search's error", np.abs(u_best - u_hidden)),
    ):
        print(f"{label:34s}" + "".join(f"{v:13.3f}" for v in values))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
