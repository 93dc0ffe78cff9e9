"""Loading named sets (folders, YOLO datasets, data.yaml, bad input) and clustering them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from gen_loop.analysis.clusters import cluster_embeddings, representatives
from gen_loop.analysis.origins import check_set_name, load_origin, resolve_set_path
from gen_loop.analysis.projection import PcaProjection, project
from gen_loop.errors import ConfigError, InputDataError
from gen_loop.generator import ProceduralGenerator
from gen_loop.generator.yolo_io import write_yolo_dataset


@pytest.fixture
def yolo_set(tmp_path: Path) -> Path:
    batch = ProceduralGenerator(48, 48).generate({}, 5, 0)
    write_yolo_dataset(batch, tmp_path / "gen")
    return tmp_path / "gen"


def test_yolo_folder_and_data_yaml_give_images_with_their_labels(yolo_set: Path) -> None:
    batch = ProceduralGenerator(48, 48).generate({}, 5, 0)
    for given in (yolo_set, yolo_set / "data.yaml", yolo_set / "images"):
        origin = load_origin("gen", given, (48, 48))
        assert len(origin) == 5
        assert origin.labels is not None
        for got, want in zip(origin.labels, batch.labels, strict=True):
            np.testing.assert_allclose(got, want, atol=1e-5)
        np.testing.assert_array_equal(origin.images, batch.images)


def test_plain_folder_is_unlabeled_and_resized(tmp_path: Path) -> None:
    for i, size in enumerate([(40, 30), (200, 120)]):  # very different sizes
        cv2.imwrite(str(tmp_path / f"im{i}.jpg"), np.full((size[1], size[0], 3), 100, np.uint8))
    origin = load_origin("client", tmp_path, (64, 48))
    assert origin.labels is None
    assert origin.images.shape == (2, 48, 64, 3)


def test_corrupt_files_are_skipped_and_counted(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "good.png"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "bad.png").write_bytes(b"not an image")
    origin = load_origin("client", tmp_path, (8, 8))
    assert len(origin) == 1
    assert [Path(p).name for p, _ in origin.skipped] == ["bad.png"]


def test_unusable_sets_stop_with_a_message_naming_the_path(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "x.png").write_bytes(b"junk")
    with pytest.raises(InputDataError, match="does not exist"):
        load_origin("a", tmp_path / "missing", (8, 8))
    with pytest.raises(InputDataError, match=r"set folder .* holds no image or video file"):
        load_origin("a", tmp_path / "empty", (8, 8))
    with pytest.raises(InputDataError, match="nothing readable in"):
        load_origin("a", tmp_path / "broken", (8, 8))
    (tmp_path / "d.yaml").write_text(yaml.safe_dump({"names": {0: "car"}}))
    with pytest.raises(InputDataError, match="no 'val' or 'train'"):
        resolve_set_path(tmp_path / "d.yaml")


def test_set_names_must_be_file_safe() -> None:
    assert check_set_name("cognata_a") == "cognata_a"
    with pytest.raises(ConfigError, match=r"sets\.a/b"):
        check_set_name("a/b")


def _blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """target: blobs 0 and 1; source: blobs 1 and 2 (blob 0 only in the target, 2 only in the
    source, 1 shared)."""
    rng = np.random.default_rng(seed)
    centres = np.zeros((3, 20))
    centres[0, 0], centres[2, 1] = 12.0, 12.0
    parts, names = [], []
    for blob, name in [(0, "target"), (1, "target"), (1, "source"), (2, "source")]:
        parts.append(centres[blob] + rng.normal(size=(30, 20)))
        names += [name] * 30
    return np.vstack(parts), np.array(names)


def test_clusters_find_the_blobs_and_flag_uncovered_ones() -> None:
    x, names = _blobs()
    result = cluster_embeddings(x, names, reference="target", k_max=6)
    assert result.k == 3
    mixes = sorted(tuple(sorted(c.items())) for c in result.counts)
    assert mixes == sorted(
        [
            (("source", 0), ("target", 30)),
            (("source", 30), ("target", 30)),
            (("source", 30), ("target", 0)),
        ]
    )
    flagged = {(f.dominant, f.missing) for f in result.flags}
    assert flagged == {("target", "source"), ("source", "target")}  # the shared blob is fine
    assert all(f.p_value < 0.05 for f in result.flags)
    near = representatives(result, 0, 4)
    assert len(near) == 4 and np.all(result.labels[near] == 0)
    shared = next(c for c, mix in enumerate(result.counts) if min(mix.values()) > 0)
    mixed = representatives(result, shared, 6, names)
    assert sorted(names[mixed].tolist()) == ["source"] * 3 + ["target"] * 3


def test_no_under_represented_cluster_within_one_distribution() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 10))
    names = np.array(["target", "source"] * 40)
    result = cluster_embeddings(x, names, reference="target", k=4)
    assert result.flags == []


def test_saved_pca_projects_another_run_into_the_same_plane(tmp_path: Path) -> None:
    x, _ = _blobs()
    coords, pca = project(x, "pca", seed=0)
    assert pca is not None
    path = pca.save(tmp_path / "projection.npz")
    again, _ = project(x, "pca", seed=0, saved=path)
    np.testing.assert_allclose(again, coords)
    later = x[:10] + 0.5
    np.testing.assert_allclose(project(later, "pca", 0, path)[0], pca.transform(later))
    with pytest.raises(InputDataError, match=r"embedder\.layers"):
        PcaProjection.load(path).transform(x[:, :5])
    with pytest.raises(ConfigError, match="only a PCA"):
        project(x, "tsne", 0, path)


def test_tsne_and_missing_umap() -> None:
    x, _ = _blobs()
    coords, pca = project(x, "tsne", seed=0)
    assert coords.shape == (len(x), 2) and np.all(np.isfinite(coords)) and pca is None
    try:
        import umap  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="umap-learn"):
            project(x, "umap", seed=0)


def test_analyze_sets_on_arrays_a_run_already_holds() -> None:
    """The entry point ``run`` can call: arrays in, an Analysis out, no model, no files."""
    from gen_loop.analysis import AnalysisSettings, Origin, analyze_sets

    gen = ProceduralGenerator(48, 48)
    rng = np.random.default_rng(0)
    target_imgs = gen.generate({"color_temp_k": 4300.0}, 12, 1).images
    batch_imgs = gen.generate({}, 12, 2).images
    target = Origin.from_arrays("target", target_imgs, rng.normal(size=(12, 8)) + 2.0)
    batch = Origin.from_arrays("best_batch", batch_imgs, rng.normal(size=(12, 8)))
    analysis = analyze_sets(
        [target, batch], "target", AnalysisSettings(n_permutations=49, noise_floor_splits=3)
    )
    (shift,) = analysis.shifts
    assert shift.origin == "best_batch" and shift.shifted
    assert analysis.predicted_loss is None  # no detector output given
    assert analysis.effects["best_batch"][0].rank == 1
    assert "best_batch.auc" in analysis.metrics()
    with pytest.raises(ConfigError, match="not one of the sets"):
        analyze_sets([target, batch], "client")
