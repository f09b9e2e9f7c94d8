"""Backends (and an exporter) that misbehave on purpose, loaded as ``fake_backends:Name``."""

from __future__ import annotations

import os
import time

import numpy as np

from harness.backends.base import Backend


class _Fake(Backend):
    artifact_format = "pytorch"
    layout = "NCHW"
    module = "numpy"
    distribution = "numpy"

    def load(self, artifact):
        self.classes = 1000

    def run(self, prepared):
        return np.zeros((prepared.shape[0], self.classes), dtype=np.float32)


class RaisingBackend(_Fake):
    name = "raising"

    def load(self, artifact):
        raise RuntimeError("boom: this backend always fails to load")


class AbortingBackend(_Fake):
    name = "aborting"

    def run(self, prepared):
        os.abort()


class HangingBackend(_Fake):
    name = "hanging"

    def run(self, prepared):
        time.sleep(3600)


class ZerosBackend(_Fake):
    """Runs fine but computes the wrong function: parity must flag it."""

    name = "zeros"


def failing_exporter(model, spec, out_dir, calibration):
    """A variant exporter whose calibration always fails (``fake_backends:failing_exporter``)."""
    raise RuntimeError("calibration diverged: every activation range is NaN")
