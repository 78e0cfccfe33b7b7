"""`newsarchive extract PATH...`: the real command on the fixture pages, in a subprocess."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

from crawler.extraction.document import extract_document
from tests.conftest import run_cli
from tests.test_extraction import FIXTURES, OUTLETS, page

FIELDS = {"source", "url", "title", "author", "authors", "date", "date_modified", "language",
          "language_expected", "page_language", "sitename", "description", "tags",
          "categories", "text", "text_digest"}


def extract(*args: str) -> list[dict[str, Any]]:
    result = run_cli("extract", *args)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_a_directory_gives_one_record_per_file() -> None:
    outlet = OUTLETS["serverblog"]
    records = extract(str(FIXTURES / "serverblog"))
    assert sorted(r["source"] for r in records) == sorted(
        str(FIXTURES / p["file"]) for p in outlet["pages"])
    by_title = {r["title"]: r for r in records}
    for p in outlet["pages"]:
        record = by_title[p["title"]]
        assert set(record) == FIELDS
        assert (record["date"], record["authors"], record["language"]) == (
            p["date"], p["authors"], p["language"])
        for paragraph in p["paragraphs"]:
            assert paragraph in record["text"].split("\n\n")
        for phrase in p["boilerplate"]:  # the template too: learned across the three files
            assert phrase not in record["text"]


def test_it_runs_exactly_the_crawl_extraction() -> None:
    p = page("novyny", 1)
    (record,) = extract(str(FIXTURES / p["file"]))
    doc = extract_document((FIXTURES / p["file"]).read_bytes(), p["url"])
    assert doc is not None
    assert record["url"] == p["url"]  # from the page's canonical link
    assert (record["text"], record["text_digest"], record["tags"]) == (
        doc["text"], doc["text_digest"], doc["tags"])


def test_gzip_files_url_and_expected_language(tmp_path: Path) -> None:
    p = page("agentstvo", 0)  # its date is only in its URL
    packed = tmp_path / "page.html.gz"
    packed.write_bytes(gzip.compress((FIXTURES / p["file"]).read_bytes()))
    (record,) = extract(str(packed), "--url", p["url"], "--lang", "ru")
    assert (record["source"], record["url"], record["date"]) == (str(packed), p["url"],
                                                               "2025-08-14")
    assert (record["language"], record["language_expected"]) == ("ru", "ru")
    (unknown,) = extract(str(packed))
    assert (unknown["url"], unknown["date"], unknown["language_expected"]) == (None, None, None)
    assert unknown["text"] == record["text"]


def test_templates_can_be_kept_and_overrides_given(tmp_path: Path) -> None:
    template = OUTLETS["eurowire"]["template"]
    kept = extract(str(FIXTURES / "eurowire"), "--no-templates")
    assert len(kept) == 4 and all(template in r["text"] for r in kept)
    overrides = FIXTURES / "overrides" / "datacenter-moscow.html"
    (plain,) = extract(str(overrides))
    (chosen,) = extract(str(overrides), "--body", ".main-text", "--prune", ".ed-note")
    assert "Об издании" in plain["text"]
    assert chosen["text"].startswith("Компания «ДатаСтрой»")
    assert "Примечание редакции" not in chosen["text"]
    empty = tmp_path / "empty.html"
    empty.write_text("<html><head><title>Gallery</title></head><body><img src='a.jpg'></body>"
                     "</html>")
    (nothing,) = extract(str(empty))
    assert nothing["source"] == str(empty) and nothing["text"] is None


def test_failures_are_one_line(tmp_path: Path) -> None:
    missing = run_cli("extract", str(tmp_path / "nope.html"))
    assert missing.returncode == 1
    assert missing.stderr.strip() == (f"newsarchive: {tmp_path / 'nope.html'}: "
                                      "no such file or directory")
    two = [str(FIXTURES / p["file"]) for p in OUTLETS["sprzet"]["pages"][:2]]
    several = run_cli("extract", *two, "--url", "https://example.org/a")
    assert several.returncode == 1 and len(several.stderr.strip().splitlines()) == 1
    selector = run_cli("extract", two[0], "--body", "div[")
    assert selector.returncode == 1 and "invalid CSS selector" in selector.stderr
    assert "Traceback" not in missing.stderr + several.stderr + selector.stderr


def test_output_file(tmp_path: Path) -> None:
    pages = tmp_path / "pages"
    shutil.copytree(FIXTURES / "sprzet", pages)
    out = tmp_path / "out.jsonl"
    result = run_cli("extract", str(pages), "-o", str(out))
    assert result.returncode == 0 and result.stdout == ""
    records = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert {r["title"] for r in records} == {p["title"] for p in OUTLETS["sprzet"]["pages"]}
