"""Neutralising untrusted text (model output, error messages, names) before it
reaches a terminal.

A model's output is data, never terminal instructions: escape sequences (CSI
colours and cursor moves, OSC hyperlinks and clipboard writes, DCS/APC/PM/SOS
strings), C0/C1 control characters and bidirectional overrides could otherwise
rewrite the screen, hide text or set the clipboard. ``sanitize`` keeps only
newlines and tabs as layout; a lone carriage return becomes a newline so text
it would have overwritten stays visible. Callers must still render the result
with ``rich.text.Text`` (never as markup), so ``[bold]`` stays literal.
"""

from __future__ import annotations

import re

# ESC-introduced sequences, and their 8-bit C1 forms (0x9B CSI, 0x9D OSC, ...).
_ESCAPE_SEQUENCE = re.compile(
    r"""
      (?:\x1b\[|\x9b) [\x30-\x3f]* [\x20-\x2f]* [\x40-\x7e]?          # CSI ... final byte
    | (?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]) .*? (?:\x07|\x1b\\|\x9c)   # OSC/DCS/SOS/PM/APC ... terminator
    | \x1b [\x20-\x2f]* [\x30-\x7e]?                                   # any other ESC sequence
    """,
    re.VERBOSE | re.DOTALL,
)

# C0 except \t and \n, DEL, C1, and the Unicode bidi controls (embeddings,
# overrides, isolates, marks) that reorder how a line is displayed.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")

_LINE_BREAK = re.compile("\r\n?|[\u2028\u2029\x85]")


def sanitize(text: str) -> str:
    """Return ``text`` with every escape sequence and control character removed
    (tabs and newlines kept; CR, CRLF and Unicode line separators become ``\\n``)."""
    text = _LINE_BREAK.sub("\n", text)
    text = _ESCAPE_SEQUENCE.sub("", text)
    return _CONTROL.sub("", text)


_WHITESPACE_RUN = re.compile(r"\s+")


def one_line(text: str) -> str:
    """Sanitize ``text`` and flatten it to one line (newlines and tabs become spaces)."""
    return _WHITESPACE_RUN.sub(" ", sanitize(text)).strip()


def tail_preview(text: str, width: int) -> str:
    """The last ``width`` characters of ``text`` on one line, with "…" when cut."""
    flat = one_line(text)
    if len(flat) <= width:
        return flat
    return "…" + flat[-(width - 1) :]
