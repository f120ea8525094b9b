"""The package version, as installed (``status.version``, ``--version``)."""

from __future__ import annotations

from importlib import metadata


def version() -> str:
    try:
        return metadata.version("pyjingle")
    except metadata.PackageNotFoundError:  # run from a source tree without install
        return "0+unknown"
