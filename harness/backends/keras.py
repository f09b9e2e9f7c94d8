"""Keras 3 (TensorFlow): the ``.keras`` model called through a compiled ``tf.function``.

Never ``model.predict`` in a loop (it rebuilds a data pipeline per call). Modes:
``graph`` (``tf.function``, default) and ``xla`` (``jit_compile=True``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.backends.base import Artifact, Backend


class KerasBackend(Backend):
    name = "keras"
    artifact_format = "keras"
    layout = "NHWC"
    module = "keras"
    distribution = "keras"
    modes = ("graph", "xla")

    def load(self, artifact: Artifact, threads: int, options: dict[str, Any] | None = None) -> None:
        import keras
        import tensorflow as tf

        model = keras.saving.load_model(artifact.path, compile=False)
        self._tf = tf
        self._fn = tf.function(
            lambda x: model(x, training=False),
            jit_compile=self.mode == "xla",
            reduce_retracing=True,
        )

    def prepare(self, batch: np.ndarray) -> Any:
        return self._tf.constant(super().prepare(batch))

    def run(self, prepared: Any) -> np.ndarray:
        return self._fn(prepared).numpy()
