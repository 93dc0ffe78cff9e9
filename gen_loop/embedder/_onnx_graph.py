"""Reading and editing an ONNX graph in memory: its image input, its 4-D tensors, and a copy
whose outputs are chosen intermediate tensors (with every node they do not need removed).

Only the ``onnx`` package is used here (no runtime); its shape inference gives each tensor's
rank and shape at a probe input size.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gen_loop.errors import ConfigError

if TYPE_CHECKING:
    import onnx

MODEL_KEY = "embedder.model"
LAYERS_KEY = "embedder.layers"


@dataclass(frozen=True)
class ImageInput:
    """The graph's one image input, ``(N, 3, H, W)``; a dimension is None where it is free."""

    name: str
    elem_type: int  # onnx.TensorProto data type (FLOAT, FLOAT16, ...)
    batch: int | None
    height: int | None
    width: int | None


def load_model(path: Path) -> onnx.ModelProto:
    """The model in ``path``, checked to be a readable ONNX graph.

    Raises:
        ConfigError: naming ``embedder.model`` when the file is missing, not ONNX or broken.
    """
    import onnx

    if not path.is_file():
        raise ConfigError(MODEL_KEY, f"{path} does not exist; give the path of an .onnx file")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as err:  # protobuf's DecodeError, the checker's ValidationError, OSError
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ConfigError(
            MODEL_KEY, f"{path} is not a readable ONNX model ({type(err).__name__}: {first})"
        ) from None
    return model


def image_input(model: onnx.ModelProto, path: Path) -> ImageInput:
    """The graph's image input; ``ConfigError`` on ``embedder.model`` unless there is exactly
    one, of shape ``(N, 3, H, W)``."""
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise ConfigError(
            MODEL_KEY,
            f"{path} has {len(inputs)} inputs ({[i.name for i in inputs]}); an embedder needs "
            "a graph with one image input (N, 3, H, W)",
        )
    tensor = inputs[0].type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    if len(dims) != 4 or dims[1] not in (3, None):
        raise ConfigError(
            MODEL_KEY, f"{path}: input {inputs[0].name!r} has shape {dims}, not (N, 3, H, W)"
        )
    return ImageInput(inputs[0].name, tensor.elem_type, dims[0], dims[2], dims[3])


def feature_tensors(
    model: onnx.ModelProto, image: ImageInput, imgsz: int
) -> dict[str, tuple[int | None, ...]]:
    """Every 4-D tensor the graph computes, in graph order, with its shape for one
    ``imgsz x imgsz`` image (None where shape inference could not tell)."""
    import onnx

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    graph_input = next(i for i in probe.graph.input if i.name == image.name)
    dims = graph_input.type.tensor_type.shape.dim
    for dim, value in zip(dims, (1, 3, imgsz, imgsz), strict=True):
        dim.Clear()
        dim.dim_value = value
    inferred = onnx.shape_inference.infer_shapes(probe)
    shapes = {
        v.name: tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)
        for v in [*inferred.graph.value_info, *inferred.graph.output]
        if v.type.HasField("tensor_type")
        and len(dims := v.type.tensor_type.shape.dim) == 4
        and v.type.tensor_type.elem_type in _FLOAT_TYPES
    }
    ordered = (out for node in model.graph.node for out in node.output)
    return {name: shapes[name] for name in ordered if name in shapes}


def check_layers(
    layers: Sequence[str], tensors: dict[str, tuple[int | None, ...]], path: Path
) -> tuple[str, ...]:
    """``layers`` as tensor names of the graph, in the order given, without repeats.

    Raises:
        ConfigError: naming ``embedder.layers`` when a name is not a 4-D tensor of the graph,
            with the nearest names and the command that lists them all.
    """
    if not layers:
        raise ConfigError(LAYERS_KEY, f"name at least one tensor; {_listing(path)}")
    out: list[str] = []
    for layer in map(str, layers):
        if layer not in tensors:
            near = nearest_names(layer, tensors)
            raise ConfigError(
                LAYERS_KEY,
                f"{layer!r} is not a 4-D tensor of {path}; nearest: {near}; {_listing(path)}",
            )
        if layer not in out:
            out.append(layer)
    return tuple(out)


def nearest_names(name: str, candidates: Iterable[str], n: int = 4) -> list[str]:
    """The ``n`` candidates most like ``name`` (difflib's ratio), best first."""
    ranked = sorted(
        candidates, key=lambda c: -difflib.SequenceMatcher(None, name, c, autojunk=False).ratio()
    )
    return ranked[:n]


def with_outputs(model: onnx.ModelProto, names: Sequence[str]) -> onnx.ModelProto:
    """A copy of ``model`` whose outputs are the tensors ``names`` (float, any shape), keeping
    only the nodes and initializers they depend on: a pass computes nothing it does not use."""
    import onnx

    types = _elem_types(model)
    producer = {out: node for node in model.graph.node for out in node.output}
    needed: set[int] = set()
    stack = list(names)
    while stack:
        node = producer.get(stack.pop())
        if node is None or id(node) in needed:
            continue
        needed.add(id(node))
        stack.extend(_inputs(node))
    nodes = [node for node in model.graph.node if id(node) in needed]
    used = {name for node in nodes for name in _inputs(node)}
    edited = onnx.ModelProto()
    edited.CopyFrom(model)
    graph = edited.graph
    del graph.node[:]
    graph.node.extend(nodes)
    kept = [t for t in model.graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    del graph.output[:]
    graph.output.extend(
        onnx.helper.make_tensor_value_info(name, types.get(name, onnx.TensorProto.FLOAT), None)
        for name in names
    )
    return edited


def _inputs(node: onnx.NodeProto) -> list[str]:
    """The tensors a node reads, those read inside its subgraphs (If, Loop) included."""
    names = [name for name in node.input if name]
    for attr in node.attribute:
        for graph in [attr.g] if attr.HasField("g") else list(attr.graphs):
            names.extend(name for inner in graph.node for name in _inputs(inner))
    return names


def _elem_types(model: onnx.ModelProto) -> dict[str, int]:
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    return {
        v.name: v.type.tensor_type.elem_type
        for v in [*inferred.graph.value_info, *inferred.graph.output]
        if v.type.HasField("tensor_type")
    }


def _listing(path: Path) -> str:
    return f"list them all with `python -m gen_loop onnx-tensors {path}`"


# onnx.TensorProto FLOAT, FLOAT16, DOUBLE, BFLOAT16: feature maps that can be averaged.
_FLOAT_TYPES = (1, 10, 11, 16)
