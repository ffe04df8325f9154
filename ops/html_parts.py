"""Small HTML pieces the pages share: escaping, tables, inlined PNGs."""
from __future__ import annotations

import base64
import html
import io


def e(value) -> str:
    return html.escape(str(value))


def table(table_id: str, header: list, rows: list[list]) -> str:
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table id='{table_id}'><tr>{head}</tr>{body}</table>"


def png(fig) -> str:
    """A matplotlib figure as base64 PNG, for <img src='data:image/png;base64,...'>."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()
