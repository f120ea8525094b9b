"""The receiving side's memory of unfinished files, so a new offer of the same file
resumes where the last one stopped (XEP-0234 §6.1 ranges).

An index in the download folder maps each partial file to what identifies the
offer it came from: the sender's bare JID, the offered name, size and date. It
is rewritten atomically; a partial whose entry is gone is never reused.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

INDEX = ".pyjingle-partials.json"


@dataclass(frozen=True)
class Offer:
    peer: str
    name: str
    size: int
    date: str | None


def _load(folder: Path) -> dict[str, dict[str, object]]:
    try:
        data = json.loads((folder / INDEX).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _save(folder: Path, index: dict[str, dict[str, object]]) -> None:
    tmp = folder / (INDEX + ".tmp")
    tmp.write_text(json.dumps(index, indent=1, sort_keys=True))
    os.replace(tmp, folder / INDEX)


def find(folder: Path, offer: Offer) -> tuple[Path, int] | None:
    """A partial file of this very offer, and how many bytes it already has."""
    for partial, entry in _load(folder).items():
        path = folder / partial
        if entry == asdict(offer) and not path.is_symlink() and path.is_file():
            have = path.stat().st_size
            if 0 < have < offer.size:
                return path, have
    return None


def remember(folder: Path, partial: Path, offer: Offer) -> None:
    index = _load(folder)
    index[partial.name] = asdict(offer)
    _save(folder, index)


def forget(folder: Path, partial: Path) -> None:
    index = _load(folder)
    if index.pop(partial.name, None) is not None:
        _save(folder, index)
    with contextlib.suppress(FileNotFoundError):
        if not index:
            (folder / INDEX).unlink()
