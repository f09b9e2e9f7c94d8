"""Model specs: TOML files that declare an architecture, loaded into frozen dataclasses.

The spec is the only place an architecture is written. Loading validates every
field and raises :class:`SpecError` with one line naming the file and field.
No ML framework is imported here.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIN_RESOLUTION = 32
MAX_RESOLUTION = 1024
MAX_WIDTH = 4.0
#: BatchNorm epsilon when the spec has no ``[conventions]`` table (Keras' default).
DEFAULT_BN_EPS = 1e-3
#: "symmetric": k // 2 on every side (PyTorch); "same": TensorFlow's "same" padding.
STRIDE2_PADDINGS = ("symmetric", "same")


class SpecError(ValueError):
    """A spec that cannot be loaded; the message is one line for the user."""


@dataclass(frozen=True)
class Stem:
    channels: int
    kernel: int
    stride: int
    activation: str


@dataclass(frozen=True)
class BlockRow:
    """One row of the (t, c, n, s) table."""

    t: int
    c: int
    n: int
    s: int


@dataclass(frozen=True)
class Blocks:
    activation: str
    expand_when_t1: bool
    table: tuple[BlockRow, ...]


@dataclass(frozen=True)
class Head:
    channels: int
    scale_channels: str
    activation: str
    pool: str
    classifier: str
    softmax: bool


@dataclass(frozen=True)
class Conventions:
    """Numerical conventions of the framework a checkpoint was trained in.

    ``bn_eps`` is every BatchNorm's epsilon (Keras 1e-3, torchvision 1e-5).
    ``stride2_padding`` says how strided convs pad: "symmetric" pads k // 2 on
    every side (torchvision); "same" pads like TensorFlow (on an even input a
    3x3 stride-2 conv pads 0 before and 1 after; Keras applications).
    """

    bn_eps: float = DEFAULT_BN_EPS
    stride2_padding: str = "symmetric"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    resolution: int
    classes: int
    width: float
    conv: str
    rounding: str
    stem: Stem
    blocks: Blocks
    head: Head
    conventions: Conventions = Conventions()
    source: str = ""
    #: A checkpoint file the spec asks for (``[weights] file``, resolved against the
    #: spec's folder); "" for generated weights. Not part of :meth:`to_dict`: an
    #: export records the file by its sha256.
    weights: str = ""

    def with_overrides(
        self, width: float | None = None, resolution: int | None = None
    ) -> ModelSpec:
        """Return a copy with ``width``/``resolution`` replaced, validated like the file."""
        changes: dict[str, Any] = {}
        if width is not None:
            changes["width"] = _check_width(width, self.source, "--width")
        if resolution is not None:
            changes["resolution"] = _check_int(resolution, self.source, "--resolution")
        spec = dataclasses.replace(self, **changes)
        _check_resolution(spec)
        return spec

    def with_conventions(
        self, bn_eps: float | None = None, stride2_padding: str | None = None
    ) -> ModelSpec:
        """Return a copy with other conventions (e.g. a checkpoint's), validated like the file."""
        changes: dict[str, Any] = {}
        if bn_eps is not None:
            changes["bn_eps"] = bn_eps
        if stride2_padding is not None:
            changes["stride2_padding"] = stride2_padding
        merged = {**dataclasses.asdict(self.conventions), **changes}
        conventions = _check_conventions(merged, self.source or "<spec>")
        return dataclasses.replace(self, conventions=conventions)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (used for hashing and manifests)."""
        data = dataclasses.asdict(self)
        data.pop("source")
        data.pop("weights")
        return data


ACTIVATIONS = ("relu", "relu6")
_CHOICES = {
    ("model", "conv"): ("depthwise", "standard"),
    ("model", "rounding"): ("make_divisible", "truncate"),
    ("stem", "activation"): ACTIVATIONS,
    ("blocks", "activation"): ACTIVATIONS,
    ("head", "activation"): ACTIVATIONS,
    ("head", "scale_channels"): ("always", "above_one", "never"),
    ("head", "pool"): ("global", "avg7x7"),
    ("head", "classifier"): ("linear", "conv1x1"),
    ("conventions", "stride2_padding"): STRIDE2_PADDINGS,
}
_FIELDS: dict[str, dict[str, type]] = {
    "model": {
        "name": str,
        "description": str,
        "resolution": int,
        "classes": int,
        "width": float,
        "conv": str,
        "rounding": str,
    },
    "stem": {"channels": int, "kernel": int, "stride": int, "activation": str},
    "blocks": {"activation": str, "expand_when_t1": bool, "table": list},
    "head": {
        "channels": int,
        "scale_channels": str,
        "activation": str,
        "pool": str,
        "classifier": str,
        "softmax": bool,
    },
    "conventions": {"bn_eps": float, "stride2_padding": str},
    "weights": {"file": str},
}
#: Tables that may be left out, and the defaults of their keys.
_DEFAULTS: dict[str, dict[str, Any]] = {
    "conventions": dataclasses.asdict(Conventions()),
    "weights": {"file": ""},
}


def models_dir() -> Path:
    """The folder of the specs that ship with mobilebench."""
    return Path(str(importlib.resources.files("harness._models")))


def available_models() -> list[str]:
    return sorted(p.stem for p in models_dir().glob("*.toml"))


def resolve_spec_path(spec: str | Path) -> Path:
    """A spec argument is a path to a TOML file or the name of a shipped spec."""
    path = Path(spec)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise SpecError(f"{path}: no such spec file")
        return path
    shipped = models_dir() / f"{spec}.toml"
    if not shipped.is_file():
        raise SpecError(
            f"unknown model {str(spec)!r}: choose one of {', '.join(available_models())} "
            "or give a path to a .toml spec"
        )
    return shipped


def load_spec(
    spec: str | Path, width: float | None = None, resolution: int | None = None
) -> ModelSpec:
    """Load and validate a spec by name or path, applying optional overrides."""
    path = resolve_spec_path(spec)
    where = str(path)
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{where}: not valid TOML: {exc}") from None
    return parse_spec(raw, where).with_overrides(width=width, resolution=resolution)


def parse_spec(raw: dict[str, Any], where: str = "<spec>") -> ModelSpec:
    """Validate a decoded TOML document and build the spec."""
    unknown = sorted(set(raw) - set(_FIELDS))
    if unknown:
        raise SpecError(f"{where}: unknown table or key [{unknown[0]}]")
    sections = {name: _section(raw, name, where) for name in _FIELDS}
    model, stem, blocks, head = (sections[n] for n in ("model", "stem", "blocks", "head"))

    table = tuple(_parse_row(row, i, where) for i, row in enumerate(blocks["table"]))
    if not table:
        raise SpecError(f"{where}: blocks.table: needs at least one (t, c, n, s) row")

    for key in ("resolution", "classes"):
        _check_int(model[key], where, f"model.{key}")
    for key in ("channels", "kernel", "stride"):
        _check_int(stem[key], where, f"stem.{key}")
    _check_int(head["channels"], where, "head.channels")
    if stem["kernel"] % 2 == 0:
        raise SpecError(f"{where}: stem.kernel: must be odd, got {stem['kernel']}")
    if stem["stride"] not in (1, 2):
        raise SpecError(f"{where}: stem.stride: must be 1 or 2, got {stem['stride']}")

    spec = ModelSpec(
        name=model["name"],
        description=model["description"],
        resolution=model["resolution"],
        classes=model["classes"],
        width=_check_width(model["width"], where, "model.width"),
        conv=model["conv"],
        rounding=model["rounding"],
        stem=Stem(**stem),
        blocks=Blocks(
            activation=blocks["activation"], expand_when_t1=blocks["expand_when_t1"], table=table
        ),
        head=Head(**head),
        conventions=_check_conventions(sections["conventions"], where),
        source=where,
        weights=_weights_file(sections["weights"]["file"], where),
    )
    _check_resolution(spec)
    return spec


def _weights_file(file: str, where: str) -> str:
    """``[weights] file`` as an absolute path: ``~`` expanded, relative to the spec's folder."""
    if not file:
        return ""
    path = Path(file).expanduser()
    if not path.is_absolute() and where.endswith(".toml"):
        path = Path(where).parent / path
    return str(path.resolve())


def spec_from_dict(data: dict[str, Any], where: str = "<manifest>") -> ModelSpec:
    """Rebuild a spec from :meth:`ModelSpec.to_dict` output (e.g. a manifest), validated."""
    model_keys = _FIELDS["model"]
    blocks = dict(data["blocks"])
    blocks["table"] = [[r["t"], r["c"], r["n"], r["s"]] for r in blocks["table"]]
    document = {
        "model": {k: data[k] for k in model_keys},
        "stem": data["stem"],
        "blocks": blocks,
        "head": data["head"],
        "conventions": data.get("conventions", {}),  # older manifests: the defaults
    }
    return parse_spec(document, where)


def _section(raw: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    defaults = _DEFAULTS.get(name, {})
    section = raw.get(name, {} if name in _DEFAULTS else None)
    if not isinstance(section, dict):
        raise SpecError(f"{where}: missing table [{name}]")
    fields = _FIELDS[name]
    unknown = sorted(set(section) - set(fields))
    if unknown:
        raise SpecError(f"{where}: unknown key {name}.{unknown[0]}")
    out: dict[str, Any] = {}
    for key, kind in fields.items():
        if key not in section and key not in defaults:
            raise SpecError(f"{where}: missing field {name}.{key}")
        value = section.get(key, defaults.get(key))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise SpecError(
                f"{where}: {name}.{key}: expected {kind.__name__}, got {type(value).__name__}"
            )
        choices = _CHOICES.get((name, key))
        if choices and value not in choices:
            raise SpecError(f"{where}: {name}.{key}: {value!r} is not one of {', '.join(choices)}")
        out[key] = value
    return out


def _parse_row(row: Any, index: int, where: str) -> BlockRow:
    field = f"blocks.table[{index}]"
    if (
        not isinstance(row, list)
        or len(row) != 4
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in row)
    ):
        raise SpecError(f"{where}: {field}: expected 4 integers [t, c, n, s], got {row!r}")
    t, c, n, s = row
    for label, value in (("t", t), ("c", c), ("n", n)):
        if value < 1:
            raise SpecError(f"{where}: {field}: {label} must be >= 1, got {value}")
    if s not in (1, 2):
        raise SpecError(f"{where}: {field}: s must be 1 or 2, got {s}")
    return BlockRow(t=t, c=c, n=n, s=s)


def _check_conventions(data: dict[str, Any], where: str) -> Conventions:
    """Validate a (complete) conventions mapping; one-line errors name the field."""
    eps = data["bn_eps"]
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not math.isfinite(eps):
        raise SpecError(f"{where}: conventions.bn_eps: must be a number, got {eps!r}")
    if eps <= 0:
        raise SpecError(f"{where}: conventions.bn_eps: must be > 0, got {eps:g}")
    padding = data["stride2_padding"]
    if padding not in STRIDE2_PADDINGS:
        raise SpecError(
            f"{where}: conventions.stride2_padding: {padding!r} is not one of "
            f"{', '.join(STRIDE2_PADDINGS)}"
        )
    return Conventions(bn_eps=float(eps), stride2_padding=padding)


def _check_int(value: Any, where: str, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SpecError(f"{where}: {field}: must be a positive integer, got {value!r}")
    return value


def _check_width(value: Any, where: str, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SpecError(f"{where}: {field}: must be a number, got {value!r}")
    if not 0 < value <= MAX_WIDTH:
        raise SpecError(f"{where}: {field}: must be in (0, {MAX_WIDTH:g}], got {value:g}")
    return float(value)


def final_feature_size(spec: ModelSpec) -> int:
    """Side of the last feature map: each stride-2 layer maps n -> ceil(n / 2)."""
    size = spec.resolution
    strides = [spec.stem.stride] + [row.s for row in spec.blocks.table]
    for stride in strides:
        size = -(-size // stride)
    return size


def _check_resolution(spec: ModelSpec) -> None:
    res = spec.resolution
    where = spec.source or "<spec>"
    if not MIN_RESOLUTION <= res <= MAX_RESOLUTION:
        raise SpecError(
            f"{where}: resolution: {res} is outside [{MIN_RESOLUTION}, {MAX_RESOLUTION}]"
        )
    if spec.head.pool == "avg7x7":
        final = final_feature_size(spec)
        if final != 7:
            total_stride = math.prod([spec.stem.stride] + [row.s for row in spec.blocks.table])
            raise SpecError(
                f"{where}: resolution: {res} gives a {final}x{final} final feature map, but "
                f"head.pool 'avg7x7' needs exactly 7x7 (resolution {6 * total_stride + 1} "
                f"to {7 * total_stride})"
            )
