"""sanitize(): model text cannot drive the terminal."""

from __future__ import annotations

import pytest

from agentops.ui import sanitize
from agentops.ui.sanitize import one_line, tail_preview

ESC = "\x1b"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a\x1b[31mred\x1b[0m b", "ared b"),  # CSI colour
        ("up\x1b[2J\x1b[1;1Hhome", "uphome"),  # CSI clear screen, cursor move
        (
            "x\x1b]8;;https://evil.example\x07link\x1b]8;;\x07y",
            "xlinky",
        ),  # OSC 8 hyperlink, BEL-terminated
        (
            "x\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\y",
            "xlinky",
        ),  # OSC 8, ST-terminated
        ("c\x1b]52;c;ZXZpbA==\x07d", "cd"),  # OSC 52 clipboard write
        ("p\x1bP+q\x1b\\q", "pq"),  # DCS string
        ("ring\x07 back\x08\x08x", "ring backx"),  # BEL, backspace
        ("visible\rhidden", "visible\nhidden"),  # CR cannot overwrite the line
        ("crlf\r\nline", "crlf\nline"),
        ("\x9b31mq\x9dtitle\x9cz\x85w\x90x", "qz\nwx"),  # 8-bit CSI, OSC, NEL; a lone DCS byte
        ("\u202eevil\u202c \u2066iso\u2069 \u200fm", "evil iso m"),  # bidi override, isolate, mark
        ("nul\x00 del\x7f vt\x0b ff\x0c", "nul del vt ff"),
        ("tab\tand\nnewline", "tab\tand\nnewline"),  # layout is kept
        ("[bold red]x[/] stays", "[bold red]x[/] stays"),  # not markup here, just text
        ("half \x1b]0;title", "half 0;title"),  # an unterminated OSC loses its introducer
        ("unicode ✓ é 日本", "unicode ✓ é 日本"),
    ],
)
def test_sanitize_neutralises_terminal_control(raw: str, expected: str) -> None:
    assert sanitize(raw) == expected


def test_sanitize_output_has_no_control_characters_at_all() -> None:
    hostile = "".join(chr(c) for c in range(0x00, 0xA0)) + "\u202a\u202b\u202d\u2067\u2068\u061c"
    cleaned = sanitize(hostile)
    assert all(ch in "\t\n" or (0x20 <= ord(ch) < 0x7F) or ord(ch) >= 0xA0 for ch in cleaned)
    assert ESC not in cleaned and "\x9b" not in cleaned and "\u202e" not in cleaned


def test_one_line_flattens_whitespace() -> None:
    assert one_line("  first\nsecond\t\tthird \r\n") == "first second third"


def test_tail_preview_keeps_the_end() -> None:
    text = "x" * 100 + "\nthe end"
    preview = tail_preview(text, 20)
    assert len(preview) == 20
    assert preview.startswith("…") and preview.endswith("x the end")
    assert tail_preview("short", 20) == "short"
