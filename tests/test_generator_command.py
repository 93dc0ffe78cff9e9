"""``generator=command``: an external simulator run as a command (JSON in, YOLO folder out)."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pytest
import yaml

from gen_loop.config import CommandGeneratorConfig
from gen_loop.errors import ConfigError, GeneratorError
from gen_loop.generator import SENSOR_PARAMETERS, CommandGenerator, ProceduralGenerator
from gen_loop.generator.command import parameter_specs
from gen_loop.loop.components import build_generator
from gen_loop.search.space import build_space

if TYPE_CHECKING:
    from collections.abc import Callable

    from gen_loop.config import RunConfig

SIZE = 64
REPO = Path(__file__).resolve().parents[1]
ADAPTER = REPO / "experiments" / "simulator_adapter" / "adapter.py"
SEARCHED = ("color_temp_k", "red_std_scale", "exposure_ev", "contrast", "vignetting", "fisheye")
SPECS = {
    s.name: {"low": s.low, "high": s.high, "default": s.default}
    for s in SENSOR_PARAMETERS
    if s.name in SEARCHED
}

# A fake simulator: `fake.py MODE PARAMS_JSON TEMPLATE [extra args...]`. It copies images and
# labels from TEMPLATE (a YOLO folder) and then misbehaves as MODE says.
FAKE = r"""
import json, shutil, subprocess, sys, time
from pathlib import Path

mode, request, template = sys.argv[1], json.loads(Path(sys.argv[2]).read_text()), Path(sys.argv[3])
out, n = Path(request["out_dir"]), request["n"]
if mode == "fail":
    for i in range(30):
        print(f"sim error line {i}", file=sys.stderr)
    sys.exit(1)
if mode == "sleep":
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    Path(sys.argv[4]).write_text(str(child.pid))
    print("rendering...", file=sys.stderr, flush=True)
    time.sleep(60)
if mode == "nothing":
    sys.exit(0)
if mode == "argv":
    (out / "argv.json").write_text(json.dumps(sys.argv))
count = n - 1 if mode == "fewer" else n + 1 if mode == "more" else n
(out / "images").mkdir()
(out / "labels").mkdir()
for i in range(count):
    shutil.copy(template / "images" / f"{i}.png", out / "images" / f"{i:04d}.png")
    shutil.copy(template / "labels" / f"{i}.txt", out / "labels" / f"{i:04d}.txt")
if mode != "noyaml":
    shutil.copy(template / "data.yaml", out / "data.yaml")
if mode == "garbage":
    (out / "images" / "0001.png").write_bytes(b"\x00garbage, not a png")
if mode == "badlabel":
    with open(out / "labels" / "0000.txt", "a") as f:
        f.write("7 0.5 0.5 0.1 0.1\n")
"""


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The fake simulator script and its template YOLO folder (5 images)."""
    root = tmp_path_factory.mktemp("fake")
    template = root / "template"
    (template / "images").mkdir(parents=True)
    (template / "labels").mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        image = rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)
        cv2.imwrite(str(template / "images" / f"{i}.png"), image)
        (template / "labels" / f"{i}.txt").write_text(f"{i % 2} 0.5 0.5 0.25 0.25\n")
    (template / "data.yaml").write_text(yaml.safe_dump({"names": ["car", "person"]}))
    script = root / "fake.py"
    script.write_text(FAKE)
    return script, template


def _fake_gen(fake: tuple[Path, Path], mode: str, *extra: str, **kwargs) -> CommandGenerator:
    script, template = fake
    argv = [sys.executable, str(script), mode, "{params_json}", str(template), *extra]
    return CommandGenerator(argv, SPECS, SIZE, SIZE, **{"timeout_s": 60.0, **kwargs})


def test_the_example_adapter_renders_what_was_asked(tmp_path: Path) -> None:
    work = tmp_path / "work"
    argv = [sys.executable, str(ADAPTER), "{params_json}"]
    gen = CommandGenerator(argv, SPECS, SIZE, SIZE, 120.0, str(work), keep_outputs=True)
    bent = gen.generate({"fisheye": 0.5, "color_temp_k": 4500.0}, 3, seed=4)
    straight = gen.generate({}, 3, seed=4)
    assert bent.images.shape == (3, SIZE, SIZE, 3) and len(bent.labels) == 3
    assert bent.class_names == ("car", "truck", "pedestrian")
    assert bent.params["fisheye"] == 0.5 and bent.params["contrast"] == 1.0
    assert not np.array_equal(bent.images, straight.images)
    # the adapter's stand-in renders exactly what the in-process generator renders
    expected = ProceduralGenerator(SIZE, SIZE).generate(bent.params, 3, seed=4)
    assert np.array_equal(bent.images, expected.images)
    for got, want in zip(bent.labels, expected.labels, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5)
    request = json.loads((work / "call_0001.json").read_text())
    assert request["seed"] == 4 and request["n"] == 3 and request["params"]["fisheye"] == 0.5
    assert request["out_dir"] == str(work / "call_0001")
    written = [json.loads((work / f"call_000{k}" / "params.json").read_text()) for k in (1, 2)]
    assert [w["params"]["fisheye"] for w in written] == [0.5, 0.0]


def test_outputs_are_deleted_after_reading_unless_kept(fake, tmp_path: Path) -> None:
    gen = _fake_gen(fake, "ok", work_dir=str(tmp_path / "w"))
    batch = gen.generate({}, 3, seed=0)
    assert len(batch) == 3 and batch.class_names == ("car", "person")
    assert [lab[:, 0].tolist() for lab in batch.labels] == [[0.0], [1.0], [0.0]]
    assert list((tmp_path / "w").iterdir()) == []
    tmp_default = _fake_gen(fake, "ok")  # no work_dir: a temporary folder
    assert len(tmp_default.generate({}, 2, seed=0)) == 2


def test_arguments_never_go_through_a_shell(fake, tmp_path: Path) -> None:
    victim, pwned = tmp_path / "victim", tmp_path / "pwned"
    victim.mkdir()
    extra = [
        f"; rm -rf {victim}",
        f"$(touch {pwned})",
        f"`touch {pwned}`",
        "a b  'c'",
        "{n}-{seed}",
    ]
    gen = _fake_gen(fake, "argv", *extra, work_dir=str(tmp_path / "w"), keep_outputs=True)
    gen.generate({}, 2, seed=5)
    received = json.loads((tmp_path / "w" / "call_0001" / "argv.json").read_text())
    assert received[4:] == [*extra[:4], "2-5"]
    assert victim.is_dir() and not pwned.exists()


def test_a_failing_command_raises_with_its_stderr_tail(fake) -> None:
    with pytest.raises(GeneratorError) as info:
        _fake_gen(fake, "fail").generate({}, 2, seed=0)
    message = str(info.value)
    assert "exited with code 1" in message and "stderr (last 20 lines)" in message
    assert "sim error line 29" in message and "sim error line 10" in message
    assert "sim error line 9\n" not in message


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_a_command_past_its_timeout_is_killed_with_its_children(fake, tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    gen = _fake_gen(fake, "sleep", str(pid_file), timeout_s=1.5)
    start = time.monotonic()
    with pytest.raises(GeneratorError, match=r"timed out after 1\.5 s") as info:
        gen.generate({}, 2, seed=0)
    assert time.monotonic() - start < 15
    assert "rendering..." in str(info.value)  # what it printed before the kill
    if Path("/proc").is_dir():
        child = int(pid_file.read_text())
        deadline = time.monotonic() + 5
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child)


@pytest.mark.parametrize(
    ("mode", "problem"),
    [
        ("nothing", "exited 0 but wrote nothing"),
        ("fewer", "wrote 2 images to .*, expected n=3"),
        ("more", "wrote 4 images to .*, expected n=3"),
        ("garbage", r"unreadable image\(s\): .*0001\.png \(cannot decode\)"),
        ("badlabel", r"bad label line\(s\): .*0000\.txt:2: class id 7 is not below"),
        ("noyaml", r"no data\.yaml with 'names'"),
    ],
)
def test_bad_output_raises_naming_the_problem(fake, mode: str, problem: str) -> None:
    with pytest.raises(GeneratorError, match=problem):
        _fake_gen(fake, mode).generate({}, 3, seed=0)


def test_output_without_names_uses_configured_class_names(fake) -> None:
    batch = _fake_gen(fake, "noyaml", class_names=["a", "b"]).generate({}, 2, seed=0)
    assert batch.class_names == ("a", "b")


def test_a_missing_program_is_a_generator_error(tmp_path: Path) -> None:
    gen = CommandGenerator([str(tmp_path / "no-such-sim")], SPECS, SIZE, SIZE)
    with pytest.raises(GeneratorError, match="cannot start simulator command"):
        gen.generate({}, 1, seed=0)


def test_parameter_declarations_are_checked() -> None:
    specs = parameter_specs(
        {
            "iso": {"low": 100, "high": 3200, "default": 400, "type": "int"},
            "lens": {"choices": ["pinhole", "fisheye"], "default": "pinhole"},
        }
    )
    assert specs["iso"].validate(801.7) == 801 and specs["lens"].validate("fisheye") == "fisheye"
    assert parameter_specs({"ev": {"low": -1, "high": 1, "default": 0}})["ev"].validate(0.5) == 0.5
    bad = {
        "no default": {"low": 0, "high": 1},
        "low above high": {"low": 2, "high": 1, "default": 1.5},
        "default outside": {"low": 0, "high": 1, "default": 3},
        "default not a choice": {"choices": ["a"], "default": "b"},
        "typo": {"low": 0, "hihg": 1, "default": 0},
    }
    for name, entry in bad.items():
        with pytest.raises(ConfigError, match=re.escape(f"generator.parameters.{name}")):
            parameter_specs({name: entry})
    with pytest.raises(ConfigError, match=r"generator\.command"):
        CommandGenerator("sim --x", SPECS)  # type: ignore[arg-type]


def test_loop_config_with_the_command_generator(
    compose_run: Callable[[list[str]], RunConfig],
) -> None:
    cfg = compose_run(["debug=smoke", "generator=command"])
    assert isinstance(cfg.generator, CommandGeneratorConfig)
    gen, params = build_generator(cfg.generator)
    assert isinstance(gen, CommandGenerator) and (gen.width, gen.height) == (96, 96)
    assert gen.command == (sys.executable, str(ADAPTER), "{params_json}")
    assert set(gen.parameters) == set(SEARCHED) and params == {
        s: SPECS[s]["default"] for s in SEARCHED
    }
    space = build_space(cfg.search.space, gen.parameters, cfg.search.fixed, cfg.search.enqueue)
    assert set(space.distributions) == set(SEARCHED)  # the default search fits the declaration
    narrow = compose_run(
        ["debug=smoke", "generator=command", "generator.parameters.fisheye.high=0.5"]
    )
    narrowed, _ = build_generator(narrow.generator)
    with pytest.raises(ConfigError, match=r"search\.space\.fisheye"):
        build_space(narrow.search.space, narrowed.parameters)
