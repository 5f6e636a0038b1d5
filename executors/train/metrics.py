"""Training curves: the JSON lines a command appends to ``$PREBUILT_METRICS_FILE``, drawn as inline SVG in the task's
Deck (Flyte's console shows ``deck.html``; plain SVG needs no plotting library and no script).

A line is one JSON object, e.g. ``{"epoch": 3, "loss": 0.21, "accuracy": 0.94}``. The x axis is ``step`` when the
lines have it, else ``epoch``, else the line's number; every other numeric field is one curve. Lines that are not
JSON objects are skipped (and counted), so a half-written last line never hides the rest. The file is saved with
the checkpoint folder, so the curves of a resumed attempt continue those of the attempts before it.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

X_FIELDS = ("step", "epoch")
LABEL_FIELDS = {"rank", "time"}  # not curves
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 440, 240, 64, 16, 28, 36


def read_metrics(path: Path) -> tuple[list[dict], int]:
    """The records in ``path`` and how many lines were skipped."""
    records: list[dict] = []
    skipped = 0
    if not path.is_file():
        return records, skipped
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            skipped += 1
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            skipped += 1
    return records, skipped


def curves(records: list[dict]) -> tuple[str, dict[str, list[tuple[float, float]]]]:
    """The x axis' name and, per metric, its (x, y) points by x. A value written again for the same x (an attempt
    that resumed from a checkpoint older than its predecessor's last line) replaces the earlier one."""
    x_name = next((name for name in X_FIELDS if any(_number(r.get(name)) is not None for r in records)), "line")
    found: dict[str, dict[float, float]] = {}
    for index, record in enumerate(records, start=1):
        x = index if x_name == "line" else _number(record.get(x_name))
        if x is None:
            continue
        for name, value in record.items():
            y = _number(value)
            if name in X_FIELDS or name in LABEL_FIELDS or y is None:
                continue
            found.setdefault(name, {})[x] = y
    return x_name, {name: sorted(points.items()) for name, points in found.items()}


def svg_chart(title: str, x_name: str, points: list[tuple[float, float]]) -> str:
    """One curve as an inline SVG line chart, its axes labelled with their ranges."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x_low, x_high = _span(min(xs), max(xs))
    y_low, y_high = _span(min(ys), max(ys))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def place(x: float, y: float) -> str:
        left = LEFT + (x - x_low) / (x_high - x_low) * plot_w
        return f"{left:.1f},{TOP + (y_high - y) / (y_high - y_low) * plot_h:.1f}"

    path = " ".join(place(x, y) for x, y in points)
    dots = "".join(f'<circle cx="{c.split(",")[0]}" cy="{c.split(",")[1]}" r="2.5"/>' for c in path.split()[:60])
    name, last = html.escape(title), _format(ys[-1])
    bottom = TOP + plot_h
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'aria-label="{name}" style="font:12px sans-serif;margin:4px">'
        f'<text x="{LEFT}" y="16" font-weight="bold">{name} (last: {last})</text>'
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#bbb"/>'
        f'<text x="{LEFT - 4}" y="{TOP + 10}" text-anchor="end">{_format(y_high)}</text>'
        f'<text x="{LEFT - 4}" y="{bottom}" text-anchor="end">{_format(y_low)}</text>'
        f'<text x="{LEFT}" y="{bottom + 16}">{_format(x_low)}</text>'
        f'<text x="{LEFT + plot_w}" y="{bottom + 16}" text-anchor="end">{_format(x_high)}</text>'
        f'<text x="{LEFT + plot_w / 2:.0f}" y="{bottom + 30}" text-anchor="middle">{html.escape(x_name)}</text>'
        f'<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{path}"/>'
        f'<g fill="#1f77b4">{dots}</g></svg>'
    )


def deck_html(records: list[dict], skipped: int) -> str:
    """The Deck page: the last value of each metric, then one chart per metric."""
    x_name, found = curves(records)
    if not found:
        return (
            "<h2>Training metrics</h2><p>The command wrote no metrics: append JSON lines such as "
            '<code>{"epoch": 1, "loss": 0.5}</code> to <code>$PREBUILT_METRICS_FILE</code>.</p>'
        )
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{_format(points[-1][1])}</td><td>{len(points)}</td></tr>"
        for name, points in found.items()
    )
    note = f" ({skipped} line(s) that were not JSON objects skipped)" if skipped else ""
    charts = "".join(svg_chart(name, x_name, points) for name, points in found.items())
    return (
        f"<h2>Training metrics</h2><p>{len(records)} record(s) from <code>$PREBUILT_METRICS_FILE</code>{note}, "
        f"by {html.escape(x_name)}.</p>"
        f'<table border="1" cellpadding="4" style="border-collapse:collapse">'
        f"<tr><th>metric</th><th>last</th><th>points</th></tr>{rows}</table><div>{charts}</div>"
    )


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _span(low: float, high: float) -> tuple[float, float]:
    """A non-empty range: a constant curve is drawn across the middle."""
    if high > low:
        return low, high
    pad = abs(low) * 0.05 or 1.0
    return low - pad, high + pad


def _format(value: float) -> str:
    return f"{value:.4g}"
