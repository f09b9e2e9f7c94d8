"""Runtime adapters: the extension point. One file per backend, one entry here."""

from __future__ import annotations

import importlib

from harness.backends.base import Artifact, Backend
from harness.backends.coreml import CoreMLBackend
from harness.backends.keras import KerasBackend
from harness.backends.onnxruntime import OnnxRuntimeBackend
from harness.backends.pytorch import PyTorchBackend
from harness.backends.tflite import TFLiteBackend

REGISTRY: dict[str, type[Backend]] = {
    cls.name: cls
    for cls in (PyTorchBackend, KerasBackend, OnnxRuntimeBackend, TFLiteBackend, CoreMLBackend)
}


def get_backend(name: str) -> type[Backend]:
    """A registered backend by name, or a plugin given as ``package.module:ClassName``."""
    if name in REGISTRY:
        return REGISTRY[name]
    if ":" in name:
        module, _, attr = name.partition(":")
        cls = getattr(importlib.import_module(module), attr, None)
        if isinstance(cls, type) and issubclass(cls, Backend):
            return cls
    raise KeyError(f"unknown backend {name!r}: choose from {', '.join(REGISTRY)}")


__all__ = ["REGISTRY", "Artifact", "Backend", "get_backend"]
