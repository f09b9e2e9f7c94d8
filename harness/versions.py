"""Installed versions of Python distributions, read from metadata (nothing is imported)."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable


def distribution_version(name: str) -> str | None:
    """The installed version of ``name``, or None when it is not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def distribution_versions(names: Iterable[str]) -> dict[str, str | None]:
    return {name: distribution_version(name) for name in names}
