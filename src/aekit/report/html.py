"""Building blocks of a self-contained HTML page: sections, tables, embedded PNG figures.

The page carries its own CSS, uses only the reader's local fonts, embeds every picture as a
base64 ``data:`` URI and contains no script, so it opens offline, from e-mail, or from an
archive, and looks the same in ten years.
"""

from __future__ import annotations

import base64
import html
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Section", "esc", "figure", "fmt", "page", "png_data_uri", "table"]

esc = html.escape


@dataclass
class Section:
    """One ``<section id=...>`` of a report, listed in the page's table of contents."""

    id: str
    title: str
    body: str


def fmt(v: Any) -> str:
    """A value as escaped HTML text; floats with 5 significant digits."""
    if isinstance(v, bool) or v is None:
        return esc(str(v))
    if isinstance(v, float):
        return f"{v:.5g}"
    if isinstance(v, int):
        return f"{v:,}" if abs(v) >= 10000 else str(v)
    return esc(str(v))


def table(rows: Sequence[Sequence[Any]], header: Sequence[str] | None = None, *,
          cls: str = "", raw: bool = False) -> str:
    """An HTML table; the first cell of each row is a row header. ``raw`` cells are HTML."""
    head = ("<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr></thead>"
            if header else "")
    cell = (lambda v: str(v)) if raw else fmt
    body = "".join("<tr><th>" + cell(r[0]) + "</th>" + "".join(f"<td>{cell(v)}</td>"
                                                               for v in r[1:]) + "</tr>"
                   for r in rows)
    c = f' class="{esc(cls)}"' if cls else ""
    return f"<table{c}>{head}<tbody>{body}</tbody></table>"


def _with_text_chunk(png: bytes, text: bytes) -> bytes:
    """Insert a tEXt chunk right after IHDR (8-byte signature + 25-byte IHDR chunk)."""
    data = b"Comment\x00" + text
    chunk = struct.pack(">I", len(data)) + b"tEXt" + data + \
        struct.pack(">I", zlib.crc32(b"tEXt" + data) & 0xFFFFFFFF)
    return png[:33] + chunk + png[33:]


def png_data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` for PNG bytes.

    The base64 text is kept free of the substring ``http`` (it can occur by chance, about
    once per 16 MB), so "the page names no URL" stays a simple text check: if it occurs, a
    padding comment chunk shifts the encoding until it does not.
    """
    if not png.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("png must be PNG bytes")
    b64 = base64.b64encode(png).decode("ascii")
    pad = 0
    while "http" in b64:
        pad += 1
        b64 = base64.b64encode(_with_text_chunk(png, b" " * pad)).decode("ascii")
    return "data:image/png;base64," + b64


def figure(fig, caption: str, *, alt: str | None = None, dpi: int = 100) -> str:
    """A matplotlib figure as an embedded ``<figure>`` with a caption (HTML allowed)."""
    from ..plots import figure_png

    uri = png_data_uri(figure_png(fig, dpi=dpi))
    w, h = (int(round(v * dpi)) for v in fig.get_size_inches())
    return (f'<figure><img src="{uri}" width="{w}" height="{h}" '
            f'alt="{esc(alt or _strip_tags(caption))}"><figcaption>{caption}</figcaption>'
            "</figure>")


def _strip_tags(s: str) -> str:
    out, inside = [], False
    for ch in s:
        if ch == "<":
            inside = True
        elif ch == ">":
            inside = False
        elif not inside:
            out.append(ch)
    return "".join(out)


CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial,
       sans-serif; margin: 0 auto; padding: 1.2em 1.5em 3em; max-width: 1120px; color: #1d1d1f;
       line-height: 1.45; background: #fff; }
h1 { font-size: 1.55em; margin: 0.2em 0 0.3em; }
h2 { font-size: 1.2em; margin: 1.8em 0 0.5em; padding-bottom: 0.2em;
     border-bottom: 1px solid #ddd; }
p { margin: 0.4em 0 0.7em; max-width: 80ch; }
nav { font-size: 0.88em; margin: 0.6em 0 1em; }
nav a { margin-right: 0.9em; white-space: nowrap; color: #1558b0; text-decoration: none; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.88em; }
th, td { border: 1px solid #d6d6d6; padding: 3px 9px; text-align: left;
         vertical-align: top; }
td { font-variant-numeric: tabular-nums; }
thead th { background: #eef1f5; }
tbody th { background: #f7f7f7; font-weight: 600; }
.best { font-weight: 700; background: #eaf6ea; }
figure { margin: 0.8em 0 1.4em; }
img { max-width: 100%; height: auto; display: block; }
figcaption { font-size: 0.86em; color: #555; margin-top: 0.3em; max-width: 90ch; }
.note { color: #9a2b2b; }
.muted { color: #666; font-size: 0.88em; }
.cols { display: flex; flex-wrap: wrap; gap: 0 2em; align-items: flex-start; }
.cols > figure { flex: 1 1 480px; max-width: 540px; }
code { font-size: 0.92em; background: #f3f3f3; padding: 0 3px; border-radius: 3px; }
"""


def page(title: str, intro: str, sections: Sequence[Section]) -> str:
    """The whole HTML document: title, intro paragraph(s), a table of contents, sections."""
    nav = "\n".join(f'<a href="#{esc(s.id)}">{esc(s.title)}</a>' for s in sections)
    body = "\n".join(f'<section id="{esc(s.id)}"><h2>{esc(s.title)}</h2>\n{s.body}</section>'
                     for s in sections)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>{CSS}</style></head><body>
<h1>{esc(title)}</h1>
{intro}
<nav>{nav}</nav>
{body}
</body></html>
"""
