"""``ember benchmark --plot``: the medians of each step as a bar chart (matplotlib, optional)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Colours by kind of step: starting up, compiling without / with the cache, inference.
_COLOURS = {"import": "#888888", "read": "#888888", "compile": "#d62728",
            "first_cached": "#ff7f0e", "warm_model": "#2ca02c", "warm_path": "#2ca02c",
            "first_inference": "#1f77b4", "steady_inference": "#1f77b4"}


def bar_chart(report: dict[str, Any], target: Path) -> None:
    """Horizontal bars of the median of each step, whiskers from min to max, values written
    beside them; a logarithmic axis when the times span more than two decades."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    steps = list(reversed(report["steps"]))  # first step on top
    medians = [s["median_ms"] for s in steps]
    errors = [[s["median_ms"] - s["min_ms"] for s in steps],
              [s["max_ms"] - s["median_ms"] for s in steps]]
    figure, axes = pyplot.subplots(figsize=(8, 0.45 * len(steps) + 1.4))
    positions = range(len(steps))
    axes.barh(positions, medians, xerr=errors, capsize=3,
              color=[_COLOURS.get(s["step"], "#888888") for s in steps])
    axes.set_yticks(list(positions), [s["label"] for s in steps])
    positive = [m for m in medians if m > 0]
    if positive and max(positive) / min(positive) > 100:
        axes.set_xscale("log")
    for position, step in zip(positions, steps, strict=True):
        axes.text(step["max_ms"], position, f"  {step['median_ms']:.2f} ms", va="center",
                  fontsize=8)
    axes.set_xlabel("milliseconds (median; whiskers: min to max)")
    name = Path(report["model"]).name
    axes.set_title(f"{name} on {report['device']}: {report['runs']} runs, fresh processes",
                   fontsize=10)
    axes.margins(x=0.25)
    figure.tight_layout()
    figure.savefig(target, dpi=120)
    pyplot.close(figure)
