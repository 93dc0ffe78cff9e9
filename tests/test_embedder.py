"""The YOLOv7-tiny embedder: architecture, agreement with ultralytics, batching, caching."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gen_loop._env import configure_offline, configure_ultralytics
from gen_loop.embedder import YoloEmbedder, build_model, cached_embeddings, model_yaml
from gen_loop.generator import ProceduralGenerator

IMGSZ = 64


@pytest.fixture(scope="module", autouse=True)
def _offline(tmp_path_factory: pytest.TempPathFactory) -> None:
    configure_offline(tmp_path_factory.mktemp("cache"))
    configure_ultralytics()


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return ProceduralGenerator(IMGSZ, IMGSZ).generate({}, 6, seed=3).images


@pytest.fixture(scope="module")
def embedder() -> YoloEmbedder:
    return YoloEmbedder("yolov7-tiny", None, [28], IMGSZ, device="cpu", batch_size=4)


def test_yolov7_tiny_architecture() -> None:
    net = build_model("yolov7-tiny", None, seed=0).model
    assert [int(s) for s in net.stride] == [8, 16, 32]
    n_params = sum(p.numel() for p in net.parameters())
    assert 4.8e6 < n_params < 6.5e6  # the original is 6.2M; see the YAML header
    acts = {type(m.act).__name__ for m in net.modules() if hasattr(m, "act")}
    assert acts == {"LeakyReLU"}
    assert net.model[28].conv.out_channels == 512  # backbone end


def test_embeddings_match_ultralytics_own_embed(
    embedder: YoloEmbedder, images: np.ndarray
) -> None:
    ours = embedder.embed(images[:2])
    model = build_model("yolov7-tiny", None, seed=0)
    # ultralytics takes BGR numpy images and pools the same layer globally.
    theirs = model.predict(
        [im[..., ::-1] for im in images[:2]], embed=[28], imgsz=IMGSZ, verbose=False, device="cpu"
    )
    theirs = np.stack([t.numpy() for t in theirs])
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-9)


def test_same_image_same_row_whatever_the_batch(
    embedder: YoloEmbedder, images: np.ndarray
) -> None:
    full = embedder.embed(images)
    assert full.shape == (len(images), 512) and full.dtype == np.float32
    np.testing.assert_allclose(embedder.embed(images[3:4])[0], full[3], rtol=1e-5, atol=1e-9)
    assert not np.allclose(full[0], full[1])  # different images, different embeddings


def test_cpu_passes_are_capped_by_pixels_not_by_the_batch() -> None:
    from gen_loop.embedder.yolo import CPU_PIXELS_PER_PASS

    big = YoloEmbedder("yolov7-tiny", None, [14], 256, device="cpu", batch_size=32)
    assert big.pass_size == CPU_PIXELS_PER_PASS // 256**2 < 32 and big.batch_size == 32
    small = YoloEmbedder("yolov7-tiny", None, [14], IMGSZ, device="cpu", batch_size=5)
    assert small.pass_size == 5  # small images: the batch size is the pass size


def test_several_layers_are_concatenated(images: np.ndarray) -> None:
    two = YoloEmbedder("yolov7-tiny", None, [28, 37], IMGSZ, device="cpu")
    one = YoloEmbedder("yolov7-tiny", None, [28], IMGSZ, device="cpu")
    assert two.dim == 512 + 256
    np.testing.assert_allclose(two.embed(images[:2])[:, :512], one.embed(images[:2]), rtol=1e-5)
    assert two.fingerprint != one.fingerprint


def test_other_sizes_are_resized(embedder: YoloEmbedder, images: np.ndarray) -> None:
    big = np.stack([np.kron(im, np.ones((2, 2, 1), np.uint8)) for im in images[:2]])
    assert big.shape[1:3] == (2 * IMGSZ, 2 * IMGSZ)
    np.testing.assert_allclose(
        embedder.embed(big), embedder.embed(images[:2]), rtol=0.05, atol=1e-7
    )


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="layers"):
        YoloEmbedder("yolov7-tiny", None, [999], IMGSZ, device="cpu")
    with pytest.raises(ValueError, match="device"):
        YoloEmbedder("yolov7-tiny", None, [28], IMGSZ, device="tpu")
    emb = YoloEmbedder("yolov7-tiny", None, [28], IMGSZ, device="cpu")
    with pytest.raises(ValueError, match="uint8"):
        emb.embed(np.zeros((1, IMGSZ, IMGSZ, 3), np.float32))


def test_random_init_is_seeded_without_touching_the_global_rng(images: np.ndarray) -> None:
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = YoloEmbedder("yolov7-tiny", None, [28], IMGSZ, device="cpu", seed=1)
    assert torch.rand(1) == before  # building a model did not consume the global stream
    b = YoloEmbedder("yolov7-tiny", None, [28], IMGSZ, device="cpu", seed=1)
    c = YoloEmbedder("yolov7-tiny", None, [28], IMGSZ, device="cpu", seed=2)
    np.testing.assert_array_equal(a.embed(images[:1]), b.embed(images[:1]))
    assert not np.allclose(a.embed(images[:1]), c.embed(images[:1]))


def test_target_embeddings_are_cached(
    embedder: YoloEmbedder, images: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = embedder.embed
    monkeypatch.setattr(embedder, "embed", lambda x: calls.append(len(x)) or real(x))
    first = cached_embeddings(embedder, images, "content-a", tmp_path)
    second = cached_embeddings(embedder, images, "content-a", tmp_path)
    third = cached_embeddings(embedder, images[:3], "content-b", tmp_path)
    assert calls == [len(images), 3]  # the second call was served from disk
    np.testing.assert_array_equal(first, second)
    assert third.shape == (3, 512)


def test_shipped_architecture_path_exists() -> None:
    assert Path(model_yaml("yolov7-tiny")).is_file()
    assert model_yaml("custom.yaml") == "custom.yaml"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_half_precision_matches_cpu(images: np.ndarray) -> None:
    cpu = YoloEmbedder("yolov7-tiny", None, [28], IMGSZ, device="cpu")
    gpu = YoloEmbedder("yolov7-tiny", None, [28], IMGSZ, device="cuda", batch_size=64)
    assert gpu.half
    a, b = cpu.embed(images), gpu.embed(images)
    rel = np.linalg.norm(a - b, axis=1) / np.linalg.norm(a, axis=1)
    assert rel.max() < 0.02


def test_layers_by_name_are_read_off_the_model_structure(images: np.ndarray) -> None:
    from gen_loop.embedder.yolo import named_layers

    v7 = named_layers(build_model("yolov7-tiny", None, seed=0).model)
    assert v7 == {
        "backbone_end": 28,
        "backbone_p3": 14,
        "backbone_p4": 21,
        "head_p3": 57,
        "head_p4": 65,
        "head_p5": 73,
    }
    v8 = named_layers(build_model("yolov8n.yaml", None, seed=0).model)  # any ultralytics YAML
    assert v8["backbone_end"] == 9 and v8["head_p3"] == 15
    by_name = YoloEmbedder("yolov7-tiny", None, ["backbone_p3", "28"], IMGSZ, device="cpu")
    by_index = YoloEmbedder("yolov7-tiny", None, [14, 28], IMGSZ, device="cpu")
    assert by_name.layers == (14, 28)
    np.testing.assert_array_equal(by_name.embed(images[:1]), by_index.embed(images[:1]))
    with pytest.raises(ValueError, match="unknown layer name 'neck'"):
        YoloEmbedder("yolov7-tiny", None, ["neck"], IMGSZ, device="cpu")
