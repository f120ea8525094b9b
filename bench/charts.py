"""Benchmark figures as PNG charts (matplotlib, headless), written beside the text output
into ``docs/bench/`` for the README. Without matplotlib the benchmarks only print."""

from __future__ import annotations

from pathlib import Path

FOLDER = Path(__file__).resolve().parents[1] / "docs" / "bench"


def bars(name: str, title: str, unit: str, groups: dict[str, dict[str, float]]) -> Path | None:
    """A grouped bar chart: one group per key of ``groups`` (e.g. a file size), one bar
    per series inside it (e.g. plain copy, hashing copy, SOCKS5). Returns the PNG path."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    series = list(dict.fromkeys(s for values in groups.values() for s in values))
    width = 0.8 / max(1, len(series))
    figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
    for i, label in enumerate(series):
        xs = [g + i * width for g in range(len(groups))]
        heights = [values.get(label, 0.0) for values in groups.values()]
        drawn = axes.bar(xs, heights, width, label=label)
        axes.bar_label(drawn, fmt="%.0f" if max(heights) >= 100 else "%.1f", fontsize=8)
    crowded = len(groups) > 4 or max(len(g) for g in groups) > 12
    axes.set_xticks([g + width * (len(series) - 1) / 2 for g in range(len(groups))],
                    list(groups), rotation=20 if crowded else 0,
                    ha="right" if crowded else "center", fontsize=9)
    axes.set_ylabel(unit)
    axes.set_title(title, fontsize=10)
    if len(series) > 1:
        axes.legend(fontsize=8, loc="upper center",
                    bbox_to_anchor=(0.5, -0.22 if crowded else -0.12),
                    ncol=min(3, len(series)), frameon=False)
    figure.tight_layout()
    FOLDER.mkdir(parents=True, exist_ok=True)
    path = FOLDER / f"{name}.png"
    figure.savefig(path)
    plt.close(figure)
    return path
