"""Server-side SVG charts: pure functions from data to a self-contained ``<svg>`` string.

Every chart has a title, labelled axes with "nice" ticks, and one element per datum carrying a
``<title>`` tooltip and a class (``bar``, ``point``, ``box``) so pages and tests can find them.
Text is XML-escaped; non-finite values are skipped. An empty dataset gives a chart with a
"no data" note rather than an error.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from html import escape

PALETTE = ("#3366cc", "#dc7633", "#2e9e6a", "#a845b5", "#c0392b", "#7f8c8d", "#d4ac0d")
_W, _H = 640, 300
_M_LEFT, _M_RIGHT, _M_TOP, _M_BOTTOM = 64, 16, 36, 56


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _f(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering ``[low, high]`` (about ``count`` of them)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0, 1.0]
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(1, count)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(low / step) * step
    ticks = []
    v = start
    while v < high + step * 0.5:
        ticks.append(round(v, 10))
        v += step
    if ticks[-1] < high:
        ticks.append(round(v, 10))
    return ticks


def fmt_number(v: float) -> str:
    """A short axis label: 1.5k, 2M, 0.25."""
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:g}M"
    if a >= 1e3:
        return f"{v / 1e3:g}k"
    return f"{v:.3g}"


def _frame(title: str, chart_id: str, body: list[str], width: int, height: int) -> str:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="{_e(chart_id)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{_e(title)}" font-family="sans-serif" font-size="11">'
        f"<title>{_e(title)}</title>"
        f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14" '
        f'font-weight="bold">{_e(title)}</text>'
    )
    return head + "".join(body) + "</svg>"


def _empty(title: str, chart_id: str, width: int = _W, height: int = _H) -> str:
    note = (
        f'<text class="empty" x="{width / 2}" y="{height / 2}" text-anchor="middle" '
        f'fill="#777">no data</text>'
    )
    return _frame(title, chart_id, [note], width, height)


def _y_axis(ticks: list[float], y: Callable[[float], float], width: int, label: str) -> list[str]:
    out = []
    for t in ticks:
        py = y(t)
        out.append(
            f'<line x1="{_M_LEFT}" x2="{width - _M_RIGHT}" y1="{_f(py)}" y2="{_f(py)}" '
            f'stroke="#e3e3e3"/><text x="{_M_LEFT - 6}" y="{_f(py + 4)}" '
            f'text-anchor="end">{_e(fmt_number(t))}</text>'
        )
    if label:
        out.append(
            f'<text transform="translate(14 {_M_TOP + 8}) rotate(-90)" text-anchor="end">'
            f"{_e(label)}</text>"
        )
    return out


def _axes(width: int, height: int) -> str:
    x0, y0 = _M_LEFT, height - _M_BOTTOM
    return (
        f'<line x1="{x0}" y1="{_M_TOP}" x2="{x0}" y2="{y0}" stroke="#333"/>'
        f'<line x1="{x0}" y1="{y0}" x2="{width - _M_RIGHT}" y2="{y0}" stroke="#333"/>'
    )


def _legend(names: Sequence[str], width: int) -> list[str]:
    out = []
    x = width - _M_RIGHT
    for i, name in reversed(list(enumerate(names))):
        x -= 14 + 7 * len(name)
        out.append(
            f'<rect x="{x}" y="27" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>'
            f'<text x="{x + 13}" y="36">{_e(name)}</text>'
        )
    return out


def _plot(
    title: str,
    chart_id: str,
    body: list[str],
    width: int,
    height: int,
    series: Sequence[str] = (),
) -> str:
    """Axes, a legend when there is more than one series, and the frame around ``body``."""
    body.append(_axes(width, height))
    if len(series) > 1:
        body += _legend(series, width)
    return _frame(title, chart_id, body, width, height)


def _scale(lo: float, hi: float, a: float, b: float) -> Callable[[float], float]:
    span = (hi - lo) or 1.0
    return lambda v: a + (v - lo) / span * (b - a)


def bar_chart(
    categories: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    title: str,
    chart_id: str,
    y_label: str = "",
    value_fmt: str = "{:.3g}",
    width: int = _W,
    height: int = _H,
) -> str:
    """Vertical bars, one group per category, one bar per series (a legend when several)."""
    values = [v for vs in series.values() for v in vs if math.isfinite(v)]
    if not categories or not values:
        return _empty(title, chart_id, width, height)
    ticks = nice_ticks(min(0.0, min(values)), max(0.0, max(values)))
    y = _scale(ticks[0], ticks[-1], height - _M_BOTTOM, _M_TOP + 12)
    body = _y_axis(ticks, y, width, y_label)
    slot = (width - _M_LEFT - _M_RIGHT) / len(categories)
    bar_w = slot * 0.8 / max(1, len(series))
    zero = y(0.0)
    for ci, cat in enumerate(categories):
        gx = _M_LEFT + ci * slot + slot * 0.1
        for si, (name, vs) in enumerate(series.items()):
            v = vs[ci] if ci < len(vs) else math.nan
            if not math.isfinite(v):
                continue
            top = y(v)
            tip = (
                f"{cat} — {name}: {value_fmt.format(v)}"
                if len(series) > 1
                else (f"{cat}: {value_fmt.format(v)}")
            )
            body.append(
                f'<rect class="bar" x="{_f(gx + si * bar_w)}" y="{_f(min(top, zero))}" '
                f'width="{_f(bar_w - 1)}" height="{_f(max(0.5, abs(zero - top)))}" '
                f'fill="{PALETTE[si % len(PALETTE)]}"><title>{_e(tip)}</title></rect>'
            )
        body.append(
            f'<text x="{_f(_M_LEFT + (ci + 0.5) * slot)}" y="{height - _M_BOTTOM + 14}" '
            f'text-anchor="middle">{_e(cat[:18])}</text>'
        )
    return _plot(title, chart_id, body, width, height, list(series))


def histogram(
    bins: Sequence[tuple[float, float, int]],
    *,
    title: str,
    chart_id: str,
    x_label: str = "",
    width: int = _W,
    height: int = _H,
) -> str:
    """Adjacent bars over ``(low, high, count)`` bins on a numeric x axis."""
    if not bins or not any(c for _, _, c in bins):
        return _empty(title, chart_id, width, height)
    lo, hi = bins[0][0], bins[-1][1]
    ticks = nice_ticks(0.0, float(max(c for _, _, c in bins)))
    y = _scale(ticks[0], ticks[-1], height - _M_BOTTOM, _M_TOP + 12)
    x = _scale(lo, hi, _M_LEFT, width - _M_RIGHT)
    body = _y_axis(ticks, y, width, "count")
    zero = y(0.0)
    for b_lo, b_hi, count in bins:
        x0, x1, top = x(b_lo), x(b_hi), y(count)
        body.append(
            f'<rect class="bar" x="{_f(x0 + 0.5)}" y="{_f(top)}" width="{_f(x1 - x0 - 1)}" '
            f'height="{_f(zero - top)}" fill="{PALETTE[0]}">'
            f"<title>{_e(f'{b_lo:g}–{b_hi:g}: {count}')}</title></rect>"
        )
    for t in nice_ticks(lo, hi):
        if lo <= t <= hi:
            px = x(t)
            body.append(
                f'<text x="{_f(px)}" y="{height - _M_BOTTOM + 14}" text-anchor="middle">'
                f"{_e(fmt_number(t))}</text>"
            )
    body.append(
        f'<text x="{(_M_LEFT + width - _M_RIGHT) / 2}" y="{height - 14}" '
        f'text-anchor="middle">{_e(x_label)}</text>'
    )
    return _plot(title, chart_id, body, width, height)


def _time_label(ts: float, span: float) -> str:
    d = dt.datetime.fromtimestamp(ts, dt.UTC)
    return d.strftime("%H:%M") if span <= 2 * 86400 else d.strftime("%m-%d")


def line_chart(
    series: Mapping[str, Sequence[tuple[float, float | None]]],
    *,
    title: str,
    chart_id: str,
    y_label: str = "",
    value_fmt: str = "{:.3g}",
    width: int = _W,
    height: int = _H,
) -> str:
    """Lines over time: ``series`` maps a name to ``(unix_time, value)`` points (None = gap)."""
    pts = {
        n: [(t, v) for t, v in ps if v is not None and math.isfinite(v) and math.isfinite(t)]
        for n, ps in series.items()
    }
    all_pts = [p for ps in pts.values() for p in ps]
    if not all_pts:
        return _empty(title, chart_id, width, height)
    t_lo, t_hi = min(p[0] for p in all_pts), max(p[0] for p in all_pts)
    if t_hi == t_lo:
        t_lo, t_hi = t_lo - 1800, t_hi + 1800
    ticks = nice_ticks(min(0.0, min(p[1] for p in all_pts)), max(p[1] for p in all_pts))
    y = _scale(ticks[0], ticks[-1], height - _M_BOTTOM, _M_TOP + 12)
    x = _scale(t_lo, t_hi, _M_LEFT + 8, width - _M_RIGHT - 8)
    body = _y_axis(ticks, y, width, y_label)
    for i in range(5):
        t = t_lo + (t_hi - t_lo) * i / 4
        body.append(
            f'<text x="{_f(x(t))}" y="{height - _M_BOTTOM + 14}" '
            f'text-anchor="middle">{_e(_time_label(t, t_hi - t_lo))}</text>'
        )
    for si, (name, ps) in enumerate(pts.items()):
        color = PALETTE[si % len(PALETTE)]
        coords = [(x(t), y(v)) for t, v in ps]
        if len(coords) > 1:
            path = " ".join(f"{_f(a)},{_f(b)}" for a, b in coords)
            body.append(
                f'<polyline class="line" points="{path}" fill="none" stroke="{color}" '
                f'stroke-width="2"/>'
            )
        for (t, v), (px, py) in zip(ps, coords, strict=True):
            stamp = dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M")
            body.append(
                f'<circle class="point" cx="{_f(px)}" cy="{_f(py)}" r="3" fill="{color}">'
                f"<title>{_e(f'{name} {stamp}: {value_fmt.format(v)}')}</title></circle>"
            )
    return _plot(title, chart_id, body, width, height, list(pts))


def percentile_chart(
    rows: Mapping[str, Mapping[str, float]],
    *,
    title: str,
    chart_id: str,
    unit: str = "s",
    width: int = _W,
    height: int | None = None,
) -> str:
    """Horizontal box per row: whisker min–max, box p50–p95, tick at p50, dot at p99.

    Each row needs the keys ``min``, ``p50``, ``p95``, ``p99`` and ``max``.
    """
    keys = ("min", "p50", "p95", "p99", "max")
    good = {n: r for n, r in rows.items() if all(math.isfinite(r.get(k, math.nan)) for k in keys)}
    h = height or (_M_TOP + _M_BOTTOM + 34 * max(1, len(good)))
    if not good:
        return _empty(title, chart_id, width, h)
    hi = max(r["max"] for r in good.values())
    ticks = nice_ticks(0.0, hi)
    left = _M_LEFT + 50
    x = _scale(ticks[0], ticks[-1], left, width - _M_RIGHT)
    body = []
    for t in ticks:
        px = x(t)
        body.append(
            f'<line x1="{_f(px)}" x2="{_f(px)}" y1="{_M_TOP}" y2="{h - _M_BOTTOM}" '
            f'stroke="#e3e3e3"/><text x="{_f(px)}" y="{h - _M_BOTTOM + 14}" '
            f'text-anchor="middle">{_e(fmt_number(t))}</text>'
        )
    body.append(
        f'<text x="{(left + width - _M_RIGHT) / 2}" y="{h - 14}" text-anchor="middle">'
        f"{_e(unit)}</text>"
    )
    for i, (name, r) in enumerate(good.items()):
        cy = _M_TOP + 17 + 34 * i
        color = PALETTE[i % len(PALETTE)]
        xs = {k: x(r[k]) for k in keys}
        tip = ", ".join(f"{k} {r[k]:.3g} {unit}" for k in keys)
        body.append(
            f'<g class="box"><title>{_e(f"{name}: {tip}")}</title>'
            f'<line x1="{_f(xs["min"])}" x2="{_f(xs["max"])}" y1="{cy}" y2="{cy}" stroke="#555"/>'
            f'<rect x="{_f(xs["p50"])}" y="{cy - 9}" width="{_f(max(1.0, xs["p95"] - xs["p50"]))}"'
            f' height="18" fill="{color}" fill-opacity="0.6" stroke="{color}"/>'
            f'<line x1="{_f(xs["p50"])}" x2="{_f(xs["p50"])}" y1="{cy - 11}" y2="{cy + 11}" '
            f'stroke="#000" stroke-width="2"/>'
            f'<circle cx="{_f(xs["p99"])}" cy="{cy}" r="3" fill="#000"/></g>'
            f'<text x="{left - 6}" y="{cy + 4}" text-anchor="end">{_e(name[:18])}</text>'
        )
    body.append(
        f'<line x1="{left}" y1="{h - _M_BOTTOM}" x2="{width - _M_RIGHT}" y2="{h - _M_BOTTOM}" '
        f'stroke="#333"/>'
    )
    return _frame(title, chart_id, body, width, h)
