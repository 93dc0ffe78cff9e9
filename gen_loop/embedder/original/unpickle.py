"""Read an original-YOLOv7 checkpoint without the original repository, and run no code of it.

The original code (github.com/WongKinYiu/yolov7) saves the whole model object, so its ``.pt``
pickles name that repository's classes (``models.yolo.Model``, ``models.common.Conv``, ...).
This reader maps each of those names to an inert stand-in (a plain ``torch.nn.Module`` that only
keeps the attributes, parameters and buffers the pickle gives it), allows the few ``torch.nn``
layer classes, tensor-rebuild functions and containers such a file needs, and refuses every
other global before anything is unpickled. Unpickling only creates objects and sets their
state: no constructor, ``forward`` or other method of the original code exists here to run.
"""

from __future__ import annotations

import pickle
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

from gen_loop.errors import ConfigError

#: The classes of the original repository a supported checkpoint may name: the layers of
#: ``cfg/training/yolov7-tiny.yaml`` and ``yolov7.yaml`` (and ``Detect`` of their deploy cfgs).
ORIGINAL_CLASSES = {
    "models.yolo": frozenset({"Model", "IDetect", "Detect"}),
    "models.common": frozenset(
        {"Conv", "Concat", "MP", "SP", "SPPCSPC", "RepConv", "ImplicitA", "ImplicitM"}
    ),
}

_TORCH_LAYERS = {
    "torch.nn.modules.conv": ("Conv2d",),
    "torch.nn.modules.batchnorm": ("BatchNorm2d",),
    "torch.nn.modules.pooling": ("MaxPool2d",),
    "torch.nn.modules.upsampling": ("Upsample",),
    "torch.nn.modules.container": ("Sequential", "ModuleList"),
    "torch.nn.modules.activation": ("LeakyReLU", "SiLU", "ReLU", "Identity"),
    "torch.nn.modules.linear": ("Identity",),
}

#: Globals other than layer classes: tensors, containers, and numpy arrays (a checkpoint saved
#: during training keeps ``best_fitness`` as a numpy array).
_FUNCTIONS = {
    "torch._utils": ("_rebuild_tensor_v2", "_rebuild_parameter"),
    "collections": ("OrderedDict",),
    "builtins": ("set", "frozenset"),
    "__builtin__": ("set", "frozenset"),
    "torch": ("Size",),
    "numpy.core.multiarray": ("_reconstruct", "scalar"),
    "numpy._core.multiarray": ("_reconstruct", "scalar"),
    "numpy": ("ndarray", "dtype"),
}


class OriginalModule(nn.Module):
    """Stand-in for a class of the original repository: holds what the pickle sets, runs
    nothing (no ``forward``). :attr:`original` is the class's original dotted name."""

    original = ""


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(name)


@cache
def _stand_in(module: str, name: str) -> type[OriginalModule]:
    """One stand-in class per original class, so layers keep distinguishable types."""
    return type(name, (OriginalModule,), {"original": f"{module}.{name}"})


def _allowed(module: str, name: str) -> Any:
    """The object the global ``module.name`` unpickles as; :class:`RefusedGlobal` if none."""
    if name in ORIGINAL_CLASSES.get(module, ()):
        return _stand_in(module, name)
    if name in _TORCH_LAYERS.get(module, ()):
        return getattr(nn, name)
    if name in _FUNCTIONS.get(module, ()):
        if module in ("builtins", "__builtin__"):
            return {"set": set, "frozenset": frozenset}[name]
        if module == "collections":
            from collections import OrderedDict

            return OrderedDict
        if module.startswith("numpy"):
            import numpy as np

            return getattr(np, name) if module == "numpy" else _numpy_multiarray(name)
        return getattr(torch if module == "torch" else torch._utils, name)
    raise RefusedGlobal(f"{module}.{name}")


def _numpy_multiarray(name: str) -> Any:
    from numpy.core import multiarray  # numpy 2 keeps this alias of numpy._core

    return getattr(multiarray, name)


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        return _allowed(module, name)


#: Passed to ``torch.load`` as its ``pickle_module``: torch resolves storages itself and asks
#: this unpickler for every other global.
_PICKLE_MODULE = SimpleNamespace(Unpickler=_Unpickler, load=pickle.load, __name__="restricted")


def pickle_globals(path: Path) -> list[str]:
    """Every global a ``torch.save`` zip file's pickle names, read without unpickling
    (torch's always-safe ones, such as tensor rebuilds, left out)."""
    return list(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))


def is_original_checkpoint(path: Path) -> bool:
    """Whether ``path`` pickles classes of the original YOLOv7 code (by content, not name)."""
    try:
        names = pickle_globals(path)
    except Exception:  # not a torch zip file: not ours to read; the caller's loader reports it
        return False
    return any(n.startswith(("models.yolo.", "models.common.")) for n in names)


def read_original_checkpoint(path: Path, key: str = "embedder.weights") -> dict[str, Any]:
    """The checkpoint dict of an original-YOLOv7 ``.pt``, its model objects as stand-ins.

    Raises:
        ConfigError: naming ``key``, the file and the global, when the pickle names any global
            outside the allow-list (checked on the whole file before unpickling, and again by
            the unpickler itself); or when the file holds no model.
    """
    for name in pickle_globals(path):
        module, _, attr = name.rpartition(".")
        try:
            _allowed(module, attr)
        except RefusedGlobal as err:
            raise _refusal(key, path, err.name) from None
    try:
        ckpt = torch.load(
            str(path), map_location="cpu", pickle_module=_PICKLE_MODULE, weights_only=False
        )
    except RefusedGlobal as err:
        raise _refusal(key, path, err.name) from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), OriginalModule):
        raise ConfigError(key, f"{path} holds no original YOLOv7 model under 'model'")
    return ckpt


def _refusal(key: str, path: Path, name: str) -> ConfigError:
    return ConfigError(
        key,
        f"{path} names the global {name}, which an original YOLOv7 checkpoint never needs: "
        "refused, nothing of it was run (only the original model classes, torch layers and "
        "tensors are read)",
    )
