"""``embedder=onnx``: the shipped detector exported to ONNX in the test embeds like the torch
path; bad files, tensors and settings name their key; a smoke ``run`` completes with it."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import torch

from gen_loop._env import configure_offline, configure_ultralytics
from gen_loop.config import RunConfig
from gen_loop.embedder import OnnxEmbedder, YoloEmbedder, build_model, shipped_base_weights
from gen_loop.embedder.exported import onnx_tensors_main
from gen_loop.errors import ConfigError
from gen_loop.generator import ProceduralGenerator
from gen_loop.loop.components import finetune_weights
from gen_loop.loop.summary import RunSummary
from gen_loop.search.identity import IDENTITY_ATTR
from tests.cli import run_cli

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

IMGSZ = 64
LAYERS = (14, 21, 28)  # the backbone's P3 and P4 ELAN outputs and its end
CHANNELS = (128, 256, 512)


def export(path: Path, batch: int | None = None, imgsz: int | None = None) -> Path:
    """The shipped base detector (fused, as the torch embedder runs it) written to ``path``
    with the legacy TorchScript exporter; free batch and size unless fixed here."""
    net = build_model("yolov7-tiny", shipped_base_weights(), seed=0).model
    net = net.fuse(verbose=False).eval().float()
    free = {0: "batch"} if batch is None else {}
    if imgsz is None:
        free.update({2: "height", 3: "width"})
    probe = torch.zeros(batch or 1, 3, imgsz or IMGSZ, imgsz or IMGSZ)
    torch.onnx.export(
        net,
        (probe,),
        str(path),
        dynamo=False,
        input_names=["images"],
        output_names=["output0"],
        dynamic_axes={"images": free} if free else None,
        opset_version=17,
    )
    return path


def layer_output(path: Path, layer: int) -> str:
    """The tensor layer ``layer`` of the ultralytics model ends with: the last output of the
    nodes the exporter scoped ``/model.<layer>/``."""
    nodes = [n for n in onnx.load(str(path)).graph.node if n.name.startswith(f"/model.{layer}/")]
    return str(nodes[-1].output[0])


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configure_offline(tmp_path_factory.mktemp("cache"))
    configure_ultralytics()
    return export(tmp_path_factory.mktemp("onnx") / "yolov7-tiny-base.onnx")


@pytest.fixture(scope="module")
def names(onnx_file: Path) -> list[str]:
    return [layer_output(onnx_file, layer) for layer in LAYERS]


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    # 80 px: both paths resize to IMGSZ, so the shared resize is compared too.
    return ProceduralGenerator(80, 80).generate({}, 6, seed=3).images


def test_embeddings_equal_the_torch_path(
    onnx_file: Path, names: list[str], images: np.ndarray
) -> None:
    torch_path = YoloEmbedder(
        "yolov7-tiny", shipped_base_weights(), list(LAYERS), IMGSZ, device="cpu"
    )
    onnx_path = OnnxEmbedder(onnx_file, names, IMGSZ, device="cpu", batch_size=4)
    assert names[0] == "/model.14/act/LeakyRelu_output_0"  # the exporter's scope naming
    expected, got = torch_path.embed(images), onnx_path.embed(images)
    assert got.shape == expected.shape == (6, sum(CHANNELS)) and got.dtype == np.float32
    assert onnx_path.dim == torch_path.dim
    start = 0
    for layer, channels in zip(LAYERS, CHANNELS, strict=True):
        part = slice(start, start + channels)
        np.testing.assert_allclose(got[:, part], expected[:, part], rtol=1e-4, atol=1e-6)
        scale = np.abs(expected[:, part]).max()
        assert np.abs(got[:, part] - expected[:, part]).max() <= 1e-4 * scale, layer
        start += channels
    assert not np.allclose(got[0], got[1])  # different images, different rows
    # One image alone gives its row of the batch (passes of 4 images here).
    np.testing.assert_allclose(onnx_path.embed(images[5:6])[0], got[5], rtol=1e-5, atol=1e-7)


def test_names_are_pooled_in_the_order_given(
    onnx_file: Path, names: list[str], images: np.ndarray
) -> None:
    both = OnnxEmbedder(onnx_file, [names[1], names[0], names[1]], IMGSZ, device="cpu")
    assert both.layers == (names[1], names[0])  # a repeat is dropped
    p4 = OnnxEmbedder(onnx_file, [names[1]], IMGSZ, device="cpu")
    assert both.dim == 256 + 128 and p4.dim == 256
    np.testing.assert_allclose(both.embed(images[:2])[:, :256], p4.embed(images[:2]), rtol=1e-6)


def test_identity_is_the_file_digest_the_tensors_and_the_size(
    onnx_file: Path, names: list[str], tmp_path: Path
) -> None:
    base = OnnxEmbedder(onnx_file, names[:1], IMGSZ, device="cpu").fingerprint
    copy = shutil.copyfile(onnx_file, tmp_path / "elsewhere.onnx")
    assert OnnxEmbedder(copy, names[:1], IMGSZ, device="cpu").fingerprint == base
    assert OnnxEmbedder(onnx_file, names[:2], IMGSZ, device="cpu").fingerprint != base
    assert OnnxEmbedder(onnx_file, names[:1], 96, device="cpu").fingerprint != base
    other = export(tmp_path / "fixed.onnx", batch=2, imgsz=IMGSZ)  # other bytes, same net
    assert OnnxEmbedder(other, names[:1], IMGSZ, device="cpu").fingerprint != base
    torch_path = YoloEmbedder("yolov7-tiny", shipped_base_weights(), [14], IMGSZ, device="cpu")
    assert torch_path.fingerprint != base


def test_a_fixed_batch_and_size_graph_is_padded_and_checked(
    onnx_file: Path, names: list[str], images: np.ndarray, tmp_path: Path
) -> None:
    fixed = export(tmp_path / "fixed.onnx", batch=4, imgsz=IMGSZ)
    embedder = OnnxEmbedder(fixed, names[:1], IMGSZ, device="cpu", batch_size=32)
    assert embedder.pass_size == 4  # the graph's batch, whatever batch_size says
    free = OnnxEmbedder(onnx_file, names[:1], IMGSZ, device="cpu")
    # 6 images: one full pass and one padded with 2 blank images, which are dropped.
    np.testing.assert_allclose(embedder.embed(images), free.embed(images), rtol=1e-5, atol=1e-7)
    with pytest.raises(ConfigError, match=r"64x64 images only") as info:
        OnnxEmbedder(fixed, names[:1], 96, device="cpu")
    assert info.value.key == "embedder.imgsz"


def test_an_unknown_tensor_names_the_key_and_the_nearest_tensors(
    onnx_file: Path, names: list[str], config_error: Callable[..., ConfigError]
) -> None:
    typo = names[0].replace("output", "outptu")
    err = config_error("embedder.layers", OnnxEmbedder, onnx_file, [typo], IMGSZ, "cpu")
    message = str(err)
    assert "\n" not in message and typo in message
    assert repr(names[0]) in message.split("nearest:")[1]  # the intended name is offered
    assert f"python -m gen_loop onnx-tensors {onnx_file}" in message
    # A torch layer index is no tensor name either.
    config_error("embedder.layers", OnnxEmbedder, onnx_file, [14], IMGSZ, "cpu")
    config_error("embedder.layers", OnnxEmbedder, onnx_file, [], IMGSZ, "cpu")


def test_missing_or_broken_files_name_embedder_model(
    onnx_file: Path, names: list[str], tmp_path: Path, config_error: Callable[..., ConfigError]
) -> None:
    err = config_error("embedder.model", OnnxEmbedder, tmp_path / "no.onnx", names, IMGSZ)
    assert "does not exist" in str(err)
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(onnx_file.read_bytes()[:5000])
    err = config_error("embedder.model", OnnxEmbedder, truncated, names, IMGSZ)
    assert "not a readable ONNX model" in str(err) and "\n" not in str(err)
    text = tmp_path / "text.onnx"
    text.write_text("not a model")
    config_error("embedder.model", OnnxEmbedder, text, names, IMGSZ)


def test_settings_it_cannot_honour_name_their_key(
    onnx_file: Path, names: list[str], config_error: Callable[..., ConfigError]
) -> None:
    config_error("embedder.half", OnnxEmbedder, onnx_file, names, IMGSZ, "cpu", 32, True)
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        if torch.cuda.is_available():
            config_error("embedder.device", OnnxEmbedder, onnx_file, names, IMGSZ, "cuda")
        # auto on a CPU-only onnxruntime runs on the CPU.
        assert OnnxEmbedder(onnx_file, names[:1], IMGSZ, "auto").device == "cpu"


@pytest.mark.gpu
def test_cuda_provider_matches_cpu(onnx_file: Path, names: list[str], images: np.ndarray) -> None:
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("onnxruntime without CUDAExecutionProvider (pip install onnxruntime-gpu)")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    gpu = OnnxEmbedder(onnx_file, names, IMGSZ, device="cuda")
    assert gpu.device == "cuda" and gpu.pass_size == 32
    cpu = OnnxEmbedder(onnx_file, names, IMGSZ, device="cpu")
    np.testing.assert_allclose(gpu.embed(images), cpu.embed(images), rtol=1e-3, atol=1e-5)


def test_without_onnxruntime_the_error_names_embedder_onnx_and_pip(
    onnx_file: Path,
    names: list[str],
    monkeypatch: pytest.MonkeyPatch,
    compose_run: Callable[[list[str]], RunConfig],
    config_error: Callable[..., ConfigError],
) -> None:
    from gen_loop.config.validate import check_run_config

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` fails
    cfg = compose_run(["debug=smoke", "embedder=onnx", f"embedder.model={onnx_file}"])
    for err in (
        config_error("embedder", check_run_config, cfg),
        config_error("embedder", OnnxEmbedder, onnx_file, names, IMGSZ),
    ):
        assert "embedder=onnx" in str(err) and "pip install" in str(err)


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ([], "embedder.model"),  # required: not the model of the option switched from
        (["embedder.model=/no/such.onnx"], "embedder.model"),
        (["embedder.model={onnx}"], "embedder.layers"),  # nor its layers
        (
            ["embedder.model={onnx}", "embedder.layers=[x]", "embedder.weights=base"],
            "embedder.weights",
        ),
        (
            ["embedder.model={onnx}", "embedder.layers=[x]", "finetune.weights=/no.pt"],
            "finetune.weights",
        ),
    ],
)
def test_config_errors_name_their_key(
    onnx_file: Path,
    overrides: list[str],
    key: str,
    assert_config_error: Callable[[list[str], str], ConfigError],
) -> None:
    assert_config_error(["embedder=onnx", *(o.format(onnx=onnx_file) for o in overrides)], key)


def test_finetune_takes_finetune_weights_or_is_skipped_with_the_reason(
    onnx_file: Path, compose_run: Callable[[list[str]], RunConfig]
) -> None:
    onnx_run = ["debug=smoke", "embedder=onnx", f"embedder.model={onnx_file}"]
    weights, reason = finetune_weights(compose_run(onnx_run), None)
    assert weights is None and "embedder=onnx" in reason and "finetune.weights=" in reason
    pt = shipped_base_weights()
    assert finetune_weights(compose_run([*onnx_run, f"finetune.weights={pt}"]), None) == (pt, "")
    # The torch path: the embedder's checkpoint, unless finetune.weights names another.
    assert finetune_weights(compose_run(["debug=smoke"]), pt) == (pt, "")


def test_onnx_tensors_lists_what_embedder_layers_takes(
    onnx_file: Path, names: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert onnx_tensors_main([str(onnx_file), "--imgsz", str(IMGSZ)]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split("\t")[0]: line.split("\t")[1:] for line in lines[1:]}
    assert rows[names[0]] == ["128 x 8 x 8", "stride 8"]
    assert rows[names[2]] == ["512 x 2 x 2", "stride 32"]
    assert all(name.startswith(("/model.", "onnx::")) for name in rows)
    assert onnx_tensors_main([str(onnx_file.with_name("missing.onnx"))]) == 2


@pytest.mark.integration
@pytest.mark.slow
def test_smoke_run_with_embedder_onnx(onnx_file: Path, names: list[str], tmp_path: Path) -> None:
    """The loop with the ONNX embedder, fine-tuning the checkpoint the file came from."""
    proc = run_cli(
        tmp_path,
        "run",
        "debug=smoke",
        "embedder=onnx",
        f"embedder.model={onnx_file}",
        f"embedder.layers=[{names[0]}]",
        f"finetune.weights={shipped_base_weights()}",
        "hydra.run.dir=runs/onnx",
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = tmp_path / "runs" / "onnx"
    summary: Any = RunSummary.load(run_dir / "summary.json")
    assert summary.n_trials == 6 and summary.n_failed == 0
    assert {"before", "after"} <= set(summary.evaluation)
    assert Path(summary.finetuned_weights).is_file()
    assert summary.verdict.status != "unknown"
    # The study and the embedding cache know the embedder by the file's digest and tensors.
    fingerprint = OnnxEmbedder(onnx_file, names[:1], 96, device="cpu").fingerprint
    study = optuna.load_study(study_name="gen_loop", storage=f"sqlite:///{run_dir / 'optuna.db'}")
    recorded = study.user_attrs[IDENTITY_ATTR]["embedder"]
    assert recorded["fingerprint"] == fingerprint and names[0] in recorded["label"]
    assert list((tmp_path / "cache").rglob(f"embeddings/{fingerprint}-*.npy"))
