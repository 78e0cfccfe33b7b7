"""Extraction inside a real crawl: the outlet's `body` and `prune` reach the workers, templates
are learned in the main process from the fingerprints the workers return, and the text
records carry the new metadata."""

from __future__ import annotations

import os
from typing import Any

import pytest

from crawler.extraction.document import extract_document
from crawler.jobs.demo import OutletServer
from tests.conftest import read_text_shards, run_cli, write_config

WORKERS = os.cpu_count() or 1   # the pipeline's pool: one worker per core
# Pages extracted before a template is known: the three it is learned from, plus those already
# handed to the pool then (two per worker at most, the one just finished excepted).
AT_MOST_BEFORE_LEARNING = 2 + 2 * WORKERS
PAGES = AT_MOST_BEFORE_LEARNING + 4
TEMPLATE = "Редакция напоминает: мнение экспертов может не совпадать с позицией издания."
FACTS = [
    "Оператор связи запустил новую площадку для размещения серверов клиентов",
    "Спрос на аренду стоек в столичном регионе вырос почти на треть за год",
    "Энергопотребление площадки ограничено мощностью ближайшей подстанции",
    "Часть мощностей зарезервирована под серверы с графическими ускорителями",
    "Для охлаждения используются фреоновые кондиционеры и свободный воздух",
    "Сертификация площадки по уровню надёжности ожидается весной",
]


def article(i: int) -> tuple[str, list[str]]:
    """Page i of the outlet and its article paragraphs (each page's own)."""
    paragraphs = [f"{FACTS[(i + k) % len(FACTS)]}, сообщили в компании в сообщении номер {i}. "
                  f"Подробности проекта {i} раскрываются в пресс-релизе, опубликованном сегодня "
                  f"утром на сайте оператора." for k in range(3)]
    body = "\n".join(f"      <p>{p}</p>" for p in paragraphs)
    return f"""<!DOCTYPE html>
<html lang="ru">
<head>
<meta charset="utf-8">
<title>Новость №{i}: новая площадка для серверов - Вестник ЦОД</title>
<meta property="og:type" content="article">
<meta property="og:site_name" content="Вестник ЦОД">
<meta property="article:published_time" content="2025-09-{i % 28 + 1:02d}T10:00:00+03:00">
<meta property="article:tag" content="дата-центры">
<meta name="author" content="Анна Смирнова">
<meta name="description" content="Площадка номер {i} открыта для клиентов.">
</head>
<body>
<article>
  <h1>Новость №{i}: новая площадка для серверов</h1>
  <p class="intro">Вводка номер {i}: коротко о главном в этом материале для читателей ленты.</p>
  <div class="a-body">
{body}
      <p class="note">Уточнение {i}: материал дополнен комментарием компании.</p>
      <p>{TEMPLATE}</p>
  </div>
</article>
</body>
</html>
""", paragraphs


@pytest.fixture(scope="module")
def crawl(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("extraction-crawl")
    site = work / "www"
    expected = {}
    links = []
    for i in range(PAGES):
        path = f"/news/2025/09/novost-{i}.html"
        html, paragraphs = article(i)
        (site / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (site / path.lstrip("/")).write_text(html, "utf-8")
        expected[path] = {"html": html, "paragraphs": paragraphs, "n": i}
        links.append(f'<li><a href="{path}">Новость {i}</a></li>')
    (site / "index.html").write_text(f"<html><body><ul>{''.join(links)}</ul></body></html>",
                                     "utf-8")
    archive = work / "archive"
    with OutletServer(site) as server:
        config = write_config(work / "outlets.toml", server.url, str(archive),
                              name="vestnik", extra_outlet='body = ".a-body"\n'
                                                           'prune = [".note"]')
        result = run_cli("crawl", "-c", str(config))
    assert result.returncode == 0, result.stderr + result.stdout
    (crawl_dir,) = (archive / "crawls").iterdir()
    return {"expected": expected,
            "texts": read_text_shards(sorted((crawl_dir / "text").glob("*.jsonl.gz")))}


def test_body_and_prune_from_the_config_reach_extraction(crawl: dict[str, Any]) -> None:
    texts = crawl["texts"]
    assert len(texts) == PAGES
    for record in texts:
        page = crawl["expected"]["/" + record["url"].split("/", 3)[3]]
        for paragraph in page["paragraphs"]:
            assert paragraph in record["text"].split("\n\n")
        assert "Вводка номер" not in record["text"]      # outside the `body` container
        assert "Уточнение" not in record["text"]         # pruned
    page = next(iter(crawl["expected"].values()))         # the control: without the config
    doc = extract_document(page["html"], "http://127.0.0.1/news/2025/09/novost-0.html")
    assert doc is not None
    assert "Вводка номер" in doc["text"] and "Уточнение" in doc["text"]


def test_templates_are_learned_during_the_crawl(crawl: dict[str, Any]) -> None:
    kept = [r["url"] for r in crawl["texts"] if TEMPLATE in r["text"]]
    assert len(kept) <= AT_MOST_BEFORE_LEARNING < PAGES, kept
    for record in crawl["texts"]:  # a page's own paragraphs are never templates
        page = crawl["expected"]["/" + record["url"].split("/", 3)[3]]
        assert all(p in record["text"] for p in page["paragraphs"])


def test_text_records_carry_the_metadata(crawl: dict[str, Any]) -> None:
    for record in crawl["texts"]:
        n = crawl["expected"]["/" + record["url"].split("/", 3)[3]]["n"]
        assert record["title"] == f"Новость №{n}: новая площадка для серверов"
        assert record["date"] == f"2025-09-{n % 28 + 1:02d}"
        assert (record["author"], record["authors"]) == ("Анна Смирнова", ["Анна Смирнова"])
        assert (record["sitename"], record["tags"], record["categories"]) == (
            "Вестник ЦОД", ["дата-центры"], [])
        assert record["description"] == f"Площадка номер {n} открыта для клиентов."
        assert (record["language"], record["language_expected"]) == ("ru", "ru")
