"""Layout helpers the dashboards share: numbers tagged with a ``data-testid`` (so a person and a
browser test read the same text), and markdown tables of them. Presentation only, no model logic."""
from __future__ import annotations

import html


def tagged(testid: str, text: object) -> str:
    """``text`` in a span a test can find by ``[data-testid=testid]``."""
    return f'<span data-testid="{html.escape(testid, quote=True)}">{html.escape(str(text))}</span>'


def table(rows: list[tuple], header: tuple = ("quantity", "value")) -> str:
    """A markdown table; cells are shown as given (use :func:`tagged` for the ones tests read)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(dollars(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def dollars(text: object) -> str:
    """``text`` with its dollar signs kept as text: marimo's markdown reads a pair of $ as LaTeX."""
    return str(text).replace("$", "&#36;")


def preformatted(text: object, testid: str | None = None) -> str:
    """``text`` as a preformatted block (HTML, so no markdown or LaTeX reading of it)."""
    hook = f' data-testid="{html.escape(testid, quote=True)}"' if testid else ""
    return f"<pre{hook}>{html.escape(str(text))}</pre>"
