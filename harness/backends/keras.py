"""Keras 3 (TensorFlow): the ``.keras`` model called through a compiled ``tf.function``.

Never ``model.predict`` in a loop (it rebuilds a data pipeline per call). Modes:
``graph`` (``tf.function``, default) and ``xla`` (``jit_compile=True``).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from harness.backends.base import Artifact, Backend

log = logging.getLogger(__name__)


class KerasBackend(Backend):
    name = "keras"
    artifact_format = "keras"
    layout = "NHWC"
    modes = ("graph", "xla")

    def pin_threads(self) -> None:
        """TensorFlow's intra-op pool to ``threads``, inter-op to 1 (process-wide)."""
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(self.threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError as exc:  # the runtime is already initialised
            log.warning("TensorFlow threads already fixed, env settings apply: %s", exc)

    def load(self, artifact: Artifact) -> None:
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
