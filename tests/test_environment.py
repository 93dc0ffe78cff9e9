"""The machine and stack a run records (``gen_loop._environment``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gen_loop._environment import (
    PACKAGES,
    cpu_model,
    environment,
    environment_changes,
    package_version,
)


def test_the_cpu_model_is_read_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9R14\n")
    assert cpu_model(cpuinfo) == "AMD EPYC 9R14"


def test_a_missing_cpuinfo_falls_back_to_the_platform(tmp_path: Path) -> None:
    assert cpu_model(tmp_path / "absent") != ""


def test_a_package_that_is_not_installed_says_so() -> None:
    assert package_version("gen-loop-no-such-distribution") == "not installed"


def test_the_environment_names_the_versions_that_run() -> None:
    found = environment()
    assert found["numpy"] == np.__version__
    assert found["torch"].split("+")[0] == torch.__version__.split("+")[0]
    assert found["torch_threads"] == str(torch.get_num_threads())
    assert set(PACKAGES) <= set(found)
    assert all(isinstance(v, str) and v for v in found.values())


def test_a_session_on_another_machine_lists_what_changed() -> None:
    before = {"cpu": "AMD EPYC 9R14", "torch": "2.14.1", "numpy": "2.4.6"}
    now = {"cpu": "Intel(R) Xeon(R) Processor", "torch": "2.14.1", "numpy": "2.4.6", "new": "1"}
    assert environment_changes(before, now) == ["cpu: AMD EPYC 9R14 -> Intel(R) Xeon(R) Processor"]
    assert environment_changes(now, now) == []
    assert environment_changes(None, now) == []  # a summary from before the record
