"""Clean text on the fixture outlets (tests/fixtures/extraction: pages written for the project,
modelled on the seeds, in ru, uk, pl, en, de, fr, es).

Every kind of boilerplate is pinned twice: trafilatura alone (the project's own settings, no
cleaning in front) keeps it, and the project's extraction drops it by the rule meant for it.
Remove a rule and its test fails.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lxml.html
import pytest
import trafilatura

from crawler.config import parse_config
from crawler.errors import ConfigError
from crawler.extraction.boilerplate import HEADINGS, remove_boilerplate
from crawler.extraction.dates import parse_date
from crawler.extraction.document import EXTRACTION_PROFILE, extract_document, parse_html
from crawler.extraction.metadata import page_metadata
from crawler.extraction.templates import TemplateLearner, fingerprint, without_templates

FIXTURES = Path(__file__).parent / "fixtures" / "extraction"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text("utf-8"))
OUTLETS = {o["name"]: o for o in EXPECTED["outlets"]}
ALL_PAGES = [(o, p) for o in EXPECTED["outlets"] for p in o["pages"]]


def page(outlet: str, index: int) -> dict[str, Any]:
    return OUTLETS[outlet]["pages"][index]


def html_of(p: dict[str, Any]) -> bytes:
    return (FIXTURES / p["file"]).read_bytes()


def text_of(p: dict[str, Any], **kwargs: Any) -> str:
    doc = extract_document(html_of(p), p["url"], **kwargs)
    assert doc is not None
    return doc["text"]


def trafilatura_alone(p: dict[str, Any]) -> str:
    """The control: trafilatura with the project's settings, without the project's cleaning."""
    return trafilatura.extract(html_of(p).decode("utf-8"), url=p["url"], **EXTRACTION_PROFILE) or ""


def removed(p: dict[str, Any]) -> list[tuple[str, str]]:
    """(rule, text) of every block the cleaning removed from the page."""
    return [(rule, " ".join(block.text_content().split()))
            for rule, block in remove_boilerplate(parse_html(html_of(p)))]


def learned(outlet: str, pages: list[dict[str, Any]] | None = None) -> frozenset[int]:
    """The outlet's templates, learned over its pages as a crawl learns them."""
    learner = TemplateLearner()
    for p in pages if pages is not None else OUTLETS[outlet]["pages"]:
        doc = extract_document(html_of(p), p["url"])
        assert doc is not None
        learner.observe(outlet, doc["fingerprints"])
    return learner.templates(outlet)


def paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in text.split("\n\n")]


def lines(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines()]


def trafilatura_after_cleaning(p: dict[str, Any]) -> str:
    """The control for what follows the cleaning: trafilatura's lines on the cleaned page."""
    tree = parse_html(html_of(p))
    remove_boilerplate(tree)
    doc = trafilatura.bare_extraction(tree, url=p["url"], **EXTRACTION_PROFILE)
    return doc.text if doc else ""


def assert_dropped(p: dict[str, Any], phrases: list[str], rule: str, control: bool = True
                   ) -> None:
    """The project drops each phrase, by `rule`; trafilatura alone keeps it (the control: the
    page needs the rule), unless the page's body is one trafilatura alone does not find."""
    alone, ours, by_rule = trafilatura_alone(p), text_of(p), removed(p)
    for phrase in phrases:
        assert not control or phrase in alone, f"control: trafilatura keeps {phrase!r}"
        assert phrase not in ours, f"leaked: {phrase!r}"
        assert any(r == rule and phrase in text for r, text in by_rule), (
            f"{phrase!r} not removed by the {rule} rule: {by_rule}")


# ---------------------------------------------------------------- the whole outlet


@pytest.mark.parametrize(("outlet", "p"), ALL_PAGES, ids=[p["file"] for _, p in ALL_PAGES])
def test_every_paragraph_kept_and_no_boilerplate_leaked(outlet: dict, p: dict) -> None:
    doc = extract_document(html_of(p), p["url"], templates=learned(outlet["name"]))
    assert doc is not None
    kept = paragraphs(doc["text"])
    for expected in p["paragraphs"]:
        assert expected in kept, f"missing paragraph: {expected[:60]}"
    for phrase in p["boilerplate"]:
        assert phrase not in doc["text"], f"boilerplate leaked: {phrase}"
    assert (doc["title"], doc["date"], doc["authors"], doc["language"]) == (
        p["title"], p["date"], p["authors"], p["language"])
    assert doc["sitename"] == outlet["sitename"]


def test_paragraphs_with_links_are_never_dropped() -> None:
    """Every article paragraph that contains a link, on every page, is in the text."""
    checked = 0
    for _, p in ALL_PAGES:
        tree = lxml.html.document_fromstring(html_of(p))
        with_links = {" ".join(el.text_content().split()) for el in tree.iter("p")
                      if el.find(".//a") is not None}
        text = paragraphs(text_of(p))
        for expected in set(p["paragraphs"]) & with_links:
            assert expected in text, f"paragraph with a link dropped: {expected[:60]}"
            checked += 1
    assert checked >= 8
    # the hard ones: a paragraph opening with "Related", one mostly made of its link
    english = paragraphs(text_of(page("eurowire", 0)))
    assert any(x.startswith("Related research from the University of Cambridge") for x in english)
    assert "The full text of the proposal is available on the Commission's website." in english


# ---------------------------------------------------------------- one rule at a time


def test_link_dense_blocks_are_removed() -> None:
    assert_dropped(page("serverblog", 0), ["Хранение данных"], "link-dense")  # category strip
    assert_dropped(page("sprzet", 1), ["Najczęściej czytane"], "link-dense")  # "most read"


def test_teaser_lists_are_removed() -> None:
    assert_dropped(page("sprzet", 0), ["Ranking kart graficznych", "Porównaliśmy dwanaście"],
                   "teasers")


@pytest.mark.parametrize(("outlet", "index", "heading", "item"), [
    ("eurowire", 0, "Related stories", "A short summary of the story for the teaser list."),
    # the German page's body is cut in two: trafilatura alone never reaches this block
    ("eurowire", 1, "Mehr zum Thema", "Eine kurze Zusammenfassung für die Übersicht."),
    ("eurowire", 2, "À lire aussi", "Un court résumé de l'article pour la liste."),
    ("eurowire", 3, "Noticias relacionadas", "Un breve resumen de la noticia para el listado."),
    ("novyny", 0, "Схожі новини", "Виробник вирішив відкласти оновлення"),
    ("sprzet", 2, "Zobacz także", "NVIDIA wznawia dostawy H20 do Chin"),
    ("agentstvo", 1, "Читайте также", "Обзор публикаций польской технологической прессы"),
], ids=["en", "de", "fr", "es", "uk", "pl", "ru"])
def test_headed_related_blocks_are_removed(outlet: str, index: int, heading: str,
                                           item: str) -> None:
    p = page(outlet, index)
    if heading != "Mehr zum Thema":
        assert item in trafilatura_alone(p)  # the control
    text = text_of(p)
    assert heading not in text and item not in text
    assert any(rule == "headed-related" and block.startswith(heading)
               for rule, block in removed(p))


def test_related_headings_are_known_in_every_crawled_language() -> None:
    assert {"en", "ru", "uk", "pl", "de", "fr", "es"} <= set(HEADINGS)
    samples = ["Related", "Read also", "More news", "Читайте также", "Похожие новости",
               "Ещё новости", "Читайте також", "Більше новин", "Czytaj także", "Zobacz też",
               "Więcej wiadomości", "Lesen Sie auch", "Mehr zum Thema", "Weitere Nachrichten",
               "À lire aussi", "Plus d'actualités", "Lee también", "Más noticias",
               "More great WIRED stories"]
    for heading in samples:
        html = (f"<html><body><article><p>{'Text of the article, long enough. ' * 8}</p>"
                f"<h3>{heading}</h3><ul><li><a href='/a'>Another story here</a></li>"
                f"<li><a href='/b'>And one more story</a></li></ul></article></body></html>")
        tree = parse_html(html)
        assert [r for r, _ in remove_boilerplate(tree)] == ["headed-related", "headed-related"], (
            heading)


def test_a_box_left_with_only_its_label_goes_too() -> None:
    """Once the teasers inside are gone, a label no phrase list knows goes with its box."""
    teaser = ("<div><a href='/{0}'><h3>Partner story number {0}</h3></a><p>A short blurb about "
              "the partner's story number {0}, written to be clicked.</p></div>")
    html = (f"<html><body><article><h1>Headline</h1><p>{'An article paragraph. ' * 12}</p>"
            f"<div><div>Partnerzy serwisu</div><div>{teaser.format(1)}{teaser.format(2)}</div>"
            f"</div><p>{'Another article paragraph. ' * 10}</p></article></body></html>")
    removed_blocks = remove_boilerplate(tree := parse_html(html))
    assert [rule for rule, _ in removed_blocks] == ["teasers", "emptied"]
    assert "Partnerzy serwisu" not in tree.text_content()
    assert "An article paragraph." in tree.text_content()


@pytest.mark.parametrize(("outlet", "index", "line"), [
    ("novyny", 0, "Читайте також: Samsung почала постачати пам'ять HBM4 для нових прискорювачів"),
    ("eurowire", 0, "Read also: ASML orders rise as chipmakers race to expand"),
    ("eurowire", 1, "Lesen Sie auch: Was das neue Abwärmegesetz vorschreibt"),
    ("eurowire", 2, "Lire aussi: Jean Zay, le calculateur qui a entraîné les modèles français"),
    ("eurowire", 3, "Lee también: El consumo de agua de los centros de datos, a debate"),
], ids=["uk", "en", "de", "fr", "es"])
def test_read_also_lines_are_removed(outlet: str, index: int, line: str) -> None:
    assert_dropped(page(outlet, index), [line.split(": ", 1)[1]], "inline-related",
                   control=not line.startswith("Lesen"))  # the body cut in two, as above


def test_forms_and_their_helper_text_are_removed() -> None:
    assert_dropped(page("serverblog", 0), ["Ваш комментарий может стать первым",
                                           "Он появится на сайте после модерации"], "form")
    assert_dropped(page("sprzet", 0), ["Zapisz się do newslettera",
                                       "Najważniejsze wiadomości ze świata sprzętu"], "form")


def test_share_bars_are_removed() -> None:
    assert_dropped(page("serverblog", 1), ["Поделиться"], "share-bar")


def test_cookie_banners_are_removed() -> None:
    assert_dropped(page("novyny", 1), ["Ми використовуємо файли cookie"], "cookie-banner")
    assert_dropped(page("sprzet", 1), ["Używamy plików cookie"], "cookie-banner")


def test_promo_copyright_and_credit_lines_are_removed() -> None:
    assert_dropped(page("novyny", 2), ["Підписуйтесь на наш Telegram-канал"], "promo")
    assert_dropped(page("agentstvo", 0), ["© 2025 ТехАгентство"], "copyright")
    assert_dropped(page("sprzet", 0), ["Źródło informacji: The Information",
                                       "Zdjęcie z okładki artykułu: Pexels"], "credit")


def test_standfirst_is_metadata_but_a_lede_stays() -> None:
    english = page("eurowire", 0)
    standfirst = "A draft seen by Eurowire would require licences for exports"
    assert standfirst in trafilatura_alone(english)
    doc = extract_document(html_of(english), english["url"])
    assert doc is not None and standfirst not in doc["text"]
    assert doc["description"].startswith(standfirst)
    polish = page("sprzet", 2)  # its description repeats the first paragraph of the body
    doc = extract_document(html_of(polish), polish["url"])
    assert doc is not None and doc["description"] == polish["paragraphs"][0]
    assert paragraphs(doc["text"])[0] == polish["paragraphs"][0]


def test_a_body_cut_in_chunks_is_read_whole() -> None:
    german = page("eurowire", 1)  # its body sits in two containers around an advertisement
    last = german["paragraphs"][-1]
    assert last not in trafilatura_alone(german)
    assert last in paragraphs(text_of(german))


# ---------------------------------------------------------------- outlet templates


def test_outlet_templates_are_learned_and_removed() -> None:
    for name in ("serverblog", "eurowire"):
        template = OUTLETS[name]["template"]
        for p in OUTLETS[name]["pages"]:
            assert template in text_of(p)  # not a generic rule's business
            assert template not in text_of(p, templates=learned(name))


def test_a_block_on_fewer_pages_is_never_a_template() -> None:
    pages = OUTLETS["serverblog"]["pages"]
    templates = learned("serverblog", pages[:2])
    assert not templates
    template = OUTLETS["serverblog"]["template"]
    assert all(template in text_of(p, templates=templates) for p in pages)
    # learned over all pages, a template is a block found on at least three of them
    counts: dict[int, int] = {}
    for p in pages:
        doc = extract_document(html_of(p), p["url"])
        assert doc is not None
        for f in set(doc["fingerprints"]):
            counts[f] = counts.get(f, 0) + 1
    assert learned("serverblog") == {f for f, n in counts.items() if n >= 3}


def test_a_copied_page_is_counted_once_and_never_emptied() -> None:
    p = page("novyny", 0)
    doc = extract_document(html_of(p), p["url"])
    assert doc is not None
    learner = TemplateLearner()
    for _ in range(5):  # the same article under five URLs
        learner.observe("novyny", doc["fingerprints"])
    assert not learner.templates("novyny")
    lines = doc["text"].split("\n\n")
    every_line = frozenset(doc["fingerprints"])
    assert without_templates(lines, doc["fingerprints"], every_line) == lines
    one_line = frozenset(doc["fingerprints"][:1])
    assert without_templates(lines, doc["fingerprints"], one_line) == lines[1:]


def test_template_memory_is_bounded() -> None:
    learner = TemplateLearner(capacity=1000)
    footer = fingerprint("Subscribe to our newsletter")
    for i in range(5000):
        learner.observe("outlet", [footer, fingerprint(f"paragraph {i} a"),
                                   fingerprint(f"paragraph {i} b")])
    assert learner.templates("outlet") == {footer}
    assert len(learner._counts["outlet"]) <= 1000 + 3
    assert len(learner._pages["outlet"]) <= 1000 + 1


# ---------------------------------------------------------------- per-outlet overrides


OVERRIDES = FIXTURES / "overrides" / "datacenter-moscow.html"
OVERRIDES_URL = "https://vestnik.example/news/2025/09/dc-40mw"
ARTICLE_START = "Компания «ДатаСтрой» получила разрешение"
ABOUT = "«Облачный вестник» пишет об инфраструктуре"
NOTE = "Примечание редакции"


def test_body_selector_names_the_article_container() -> None:
    html = OVERRIDES.read_bytes()
    doc = extract_document(html, OVERRIDES_URL)
    assert doc is not None and ABOUT in doc["text"]  # the generic guess is wrong here
    doc = extract_document(html, OVERRIDES_URL, body=".main-text")
    assert doc is not None
    assert doc["text"].startswith(ARTICLE_START) and ABOUT not in doc["text"]
    assert doc["title"] == "В Подмосковье построят дата-центр на 40 МВт"  # metadata: whole page
    assert doc["date"] == "2025-09-05"
    nothing = extract_document(html, OVERRIDES_URL, body=".no-such-class")
    assert nothing is not None and ABOUT in nothing["text"]  # no match: the page stays whole


def test_prune_selectors_remove_blocks_first() -> None:
    html = OVERRIDES.read_bytes()
    assert NOTE in text_of_html(html, body=".main-text")
    text = text_of_html(html, body=".main-text", prune=(".ed-note",))
    assert NOTE not in text and ARTICLE_START in text
    assert ABOUT not in text_of_html(html, prune=(".card-about",))


def test_body_selector_is_honoured_inside_a_page_region() -> None:
    """Regions trafilatura deletes unread (aside, nav, footer) go before extraction, but only
    after the outlet's body selector picked its element: an article an outlet's markup puts in
    an <aside> is still found when the config names it."""
    story = "The harbour reopened on Monday after three weeks of repairs to the breakwater. " * 4
    teaser = "Weather for the weekend: rain in the north, sun over the coast and the islands. " * 3
    html = (f"<html><body><main><p>{teaser}</p></main><aside class='story'><p>{story}</p>"
            f"<p>{story}</p></aside><footer><p>{teaser}</p></footer></body></html>").encode()
    generic = extract_document(html, "https://harbour.example/news/1")
    assert generic is not None and story.split(".")[0] not in generic["text"]
    chosen = extract_document(html, "https://harbour.example/news/1", body=".story")
    assert chosen is not None and chosen["text"].startswith(story.split(".")[0])
    assert teaser.split(":")[0] not in chosen["text"]


def text_of_html(html: bytes, **kwargs: Any) -> str:
    doc = extract_document(html, OVERRIDES_URL, **kwargs)
    assert doc is not None
    return doc["text"]


def test_config_takes_a_body_selector() -> None:
    base = {"crawl": {"user_agent": "newsarchive-tests/0.1 (+https://example.org/contact)"}}
    outlet = {"name": "vestnik", "start_urls": ["https://vestnik.example/"]}
    config = parse_config({**base, "outlets": [{**outlet, "body": "div.main-text"}]}, "t.toml")
    assert config.outlets[0].body == "div.main-text"
    assert parse_config({**base, "outlets": [outlet]}, "t.toml").outlets[0].body is None
    for bad, problem in (("div[", "invalid CSS selector"), ("", "non-empty string"),
                         (["div"], "non-empty string")):
        with pytest.raises(ConfigError, match=rf"t.toml: outlets\[0\].body: .*{problem}"):
            parse_config({**base, "outlets": [{**outlet, "body": bad}]}, "t.toml")


# ---------------------------------------------------------------- metadata


def metadata_of(p: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return page_metadata(parse_html(html_of(p)), p["url"], **kwargs)


def test_title_loses_the_site_name() -> None:
    for outlet, index, raw in (("serverblog", 0, " | Блог Serverflow"),
                               ("agentstvo", 0, " - ТехАгентство"),
                               ("novyny", 1, " — Novyny Tech"), ("sprzet", 1, " - Sprzęt i Chipy")):
        p = page(outlet, index)
        assert f"<title>{p['title']}{raw}</title>" in html_of(p).decode("utf-8")
        assert metadata_of(p)["title"] == p["title"]
    html = ("<html><head><title>Tech Wire | Chips are late again</title>"
            "<meta property='og:site_name' content='Tech Wire'></head><body><h1>Tech Wire</h1>"
            "</body></html>")
    assert page_metadata(parse_html(html), None)["title"] == "Chips are late again"


def test_published_date_follows_the_order_of_trust() -> None:
    # JSON-LD (2025-07-02) wins over the meta tag (2025-07-03) of the same page
    assert metadata_of(page("serverblog", 1))["date"] == "2025-07-02"
    assert metadata_of(page("serverblog", 0))["date"] == "2025-08-15"   # meta tag
    assert metadata_of(page("agentstvo", 2))["date"] == "2025-08-10"    # itemprop
    assert metadata_of(page("serverblog", 2))["date"] == "2025-06-20"   # <time>
    url_only = page("agentstvo", 0)
    assert metadata_of(url_only)["date"] == "2025-08-14"                # the URL
    assert metadata_of(url_only, listed_date="2025-08-20")["date"] == "2025-08-14"
    undated = page("agentstvo", 1)                                      # the feed entry, last
    assert metadata_of(undated)["date"] is None
    assert metadata_of(undated, listed_date="2025-08-13")["date"] == "2025-08-13"
    assert page_metadata(parse_html(html_of(url_only)), None)["date"] is None


def test_dates_are_iso_or_null_never_guessed() -> None:
    assert parse_date("2025-08-14T16:05:00+03:00") == "2025-08-14"
    assert parse_date("2025-08-14T23:30:00-05:00") == "2025-08-14"  # as written, not UTC
    assert parse_date("Tue, 19 Nov 2019 10:00:00 GMT") == "2019-11-19"
    assert parse_date("19 November 2019") == "2019-11-19"
    assert parse_date("Nov. 19, 2019") == "2019-11-19"
    assert parse_date("20191119") == "2019-11-19"
    assert parse_date("2019/11/19") == "2019-11-19"
    for vague in ("2019-11", "November 2019", "yesterday", "2019-02-30", "1889-01-01", ""):
        assert parse_date(vague) is None, vague
    text_only = ("<html><body><article><h1>Без даты</h1><p>Опубликовано 14 августа 2025 года. "
                 + "Текст статьи. " * 20 + "</p></article></body></html>")
    doc = extract_document(text_only, "https://example.org/news/bez-daty")
    assert doc is not None and doc["date"] is None


def test_authors_description_tags_and_categories() -> None:
    two = metadata_of(page("novyny", 1))
    assert two["authors"] == ["Максим Коваль", "Ірина Бойко"]
    assert two["author"] == "Максим Коваль; Ірина Бойко"
    assert two["tags"] == ["Google", "Android", "ChromeOS"]
    assert two["categories"] == ["Гаджети"]
    assert two["description"].startswith("Нова операційна система Google")
    polish = metadata_of(page("sprzet", 0))
    assert polish["authors"] == ["Katarzyna Wróblewska"]
    assert (polish["tags"], polish["categories"]) == (["AI", "akceleratory"], ["Sprzęt"])
    nobody = metadata_of(page("agentstvo", 0))
    assert (nobody["authors"], nobody["author"], nobody["tags"], nobody["description"]) == (
        [], None, [], None)


def test_language_is_detected_and_the_declared_one_kept() -> None:
    p = page("novyny", 0)
    doc = extract_document(html_of(p).replace(b'<html lang="uk">', b'<html lang="en">'), p["url"])
    assert doc is not None
    assert (doc["language"], doc["page_language"]) == ("uk", "en")


def test_bylines_and_datelines_at_the_edges_are_metadata() -> None:
    p = page("sprzet", 1)  # "Piotr Nowak, <time>" above the body
    assert "Piotr Nowak," in lines(trafilatura_after_cleaning(p))
    assert "Piotr Nowak" not in text_of(p)
    dated = page("agentstvo", 2)  # "10 августа, 09:00" above the body
    assert "10 августа, 09:00" in lines(trafilatura_after_cleaning(dated))
    assert "10 августа" not in text_of(dated)
