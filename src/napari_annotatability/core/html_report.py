"""A self-contained HTML page: headings, paragraphs, tables and embedded PNG figures.

Nothing is fetched when the page opens (no scripts, fonts or stylesheets from the
network; figures are ``data:`` URIs), so the file can be mailed or archived and opened
offline in any browser.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field

import pandas as pd

from napari_annotatability.core.scores import FLAG_COLORS, HARD

#: Shading of large matrix entries: the Hard-to-learn colour as "r, g, b".
SHADE = ", ".join(str(int(FLAG_COLORS[HARD][i : i + 2], 16)) for i in (1, 3, 5))
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1100px; padding: 0 1.5em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; } td.text, th.text { text-align: left; }
figure { display: inline-block; margin: 0.5em 1em 0.5em 0; vertical-align: top; }
figcaption { font-size: 0.85em; color: #555; max-width: 520px; }
.summary { font-size: 1.1em; background: #f6f8fa; padding: 0.7em 1em; border-radius: 4px; }
code { font-size: 0.9em; }
"""


def figure_png(figure, dpi: int = 110) -> bytes:
    """A matplotlib figure as PNG bytes (the figure is closed)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def table_html(frame: pd.DataFrame, *, shade: bool = False, digits: int = 3) -> str:
    """A DataFrame as an HTML table; numbers right-aligned, text left; optional heat shading."""
    numeric = frame.select_dtypes("number")
    top = float(numeric.to_numpy().max()) if shade and numeric.size else 0.0
    head = "".join(
        f'<th class="text">{html.escape(str(frame.index.name or ""))}</th>'
        + "".join(f"<th>{html.escape(str(column))}</th>" for column in frame.columns)
    )
    rows = []
    for index, row in frame.iterrows():
        cells = [f'<th class="text">{html.escape(str(index))}</th>']
        for value in row:
            if isinstance(value, float):
                text = "" if pd.isna(value) else f"{value:,.{digits}g}"
            elif isinstance(value, int) or hasattr(value, "dtype"):
                text = f"{value:,}"
            else:
                text = html.escape(str(value))
            style = ""
            if shade and top > 0 and isinstance(value, (int, float)) and not pd.isna(value):
                alpha = 0.75 * float(value) / top
                style = f' style="background: rgba({SHADE}, {alpha:.2f})"'
            css = ' class="text"' if isinstance(value, str) else ""
            cells.append(f"<td{css}{style}>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


@dataclass
class HtmlReport:
    """Sections of a page, in order; :meth:`render` makes the whole document."""

    title: str
    parts: list[str] = field(default_factory=list)

    def heading(self, text: str) -> None:
        """A section heading."""
        self.parts.append(f"<h2>{html.escape(text)}</h2>")

    def paragraph(self, text: str, css: str | None = None) -> None:
        """A paragraph of plain text (escaped), with an optional CSS class."""
        attribute = f' class="{css}"' if css else ""
        self.parts.append(f"<p{attribute}>{html.escape(text)}</p>")

    def table(self, frame: pd.DataFrame, **options) -> None:
        """A table (options of :func:`table_html`)."""
        self.parts.append(table_html(frame, **options))

    def figure(self, png: bytes, caption: str, alt: str) -> None:
        """A PNG figure embedded as a ``data:`` URI, with its caption."""
        data = base64.b64encode(png).decode("ascii")
        self.parts.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )

    def render(self) -> str:
        """The whole HTML document."""
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title><style>{STYLE}</style></head>"
            f"<body><h1>{html.escape(self.title)}</h1>\n"
            + "\n".join(self.parts)
            + "\n</body></html>\n"
        )
