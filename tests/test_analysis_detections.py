"""The detector pass (detections, per-image loss) and the predicted-loss estimators."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from gen_loop._env import configure_offline, configure_ultralytics
from gen_loop.analysis.detections import (
    CONFIDENCE_FEATURES,
    Detections,
    DetectorRunner,
    confidence_features,
)
from gen_loop.analysis.predicted_loss import knn_loss, predict_loss
from gen_loop.generator import ProceduralGenerator


@pytest.fixture(scope="module")
def runner() -> DetectorRunner:
    configure_offline()
    configure_ultralytics()
    return DetectorRunner("yolov7-tiny", None, 64, "cpu", seed=0, conf=0.0, batch_size=4)


def test_batched_loss_equals_one_image_at_a_time(runner: DetectorRunner) -> None:
    batch = ProceduralGenerator(64, 64).generate({}, 6, 0)
    dets, losses = runner.run(batch.images, batch.labels)
    assert losses is not None and losses.shape == (6,) and np.all(losses > 0)
    singles = [runner.run(batch.images[i : i + 1], batch.labels[i : i + 1])[1] for i in range(6)]
    np.testing.assert_allclose(losses, np.concatenate(singles), rtol=1e-4)  # type: ignore[arg-type]
    assert len(dets) == 6
    for det in dets:
        assert det.boxes.shape == (len(det.conf), 4)
        assert np.all((det.boxes >= 0) & (det.boxes <= 1))
    unlabeled, none = runner.run(batch.images)
    assert none is None and [len(d.conf) for d in unlabeled] == [len(d.conf) for d in dets]


def test_loss_depends_on_the_labels(runner: DetectorRunner) -> None:
    # Boxes large enough to hold anchor centres at 64 px (smaller ones get no anchor assigned,
    # and ultralytics' loss then only has its label-free classification term).
    images = ProceduralGenerator(64, 64).generate({}, 2, 3).images
    centre = (np.array([[0, 0.5, 0.5, 0.6, 0.6]], np.float32),) * 2
    corner = (np.array([[0, 0.3, 0.3, 0.5, 0.5]], np.float32),) * 2
    _, at_centre = runner.run(images, centre)
    _, at_corner = runner.run(images, corner)
    assert at_centre is not None and at_corner is not None
    assert not np.allclose(at_centre, at_corner)
    # Class ids the detector does not have are left out rather than crashing the loss.
    extra = tuple(np.vstack([lab, [[7, 0.5, 0.5, 0.2, 0.2]]]) for lab in centre)
    _, same = runner.run(images, extra)
    np.testing.assert_allclose(same, at_centre, rtol=1e-5)  # type: ignore[arg-type]


def test_confidence_features() -> None:
    dets = [
        Detections(np.zeros((3, 4)), np.array([0.9, 0.3, 0.1]), np.zeros(3, int)),
        Detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int)),
    ]
    feats = confidence_features(dets)
    assert feats.shape == (2, len(CONFIDENCE_FEATURES))
    np.testing.assert_allclose(feats[0, :4], [2, 1, 0.9, (0.9 + 0.3 + 0.1) / 3])
    assert feats[0, 4] > 0
    np.testing.assert_array_equal(feats[1], 0.0)
    assert dets[0].as_yolo().shape == (2, 5)  # confidence >= 0.25 only


def test_knn_loss_is_the_mean_of_the_nearest_and_leaves_itself_out() -> None:
    train = np.array([[0.0], [1.0], [2.0], [10.0]])
    loss = np.array([1.0, 2.0, 3.0, 9.0])
    query_pred, loo = knn_loss(train, loss, np.array([[0.4], [9.0]]), k=2)
    np.testing.assert_allclose(query_pred, [1.5, (3.0 + 9.0) / 2])
    np.testing.assert_allclose(loo, [2.5, 2.0, 1.5, 2.5])


@pytest.mark.parametrize("estimator", ["knn", "confidence", "ensemble"])
def test_estimators_follow_a_learnable_loss(estimator: str) -> None:
    rng = np.random.default_rng(0)
    embed = rng.normal(size=(120, 4))
    conf = rng.normal(size=(120, 5))
    loss = 2 * embed[:, 0] + 2 * conf[:, 2] + rng.normal(scale=0.3, size=120)
    query, oof = predict_loss(
        estimator, embed[:80], conf[:80], loss[:80], embed[80:], conf[80:], k=5
    )
    assert spearmanr(query, loss[80:]).statistic > 0.5
    assert spearmanr(oof, loss[:80]).statistic > 0.5
    with pytest.raises(ValueError, match="unknown estimator"):
        predict_loss("oracle", embed, conf, loss, embed, conf)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_detections_and_loss_match_cpu(runner: DetectorRunner) -> None:
    batch = ProceduralGenerator(64, 64).generate({}, 4, 0)
    gpu = DetectorRunner("yolov7-tiny", None, 64, "cuda", seed=0, conf=0.0)
    _, cpu_loss = runner.run(batch.images, batch.labels)
    _, gpu_loss = gpu.run(batch.images, batch.labels)
    np.testing.assert_allclose(gpu_loss, cpu_loss, rtol=1e-2)  # type: ignore[arg-type]
