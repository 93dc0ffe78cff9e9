"""Generators: parameters in, labeled images out."""

from gen_loop.generator.base import DEFAULT_CLASS_NAMES, Batch, Generator, image_seeds
from gen_loop.generator.command import CommandGenerator
from gen_loop.generator.folder import FolderGenerator
from gen_loop.generator.params import ParamSpec, ParamValue
from gen_loop.generator.procedural import SCENE_PARAMETERS, ProceduralGenerator
from gen_loop.generator.sensor import SENSOR_PARAMETERS, SensorModel

__all__ = [
    "DEFAULT_CLASS_NAMES",
    "SCENE_PARAMETERS",
    "SENSOR_PARAMETERS",
    "Batch",
    "CommandGenerator",
    "FolderGenerator",
    "Generator",
    "ParamSpec",
    "ParamValue",
    "ProceduralGenerator",
    "SensorModel",
    "image_seeds",
]
