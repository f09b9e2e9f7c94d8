"""The spec's layers as a profile names them, and what a profiler measured for them.

Every profile row is one spec layer (named as :func:`harness.macs.count` names
it, with its analytic MACs) or the :data:`UNATTRIBUTED` row: time the profiler
saw in events that belong to no layer (copies, casts, layout changes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.macs import count
from harness.spec import ModelSpec

#: What each spec layer does, in model order of first appearance.
ROLES = (
    "stem",
    "expand 1x1",
    "depthwise 3x3",
    "standard 3x3",
    "project 1x1",
    "head",
    "pool",
    "classifier",
)
#: The row (and role) of time no spec layer owns.
UNATTRIBUTED = "(unattributed)"

#: Role of a block layer by its name's last part (``block3.dw`` -> depthwise 3x3).
_BLOCK_ROLES = {
    "expand": "expand 1x1",
    "dw": "depthwise 3x3",
    "conv": "standard 3x3",
    "project": "project 1x1",
}


@dataclass(frozen=True)
class SpecLayer:
    """One layer of the spec: its name, role and analytic MACs at batch 1."""

    name: str
    role: str
    macs: int


def spec_layers(spec: ModelSpec) -> tuple[SpecLayer, ...]:
    """Every layer of ``spec`` in model order; their MACs add up to the model's."""
    return tuple(SpecLayer(row.name, role_of(row.name), row.macs) for row in count(spec).layers)


def role_of(name: str) -> str:
    """The role of a spec layer name (``stem``, ``block3.dw``, ``head``, ...)."""
    if name in ("stem", "head", "pool", "classifier"):
        return name
    block, _, part = name.partition(".")
    if block.startswith("block") and part in _BLOCK_ROLES:
        return _BLOCK_ROLES[part]
    raise ValueError(f"{name!r} is not a spec layer name")


@dataclass
class LayerTimes:
    """A profiler's events, attributed: per profiled iteration, ms per spec layer.

    ``iterations[i]`` maps layer names (and :data:`UNATTRIBUTED`) to the milliseconds
    of iteration ``i``; a layer with no event in an iteration is absent there.
    Every event is counted once: ``mapped_events + unattributed_events == events``.
    """

    iterations: list[dict[str, float]] = field(default_factory=list)
    events: int = 0
    mapped_events: int = 0
    unattributed_events: int = 0
    #: Distinct names of the unattributed events (what the profiler called them).
    unattributed_names: list[str] = field(default_factory=list)
    #: The profiler and how its events were read (one line, for the report).
    source: str = ""


class ProfileError(RuntimeError):
    """A profile whose events cannot be mapped to the spec: the cell fails with this text."""
