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

# The page style of the report and the monitor page.
STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.2em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.ok{color:#176d2a}.no{color:#b3261e}
code{background:#f5f5f5;padding:0 3px}h2{border-bottom:1px solid #ddd;margin-top:1.6em}"""
