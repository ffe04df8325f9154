"""The report's Model card section: the card the Pusher wrote into the version this run pushed."""
from __future__ import annotations

import os

from components import names
from components.model_card import card_sections, read_card
from ops.report.html_parts import e as _e


def model_card_section(summary) -> list[str]:
    out = ["<h2 id='model-card'>Model card</h2>"]
    if not summary.pushed_path:
        return out + ["<p>This run pushed nothing, so it has no model card (each pushed version carries its own, "
                      f"<code>{_e(names.MODEL_CARD_HTML)}</code>).</p>"]
    card = read_card(summary.pushed_path)
    if card is None:
        return out + [f"<p>Version <code>{_e(os.path.basename(summary.pushed_path))}</code> has no model card "
                      "(pushed before the Pusher wrote them).</p>"]
    return out + [f"<p>As the Pusher wrote it: <code>{_e(os.path.join(summary.pushed_path, names.MODEL_CARD))}</code> "
                  "(the Model Card Toolkit's schema v0.0.2) and its page, "
                  f"<code>{_e(names.MODEL_CARD_HTML)}</code>.</p>", *card_sections(card, level=3)]
