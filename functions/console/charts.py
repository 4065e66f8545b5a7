"""Charts as static, accessible SVG built on the server: no JavaScript, no CDN, prints as vectors.

Each function returns an `<svg>` string with a <title> and <desc> (screen readers), one mark
per data point (class names say what a mark is, which the browser tests count), and axis text.
Hand-rolled because a chart costs about a millisecond of CPU this way (six charts with 1,101
points: 6 ms); a plotting library costs tens of milliseconds per chart (see docs/console.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape

from markupsafe import Markup

PALETTE = ("#1f5fa8", "#d9730d", "#2e8540", "#8e44ad", "#b03a2e", "#117a8b", "#7f6000", "#555555")
W, H = 720, 260
PAD_L, PAD_R, PAD_T, PAD_B = 64, 150, 16, 40


@dataclass
class Series:
    label: str
    points: list[tuple[datetime, float]]
    dashed: bool = False


@dataclass
class Marker:
    at: datetime
    label: str
    kind: str = "event"  # kill | pause | event


@dataclass
class Line:
    label: str
    y: float
    kind: str = "limit"


@dataclass
class Chart:
    title: str
    desc: str
    series: list[Series] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    y_format: str = "{:.3g}"
    step: bool = False


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    return [lo + (hi - lo) * i / (n - 1) for i in range(n)]


def _fmt_time(t: datetime, span_s: float) -> str:
    return t.strftime("%H:%M") if span_s < 2 * 86400 else t.strftime("%m-%d")


def _svg(title: str, desc: str, body: list[str], width: int = W, height: int = H) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" viewBox="0 0 {width} {height}" '
        f'width="100%" preserveAspectRatio="xMinYMin meet"><title>{escape(title)}</title>'
        f'<desc>{escape(desc)}</desc>{"".join(body)}</svg>')


def time_chart(chart: Chart) -> Markup:
    """Lines over time with horizontal limit lines and vertical event markers (kill, pause)."""
    times = [t for s in chart.series for t, _ in s.points] + [m.at for m in chart.markers]
    values = [v for s in chart.series for _, v in s.points] + [ln.y for ln in chart.lines]
    if not times or not values:
        return _svg(chart.title, chart.desc + " (no data yet)",
                    [f'<text x="{W / 2}" y="35" text-anchor="middle" class="empty">no data yet</text>'],
                    height=60)
    t0, t1 = min(times), max(times)
    span = max((t1 - t0).total_seconds(), 1.0)
    lo, hi = min(values), max(values)
    if hi == lo:
        lo, hi = lo - (abs(lo) or 1) * 0.1, hi + (abs(hi) or 1) * 0.1
    pad = (hi - lo) * 0.08
    lo, hi = lo - pad, hi + pad
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B

    def x(t: datetime) -> float:
        return PAD_L + pw * (t - t0).total_seconds() / span

    def y(v: float) -> float:
        return PAD_T + ph * (1 - (v - lo) / (hi - lo))

    body = [f'<rect x="{PAD_L}" y="{PAD_T}" width="{pw}" height="{ph}" class="plot"/>']
    for v in _ticks(lo, hi):
        body.append(f'<line x1="{PAD_L}" x2="{PAD_L + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}" class="grid"/>'
                    f'<text x="{PAD_L - 6}" y="{y(v) + 4:.1f}" text-anchor="end" class="tick">'
                    f'{escape(chart.y_format.format(v))}</text>')
    shown = set()
    for i in range(5):
        t = t0 + (t1 - t0) * i / 4
        label = _fmt_time(t, span)
        if label in shown:  # points seconds apart: one label, not five on top of each other
            continue
        shown.add(label)
        body.append(f'<text x="{x(t):.1f}" y="{H - PAD_B + 16}" text-anchor="middle" class="tick">'
                    f'{escape(label)}</text>')
    body.append(f'<text x="{PAD_L}" y="{H - 6}" class="tick">UTC, {escape(t0.strftime("%Y-%m-%d"))} to '
                f'{escape(t1.strftime("%Y-%m-%d"))}</text>')
    legend_y = PAD_T + 12
    for ln in chart.lines:
        body.append(f'<line x1="{PAD_L}" x2="{PAD_L + pw}" y1="{y(ln.y):.1f}" y2="{y(ln.y):.1f}" '
                    f'class="limit-line {escape(ln.kind)}"><title>{escape(ln.label)}</title></line>')
        body.append(f'<text x="{PAD_L + pw + 6}" y="{y(ln.y) + 4:.1f}" class="limit-label">{escape(ln.label)}</text>')
    for m in chart.markers:
        mx = x(m.at)
        body.append(f'<g class="marker {escape(m.kind)}"><line x1="{mx:.1f}" x2="{mx:.1f}" y1="{PAD_T}" '
                    f'y2="{PAD_T + ph}"/><text x="{mx + 3:.1f}" y="{PAD_T + 10}">{escape(m.label)}</text>'
                    f'<title>{escape(m.label)} at {escape(m.at.isoformat())}</title></g>')
    stamps: dict[datetime, str] = {}  # series share their sweep times: each formatted once
    for i, s in enumerate(chart.series):
        colour = PALETTE[i % len(PALETTE)]
        pts = sorted(s.points)
        placed = [(f"{x(t):.1f}", f"{y(v):.1f}") for t, v in pts]
        coords = []
        for j, (px, py) in enumerate(placed):
            if chart.step and j:
                coords.append(f"{px},{placed[j - 1][1]}")
            coords.append(f"{px},{py}")
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        body.append(f'<polyline class="series" fill="none" stroke="{colour}" stroke-width="2"{dash} '
                    f'points="{" ".join(coords)}"/>')
        label = escape(s.label)
        for (t, v), (px, py) in zip(pts, placed, strict=True):
            stamp = stamps.get(t) or stamps.setdefault(t, t.strftime("%Y-%m-%dT%H:%M:%SZ"))
            # y_format is one of this module's numeric formats: its text needs no escaping
            body.append(f'<circle class="point" cx="{px}" cy="{py}" r="2.5" fill="{colour}">'
                        f'<title>{label}: {chart.y_format.format(v)} at {stamp}</title></circle>')
        body.append(f'<rect x="{PAD_L + pw + 6}" y="{legend_y - 8}" width="10" height="10" fill="{colour}"/>'
                    f'<text x="{PAD_L + pw + 20}" y="{legend_y + 1}" class="legend">{escape(s.label[:22])}</text>')
        legend_y += 16
    return _svg(chart.title, chart.desc, body)


@dataclass
class ForestRow:
    label: str
    estimate: float | None
    low: float | None
    high: float | None
    emphasis: bool = False


def forest(title: str, desc: str, rows: Sequence[ForestRow]) -> Markup:
    """Lift (relative effect) with its confidence interval per row, around a zero line."""
    rows = [r for r in rows if r.estimate is not None]
    if not rows:
        return _svg(title, desc + " (no estimates yet)",
                    [f'<text x="{W / 2}" y="30" text-anchor="middle" class="empty">no estimates yet</text>'],
                    height=60)
    vals = [v for r in rows for v in (r.estimate, r.low, r.high) if v is not None] + [0.0]
    lo, hi = min(vals), max(vals)
    pad = (hi - lo) * 0.1 or 0.01
    lo, hi = lo - pad, hi + pad
    label_w, right = 250, 90
    row_h = 24
    height = PAD_T + row_h * len(rows) + 40
    pw = W - label_w - right

    def x(v: float) -> float:
        return label_w + pw * (v - lo) / (hi - lo)

    body = [f'<line x1="{x(0):.1f}" x2="{x(0):.1f}" y1="{PAD_T - 4}" y2="{height - 30}" class="zero"/>']
    for v in _ticks(lo, hi):
        body.append(f'<text x="{x(v):.1f}" y="{height - 14}" text-anchor="middle" class="tick">{v:+.1%}</text>')
    for i, r in enumerate(rows):
        cy = PAD_T + row_h * i + row_h / 2
        cls = "ci emphasis" if r.emphasis else "ci"
        body.append(f'<text x="{label_w - 8}" y="{cy + 4:.1f}" text-anchor="end" class="row-label">'
                    f'{escape(r.label)}</text>')
        if r.low is not None and r.high is not None:
            body.append(f'<line class="{cls}" x1="{x(r.low):.1f}" x2="{x(r.high):.1f}" y1="{cy:.1f}" y2="{cy:.1f}"/>')
        interval = f" ({r.low:+.1%} to {r.high:+.1%})" if r.low is not None and r.high is not None else ""
        body.append(f'<rect class="estimate" x="{x(r.estimate) - 4:.1f}" y="{cy - 4:.1f}" width="8" height="8">'
                    f'<title>{escape(r.label)}: {r.estimate:+.2%}{escape(interval)}</title></rect>')
        body.append(f'<text x="{W - right + 6}" y="{cy + 4:.1f}" class="tick">{r.estimate:+.1%}</text>')
    return _svg(title, desc, body, height=int(height))


def gauge(title: str, value: float, target: float, maximum: float | None = None) -> Markup:
    """A horizontal gauge of a share against its target (e.g. contamination against 1%)."""
    top = maximum or max(target * 3, value * 1.2, 1e-9)
    width, height, left, bar = 420, 56, 10, 400
    fill = min(value / top, 1.0) * bar
    tx = left + target / top * bar
    cls = "gauge-ok" if value <= target else "gauge-bad"
    desc = f"{value:.2%} against a target of at most {target:.2%}"
    body = [f'<rect x="{left}" y="8" width="{bar}" height="18" class="gauge-track"/>',
            f'<rect x="{left}" y="8" width="{fill:.1f}" height="18" class="gauge-value {cls}"/>',
            f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="2" y2="32" class="gauge-target"/>',
            f'<text x="{tx:.1f}" y="46" text-anchor="middle" class="tick">target {target:.1%}</text>',
            f'<text x="{left}" y="46" class="tick">{value:.2%}</text>']
    return _svg(title, desc, body, width=width, height=height)
