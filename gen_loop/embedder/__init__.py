"""Embedders: images in, the detector's pooled features out."""

from gen_loop.embedder.base import Embedder
from gen_loop.embedder.cache import cached_embeddings
from gen_loop.embedder.exported import OnnxEmbedder
from gen_loop.embedder.weights import build_model, model_yaml, shipped_base_weights
from gen_loop.embedder.yolo import YoloEmbedder, resolve_device

__all__ = [
    "Embedder",
    "OnnxEmbedder",
    "YoloEmbedder",
    "build_model",
    "cached_embeddings",
    "model_yaml",
    "resolve_device",
    "shipped_base_weights",
]
