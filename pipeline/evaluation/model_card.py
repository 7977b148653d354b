"""Putting evaluation results into a checkpoint's model card (its README.md).

The card's "## Evaluation" section is replaced (from its heading up to the next level-1 or level-2
heading) or appended; everything else in the card, including YAML front matter, is kept. A checkpoint
without a card gets a minimal one.
"""

from __future__ import annotations

import re
from pathlib import Path

CARD_FILE = "README.md"
SECTION_HEADING = "## Evaluation"
_HEADING = re.compile(r"^#{1,2} ", re.MULTILINE)


def replace_section(card: str, section: str) -> str:
    """`card` with its "## Evaluation" section replaced by `section`, or `section` appended."""
    section = section.rstrip("\n") + "\n"
    start = re.search(rf"^{re.escape(SECTION_HEADING)}[ \t]*$", card, re.MULTILINE)
    if start is None:
        return (card.rstrip("\n") + "\n\n" if card.strip() else "") + section
    following = _HEADING.search(card, start.end())
    end = following.start() if following else len(card)
    rest = card[end:]
    return card[:start.start()] + section + ("\n" + rest if rest else "")


def update_model_card(checkpoint: str | Path, section: str) -> Path:
    """Write `section` into `checkpoint`/README.md (created if missing); returns the card's path."""
    folder = Path(checkpoint)
    if not folder.is_dir():
        raise NotADirectoryError(f"{str(folder)!r} is not a local checkpoint folder; model cards of Hub repos "
                                 "are not edited")
    path = folder / CARD_FILE
    if path.is_file():
        card = path.read_text(encoding="utf-8")
    else:
        card = (f"# {folder.resolve().name}\n\nGenerator and discriminator LoRA adapters trained with duelcoder "
                "(`generator/`, `discriminator/`).\n")
    path.write_text(replace_section(card, section), encoding="utf-8")
    return path
