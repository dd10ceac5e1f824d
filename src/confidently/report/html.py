"""One self-contained HTML report: tables and charts embedded, no network requests.

Computing is done elsewhere; this module only lays out what it is given. Every report made by
``evaluate``, ``compare`` and ``demo`` goes through :func:`write_report`, so they look alike.
"""

from __future__ import annotations

import datetime as _dt
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confidently.files import atomic_write_text

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;
color:#1d2330;line-height:1.45;padding:0 1rem}
h1{font-size:1.7rem;margin-bottom:.2rem}h2{font-size:1.3rem;margin-top:2.2rem;border-bottom:2px solid #e3e7ef;
padding-bottom:.2rem}h3{font-size:1.05rem;margin:1.2rem 0 .4rem}
.meta{color:#5b6475;font-size:.9rem}
table{border-collapse:collapse;margin:.6rem 0 1rem;font-size:.88rem}
th,td{border:1px solid #d8dde8;padding:.28rem .6rem;text-align:right}
th{background:#f2f4f8}td:first-child,th:first-child{text-align:left}
figure{margin:1rem 0}figure img{max-width:100%;border:1px solid #e3e7ef}
figcaption{font-size:.85rem;color:#5b6475}
.headline{display:flex;gap:1rem;flex-wrap:wrap;margin:1rem 0}
.card{background:#f6f8fb;border:1px solid #e3e7ef;border-radius:8px;padding:.7rem 1rem;min-width:180px}
.card b{display:block;font-size:1.35rem}.card span{font-size:.8rem;color:#5b6475}
.note{font-size:.88rem;color:#3c4454;background:#fffbea;border-left:4px solid #f0c400;padding:.4rem .8rem}
"""


@dataclass
class Section:
    """A titled part of a report.

    ``blocks`` is an ordered list of ``("text", str)``, ``("note", str)``, ``("table", (caption, DataFrame))``
    or ``("figure", (caption, matplotlib Figure or base64 PNG str))``; use the ``add_*`` helpers.
    """

    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def add_text(self, text: str) -> Section:
        self.blocks.append(("text", text))
        return self

    def add_note(self, text: str) -> Section:
        self.blocks.append(("note", text))
        return self

    def add_table(self, frame, caption: str = "") -> Section:
        self.blocks.append(("table", (caption, frame)))
        return self

    def add_figure(self, figure, caption: str = "") -> Section:
        from confidently.report.charts import fig_to_base64_png

        png = figure if isinstance(figure, str) else fig_to_base64_png(figure)
        self.blocks.append(("figure", (caption, png)))
        return self


def _table_html(frame, caption: str) -> str:
    body = frame.to_html(index=False, border=0, float_format=lambda x: f"{x:.4g}", na_rep="–", escape=True)
    return (f"<h3>{html.escape(caption)}</h3>" if caption else "") + body


def render_report(title: str, sections: list[Section], *, headline: dict[str, str] | None = None,
                  metadata: dict[str, Any] | None = None) -> str:
    """The report as one HTML string (images are inline base64 PNGs; no scripts, no links out)."""
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    meta = dict(metadata or {})
    meta.setdefault("generated", _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    parts.append("<p class='meta'>" + " · ".join(f"{html.escape(str(k))}: {html.escape(str(v))}"
                                                  for k, v in meta.items()) + "</p>")
    if headline:
        parts.append("<div class='headline'>" + "".join(
            f"<div class='card'><span>{html.escape(k)}</span><b>{html.escape(v)}</b></div>"
            for k, v in headline.items()) + "</div>")
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        for kind, value in section.blocks:
            if kind == "text":
                parts.append(f"<p>{html.escape(value)}</p>")
            elif kind == "note":
                parts.append(f"<p class='note'>{html.escape(value)}</p>")
            elif kind == "table":
                parts.append(_table_html(value[1], value[0]))
            elif kind == "figure":
                caption, png = value
                parts.append(f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{png}'>"
                             f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(path: str | Path, title: str, sections: list[Section], **kwargs) -> Path:
    """Render and write atomically; returns the path."""
    path = Path(path)
    atomic_write_text(path, render_report(title, sections, **kwargs))
    return path
