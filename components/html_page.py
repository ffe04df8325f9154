"""HTML pieces every page shares (the run report, the monitor page, the model card): escaping, tables, style.

Here, not in ops/report/, because the Pusher writes a model card page (components/model_card.py) and
components import nothing above them; ops/report/html_parts.py re-exports these.
"""
from __future__ import annotations

import html


def e(value) -> str:
    return html.escape(str(value))


def table(table_id: str, header: list, rows: list[list]) -> str:
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table id='{table_id}'><tr>{head}</tr>{body}</table>"


# The page style of the report, the monitor page and the model card.
STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.2em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.ok{color:#176d2a}.no{color:#b3261e}
code{background:#f5f5f5;padding:0 3px}h2{border-bottom:1px solid #ddd;margin-top:1.6em}"""
