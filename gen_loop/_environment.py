"""What a run ran on: the package versions, the CPU and the threads behind its numbers.

The loop's distances depend on the floating-point path of the embedder (torch's convolution
kernels, chosen by CPU and thread count) and of the search (numpy/scipy's BLAS): two machines
give distances that differ in the fifth or sixth digit, and a search decision taken on such a
difference (a step accepted or halved) can lead two runs of the same seed apart
(``experiments/recovery/BASINS.md``, "Runs are not reproducible across machines"). Each run
records this, in ``summary.json`` and as MLflow tags, so that two results can be told apart by
what they ran on.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

#: The distributions whose versions can change a run's numbers.
PACKAGES = (
    "torch",
    "torchvision",
    "numpy",
    "scipy",
    "opencv-python-headless",
    "pillow",
    "albumentations",
    "ultralytics",
    "optuna",
)


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name (Linux's ``/proc/cpuinfo``), else ``platform.processor()``."""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def package_version(name: str) -> str:
    """The installed version of distribution ``name``, or ``"not installed"``."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment() -> dict[str, str]:
    """The run's machine and stack, flat, e.g. ``{"cpu": ..., "torch": "2.14.1", ...}``.

    Keys: ``python``, ``machine`` (``uname -m``), ``cpu``, ``cpu_count``, ``torch_threads``,
    ``cuda`` (the GPU's name, or ``none``), and one per :data:`PACKAGES`.
    """
    import torch

    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    found = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "cpu_count": str(os.cpu_count()),
        "torch_threads": str(torch.get_num_threads()),
        "cuda": cuda,
    }
    return {**found, **{name: package_version(name) for name in PACKAGES}}


def environment_changes(before: dict[str, str] | None, now: dict[str, str]) -> list[str]:
    """What differs between an earlier session's environment and this one's, e.g.
    ``["cpu: AMD EPYC 9R14 -> Intel(R) Xeon(R) Processor"]`` (keys the earlier record lacks
    are left out; an earlier summary without a record gives none)."""
    if not before:
        return []
    return [
        f"{key}: {before[key]} -> {value}"
        for key, value in now.items()
        if key in before and before[key] != value
    ]
