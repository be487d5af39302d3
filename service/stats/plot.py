"""The hotspots' funnel plot as SVG, written by hand: a few hundred bytes of markup need no plotting library (and a
worker stays small).

x is the exposure in place-months, y the released rate per 10 place-months. Each unit with limits (released, with
an expected count) is a point coloured by its funnel band; suppressed units are absent, so neither their rate nor
their name is drawn. The reference rate is a horizontal line and the 95% and 99.8% limits are curves through the
reference's funnel curve. Everything comes from the hotspots body (camelCase, as the JSON answer), so the picture
shows nothing the JSON does not. Text goes through XML escaping; styling is in presentation attributes only (no
style element or attribute: the dashboard's Content-Security-Policy allows no inline style). The same body and
language give the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape, quoteattr

SVG = "image/svg+xml"
LANGUAGES = ("nl", "en")  # the first is the default
WIDTH, HEIGHT = 720, 480
LEFT, RIGHT, TOP, BOTTOM = 70, 170, 40, 60  # margins: the legend sits in the right one
PER_PLACES = 10
BAND_COLOURS = {"above998": "#b2182b", "above95": "#ef8a62", "within": "#4d4d4d", "below95": "#67a9cf",
                "below998": "#2166ac"}
LABELS = {
    "nl": {"title": "Trechterdiagram {period}", "x": "Plaatsmaanden", "y": "Signalen per 10 plaatsmaanden",
           "reference": "Referentie", "limits95": "95%-grenzen", "limits998": "99,8%-grenzen",
           "empty": "Geen eenheden met grenzen", "decimal": ","},
    "en": {"title": "Funnel plot {period}", "x": "Place-months", "y": "Signals per 10 place-months",
           "reference": "Reference", "limits95": "95% limits", "limits998": "99.8% limits",
           "empty": "No units with limits", "decimal": "."},
}


def label_language(accepted: Iterable[str]) -> str:
    """The first of the caller's languages (best first) whose primary tag we label in: nl-NL is nl; else nl."""
    for tag in accepted:
        if (primary := tag.split("-")[0].lower()) in LANGUAGES:
            return primary
    return LANGUAGES[0]


def _nice_step(span: float, ticks: int = 5) -> float:
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def _ticks(top: float) -> list[float]:
    """Round ticks from 0 up to the first at or above `top`."""
    step = _nice_step(top)
    return [n * step for n in range(math.ceil(top / step - 1e-9) + 1)]


def _number(value: float, decimal: str) -> str:
    text = f"{value:.10g}" if value == int(value) else f"{value:.2f}".rstrip("0").rstrip(".")
    return text.replace(".", decimal)


def _point(x: float, y: float) -> str:
    return f"{x:.1f},{y:.1f}"


def _element(name: str, text: str | None = None, **attributes: Any) -> str:
    attrs = "".join(f" {key.rstrip('_').replace('_', '-')}={quoteattr(str(value))}"
                    for key, value in attributes.items())
    return f"<{name}{attrs}/>" if text is None else f"<{name}{attrs}>{escape(text)}</{name}>"


def _rate(count: float, places: float) -> float:
    return count / places * PER_PLACES


def plotted_units(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The units drawn as points: those with limits (released, with an expected count and places)."""
    return [row for row in body["units"] if row.get("limits") is not None and row["places"] > 0]


def funnel_plot(body: Mapping[str, Any], language: str = LANGUAGES[0]) -> str:
    """The funnel plot of a hotspots body, labelled in `language` (nl or en)."""
    words = LABELS[language]
    units = plotted_units(body)
    curve = [p for p in body["reference"]["funnelCurve"] if p["places"] > 0]
    reference = body["reference"]["ratePer10Places"]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    x_top = max([*(row["places"] for row in units), *(p["places"] for p in curve), 1.0])
    rates = [row["ratePer10Places"] for row in units] + [_rate(p["upper998"], p["places"]) for p in curve]
    y_top = max([*rates, reference or 0.0, 0.1]) * 1.1
    x_ticks, y_ticks = _ticks(x_top), _ticks(y_top)
    x_top, y_top = x_ticks[-1], y_ticks[-1]

    def x_of(places: float) -> float:
        return LEFT + places / x_top * plot_w

    def y_of(rate: float) -> float:
        return TOP + plot_h - min(rate, y_top) / y_top * plot_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="funnel-title" lang="{language}" '
             'font-family="sans-serif" font-size="12">',
             _element("title", words["title"].format(period=body["period"]), id="funnel-title"),
             _element("rect", x=0, y=0, width=WIDTH, height=HEIGHT, fill="#ffffff"),
             _element("text", words["title"].format(period=body["period"]), x=LEFT, y=24, font_size=16)]
    parts += _axes(x_ticks, y_ticks, x_of, y_of, words)
    parts.append('<g class="limits" fill="none">')
    for level, dash in (("95", "6 4"), ("998", None)):
        for side in ("lower", "upper"):
            points = " ".join(_point(x_of(p["places"]), y_of(_rate(p[f"{side}{level}"], p["places"])))
                              for p in curve)
            if points:
                parts.append(_element("polyline", points=points, stroke="#7f7f7f", stroke_width=1.5,
                                      stroke_dasharray=dash or "none", class_=f"limit limit-{side}{level}"))
    parts.append("</g>")
    if reference is not None:
        parts.append(_element("line", x1=f"{LEFT:.1f}", y1=f"{y_of(reference):.1f}", x2=f"{LEFT + plot_w:.1f}",
                              y2=f"{y_of(reference):.1f}", stroke="#1b7837", stroke_width=1.5, class_="reference"))
    parts.append('<g class="units">')
    for row in units:
        parts.append(f'<circle cx="{x_of(row["places"]):.1f}" cy="{y_of(row["ratePer10Places"]):.1f}" r="5" '
                     f'fill="{BAND_COLOURS.get(row["funnelBand"], "#4d4d4d")}" stroke="#ffffff" '
                     f'data-unit-id={quoteattr(row["unit"]["id"])} data-band={quoteattr(str(row["funnelBand"]))}>'
                     + _element("title", f'{row["unit"]["name"]}: '
                                         f'{_number(row["ratePer10Places"], words["decimal"])}') + "</circle>")
    parts.append("</g>")
    if not units:
        parts.append(_element("text", words["empty"], x=LEFT + plot_w / 2, y=TOP + plot_h / 2,
                              text_anchor="middle", fill="#7f7f7f"))
    parts += _legend(words)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _axes(x_ticks: Sequence[float], y_ticks: Sequence[float], x_of: Any, y_of: Any,
          words: Mapping[str, str]) -> Iterable[str]:
    left, right, bottom, top = x_of(0), x_of(x_ticks[-1]), y_of(0), y_of(y_ticks[-1])
    yield '<g class="axes" stroke="#333333">'
    yield _element("line", x1=f"{left:.1f}", y1=f"{bottom:.1f}", x2=f"{right:.1f}", y2=f"{bottom:.1f}")
    yield _element("line", x1=f"{left:.1f}", y1=f"{bottom:.1f}", x2=f"{left:.1f}", y2=f"{top:.1f}")
    yield "</g>"
    yield '<g class="ticks" fill="#333333">'
    for tick in x_ticks:
        yield _element("text", _number(tick, words["decimal"]), x=f"{x_of(tick):.1f}", y=f"{bottom + 18:.1f}",
                       text_anchor="middle")
    for tick in y_ticks:
        yield _element("text", _number(tick, words["decimal"]), x=f"{left - 8:.1f}", y=f"{y_of(tick) + 4:.1f}",
                       text_anchor="end")
    yield "</g>"
    yield _element("text", words["x"], x=f"{(left + right) / 2:.1f}", y=f"{bottom + 42:.1f}", text_anchor="middle",
                   class_="axis-label")
    yield _element("text", words["y"], x=f"{-(top + bottom) / 2:.1f}", y="20", text_anchor="middle",
                   transform="rotate(-90)", class_="axis-label")


def _legend(words: Mapping[str, str]) -> Iterable[str]:
    x, y = WIDTH - RIGHT + 20, TOP + 10
    yield '<g class="legend">'
    for n, (label, colour, dash) in enumerate((("reference", "#1b7837", "none"), ("limits95", "#7f7f7f", "6 4"),
                                               ("limits998", "#7f7f7f", "none"))):
        yield _element("line", x1=x, y1=y + 20 * n, x2=x + 24, y2=y + 20 * n, stroke=colour, stroke_width=1.5,
                       stroke_dasharray=dash)
        yield _element("text", words[label], x=x + 30, y=y + 20 * n + 4)
    yield "</g>"
