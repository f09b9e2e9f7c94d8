"""The backend interface: how an artifact becomes a callable, and nothing else.

A backend never times itself: :mod:`harness.measure` wraps :meth:`Backend.run`.
"""

from __future__ import annotations

import importlib.util
import sys
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from harness.exporters.base import Artifact
from harness.formats import FORMATS
from harness.measure.threads import check_threads
from harness.versions import distribution_version


class Backend(ABC):
    """A runtime adapter. Subclasses set the class attributes and the four methods."""

    name: ClassVar[str]
    artifact_format: ClassVar[str]
    layout: ClassVar[str]  # NCHW | NHWC: what ``prepare`` hands to ``run``
    #: Python module probed by ``available`` and distribution naming the runtime's version;
    #: both default to the runtime of ``artifact_format`` in :data:`harness.formats.FORMATS`.
    module: ClassVar[str]
    distribution: ClassVar[str]
    #: Named call paths; the first is the default (the fastest idiomatic one).
    modes: ClassVar[tuple[str, ...]] = ("default",)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fmt = FORMATS.get(getattr(cls, "artifact_format", ""))
        if fmt is not None:
            cls.module = getattr(cls, "module", None) or fmt.runtime_module
            cls.distribution = getattr(cls, "distribution", None) or fmt.runtime_distribution

    def __init__(self, mode: str | None = None, threads: int = 1) -> None:
        mode = mode or self.modes[0]
        if mode not in self.modes:
            raise ValueError(f"backend {self.name!r} has no mode {mode!r} (modes: {self.modes})")
        check_threads(threads)
        self.mode = mode
        self.threads = threads
        self.pin_threads()

    def pin_threads(self) -> None:
        """Size this runtime's thread pools to ``self.threads``; runs in the constructor.

        Runtimes with process-wide pools (torch, TensorFlow) pin them here;
        runtimes that take a thread count per session read ``self.threads`` in
        :meth:`load`. Every caller (runner cell, parity, benchmarks) therefore
        gets the same pinning by constructing the backend.
        """
        return

    @classmethod
    def available(cls) -> tuple[bool, str]:
        """Whether this backend can run here; never raises. Default: the module imports."""
        return module_available(cls.module)

    #: Modes that exist only on macOS (Apple's accelerators), with what they need.
    macos_modes: ClassVar[dict[str, str]] = {}

    @classmethod
    def mode_available(cls, mode: str) -> tuple[bool, str]:
        """Whether one mode can run here; a macOS-only mode elsewhere says why not."""
        ok, reason = cls.available()
        if ok and mode in cls.macos_modes:
            if sys.platform != "darwin":
                return False, f"{cls.macos_modes[mode]} exists only on macOS"
            return cls.runtime_has(mode)
        return ok, reason

    @classmethod
    def runtime_has(cls, mode: str) -> tuple[bool, str]:
        """On macOS: whether the installed runtime offers a macOS-only mode."""
        return True, ""

    @classmethod
    def precision_available(cls, precision: str) -> tuple[bool, str]:
        """Whether this runtime can run its format's ``precision`` file on this device.

        The default: the format has that variant. Runtimes add what the device
        or the toolchain must offer (native arithmetic, a compiler).
        """
        reason = FORMATS[cls.artifact_format].absent_reason(precision)
        return (False, reason) if reason else (True, "")

    @classmethod
    def mode_precision_available(cls, mode: str, precision: str) -> tuple[bool, str]:
        """Whether ``mode`` can run the ``precision`` file (default: every mode can)."""
        return True, ""

    def compute_note(self) -> str | None:
        """After :meth:`load`: what the runtime really computes in, when the file's
        precision does not say it (fp16 weights upcast to fp32, casts around ops);
        it goes into the row's ``reason``. None when the file's precision is what runs.
        """
        return None

    @classmethod
    def version(cls) -> str | None:
        return distribution_version(cls.distribution)

    @abstractmethod
    def load(self, artifact: Artifact) -> None:
        """Load the artifact / create the session (timed as load_ms)."""

    def prepare(self, batch: np.ndarray) -> Any:
        """Turn an NCHW float32 batch into this runtime's input (not timed)."""
        return to_layout(batch, self.layout)

    @abstractmethod
    def run(self, prepared: Any) -> np.ndarray:
        """One inference (the timed call); returns the output as numpy."""


def to_layout(batch: np.ndarray, layout: str) -> np.ndarray:
    """NCHW float32 batch -> contiguous array in ``layout``."""
    if layout == "NHWC":
        return np.ascontiguousarray(batch.transpose(0, 2, 3, 1))
    return np.ascontiguousarray(batch)


def module_available(module: str) -> tuple[bool, str]:
    """Whether ``module`` is installed, without importing it."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if found:
        return True, ""
    return False, f"python module {module!r} is not installed"
