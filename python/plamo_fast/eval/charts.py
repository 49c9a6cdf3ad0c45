"""PNG bar charts of benchmark results (matplotlib, from the ``[train]`` extra; without it no
chart is drawn and the caller says so)."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path


def bar_chart(
    path: Path, title: str, series: dict[str, dict[str, float | None]], top: float | None = None
) -> bool:
    """Grouped bars: a group per category, a bar per series (model). Returns False, drawing
    nothing, when matplotlib is not installed."""
    if importlib.util.find_spec("matplotlib") is None:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    categories = list(dict.fromkeys(c for values in series.values() for c in values))
    with warnings.catch_warnings():
        # Japanese category names may lack glyphs in the default font: boxes, not an error.
        warnings.filterwarnings("ignore", message="Glyph .* missing", category=UserWarning)
        _draw(plt, path, title, series, categories, top)
    return True


def _draw(plt, path, title, series, categories, top) -> None:
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.0 + 0.9 * len(categories)), 4.0))
    try:
        for k, (label, values) in enumerate(series.items()):
            xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(categories))]
            ys = [values.get(c) or 0.0 for c in categories]
            ax.bar(xs, ys, width=width, label=label)
        ax.set_xticks(range(len(categories)), categories, rotation=30, ha="right")
        ax.set_title(title)
        if top is not None:
            ax.set_ylim(0, top)
        ax.legend(fontsize="small")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
