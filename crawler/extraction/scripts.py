"""Text measured alike in every script: Chinese and Japanese write no spaces between words.

A run of Han or kana characters is one "word" to a split on white space and a few characters to
``len``, so a Chinese paragraph looks like a short label and a dateline like a sentence. Here a
Han or kana character counts as a word (CJK words are one or two characters), and as
``CJK_WEIGHT`` characters of length (what a word weighs in a spaced script: about 3 letters
a character), so the length thresholds the cleaning uses mean the same amount of text in every
script. Hangul is written with spaces and is measured as it is.
"""

from __future__ import annotations

import re

CJK_WEIGHT = 3
_CJK_RANGES = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK = re.compile(f"[{_CJK_RANGES}]")
_FIRST_CJK = "\u3040"  # no script below it is measured differently
# a word: one Han or kana character, or a run of letters of another script
WORD = re.compile(f"[{_CJK_RANGES}]|[^\\W\\d_{_CJK_RANGES}]+")


def cjk_characters(text: str) -> int:
    """How many Han and kana characters `text` holds (0 at once for text below U+3040)."""
    if not text or max(text) < _FIRST_CJK:
        return 0
    return len(_CJK.findall(text))


def text_length(text: str) -> int:
    """The length of `text`, stripped, with Han and kana characters weighing ``CJK_WEIGHT``."""
    text = text.strip()
    return len(text) + (CJK_WEIGHT - 1) * cjk_characters(text)


def word_count(text: str) -> int:
    """Words of `text`: runs of non-space characters, each Han or kana character one word."""
    words = len(text.split())
    cjk = cjk_characters(text)
    if cjk:  # a run like "中国的经济" is one split word: count its characters instead
        words += cjk - len(re.findall(f"[^\\s{_CJK_RANGES}]*[{_CJK_RANGES}]\\S*", text))
    return words
