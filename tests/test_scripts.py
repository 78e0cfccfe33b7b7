"""Extraction measured alike in every script: Chinese and Japanese text (no spaces between
words) on pages of other shapes than the fixture outlets, with Greek, Russian and Polish ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from crawler.extraction.boilerplate import remove_boilerplate
from crawler.extraction.document import extract_document, parse_html
from crawler.extraction.scripts import text_length, word_count
from crawler.extraction.templates import TemplateLearner

PAGES = Path(__file__).parent / "fixtures" / "generalization"
EXPECTED = json.loads((PAGES / "expected.json").read_text("utf-8"))
ALL_PAGES = [(o, p) for o in EXPECTED["outlets"] for p in o["pages"]]


def test_a_han_or_kana_character_weighs_a_word() -> None:
    assert text_length("  ab  ") == 2
    assert text_length("国产芯片") == 12 and text_length("データ") == 9
    assert text_length("Ελλάδα") == 6 and text_length("서울시") == 3  # spaced scripts
    assert word_count("two words") == 2
    assert word_count("国产AI芯片 grows fast") == 6  # 国 产 芯 片, grows, fast
    assert word_count("2025年8月15日") == 3


def _cleaned_text(html: str) -> str:
    tree = parse_html(html)
    remove_boilerplate(tree)
    return " ".join(tree.find("body").text_content().split())


def test_a_short_chinese_article_beside_a_comment_box_is_not_a_form() -> None:
    """Three 55-character paragraphs are three paragraphs: measured as plain characters they
    were shorter than one, and the container with its comment box went as a form."""
    paragraphs = ["今年上半年，国产人工智能加速芯片的出货量同比增长接近一倍，"
                  "多家数据中心开始批量采购国产加速卡，市场份额明显提升。",
                  "业内人士表示，大模型训练和推理需求持续增长是主要原因，"
                  "不过软件生态和高带宽内存供应仍然是国产芯片面临的主要挑战。",
                  "多家企业表示下半年将继续扩大产能，并加强与服务器厂商的合作，"
                  "争取在明年实现更大规模的商业化部署和应用落地。"]
    assert all(50 <= len(p) < 150 for p in paragraphs)
    html = ("<html><body><div class='story'>" + "".join(f"<p>{p}</p>" for p in paragraphs)
            + "<textarea></textarea><button>发表</button></div></body></html>")
    cleaned = _cleaned_text(html)
    assert all(p in cleaned for p in paragraphs)


@pytest.mark.parametrize(("outlet", "p"), ALL_PAGES, ids=[p["file"] for _, p in ALL_PAGES])
def test_pages_of_other_shapes_and_scripts(outlet: dict[str, Any], p: dict[str, Any]) -> None:
    """Every paragraph kept (but the known losses), no boilerplate, title, dates and language
    right, on pages in Chinese, Japanese, Greek, Russian and Polish written after the fixture
    outlets (the "check" ones never looked at while the cleaning changed)."""
    learner = TemplateLearner()
    for other in outlet["pages"]:
        doc = extract_document((PAGES / other["file"]).read_bytes(), other["url"])
        assert doc is not None
        learner.observe(outlet["name"], doc["fingerprints"])
    doc = extract_document((PAGES / p["file"]).read_bytes(), p["url"],
                           templates=learner.templates(outlet["name"]))
    assert doc is not None
    kept = [" ".join(x.split()) for x in doc["text"].split("\n\n")]
    for paragraph in p["paragraphs"]:
        if paragraph not in p["lost"]:
            assert paragraph in kept, f"missing paragraph: {paragraph[:60]}"
    for phrase in p["boilerplate"]:
        assert phrase not in doc["text"], f"boilerplate leaked: {phrase}"
    assert (doc["title"], doc["date"], doc["date_modified"], doc["language"]) == (
        " ".join(p["title"].split()), p["date"], p["date_modified"], p["language"])
