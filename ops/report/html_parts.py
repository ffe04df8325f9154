"""Small HTML pieces the pages share: escaping, tables and the style (components/html_page.py), inlined PNGs."""
from __future__ import annotations

import base64
import io

from components.html_page import STYLE, e, table  # noqa: F401  (re-exported: the pages import them from here)


def png(fig) -> str:
    """A matplotlib figure as base64 PNG, for <img src='data:image/png;base64,...'>."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()
