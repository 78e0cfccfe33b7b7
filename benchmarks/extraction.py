"""Extraction quality and cost: the project's extraction against plain trafilatura, in one run.

1. The Scrapinghub article-body benchmark (181 pages; ``../shared/benchmarks/extraction/``, see
   its README for the metric): F1, precision, recall and accuracy of
   ``crawler.extraction.document.extract_document`` and of
   ``trafilatura.extract(include_comments=False)``.
2. The project's fixture outlets (``tests/fixtures/extraction/``, pages written for the project
   in ru, uk, pl, en, de, fr, es): article paragraphs kept and boilerplate phrases leaked, per
   outlet; templates are learned over each outlet's pages first, as a crawl learns them.
3. Milliseconds per page on one core (the process is pinned to one CPU; both extractors run
   page by page, interleaved, so a busy machine slows both alike).
4. Body F1 per language on every page written for the project with its whole body known (the
   fixture outlets, and ``tests/fixtures/generalization/``: Chinese, Japanese, Greek, Russian
   and Polish pages in other shapes, split into the pages the cleaning was developed on and
   pages only checked), tokens counted per word, or per character in Chinese and Japanese.
5. Published dates right / wrong / none on the pages with a known date (the fixture outlets,
   the sample outlet, the generalization pages), beside htmldate alone
   (``find_date(original_date=True)``, the page's URL given); a page known to state no date
   counts as wrong when given one. Modified dates where the pages state them.

    .venv/bin/python benchmarks/extraction.py [--data DIR] [--profiles]

``--profiles`` also scores the trafilatura settings the project could use behind its own
cleaning (how ``EXTRACTION_PROFILE`` was chosen).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import htmldate  # noqa: E402
import trafilatura  # noqa: E402

from crawler.extraction import document as extract  # noqa: E402
from crawler.extraction import pool  # noqa: E402
from crawler.extraction.templates import TemplateLearner  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "benchmarks" / "extraction"
FIXTURES = ROOT / "tests" / "fixtures" / "extraction"
GENERALIZATION = ROOT / "tests" / "fixtures" / "generalization"
SAMPLE_SITE = ROOT / "crawler" / "jobs" / "sample_site"
SAMPLE_EXPECTED = ROOT / "tests" / "fixtures" / "sample_site_expected.json"
DATE_PAGES = ROOT / "tests" / "fixtures" / "dates"
TOKEN = re.compile(r"\w+")
# per language: a Han or kana character is a token (a run of them is no word)
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
SCRIPT_TOKEN = re.compile(f"[{_CJK}]|[^\\W{_CJK}]+")
PROFILES: dict[str, dict[str, Any]] = {
    "balanced, fast (project)": {},
    "balanced, with fallbacks": {"fast": False},
    "favor_precision, fast": {"favor_precision": True},
    "favor_recall, fast": {"favor_recall": True},
    "balanced, fast, no tables": {"include_tables": False},
}

Extractor = Callable[[str, str], str]


# ---------------------------------------------------------------- the Scrapinghub metric


def shingles(text: str) -> tuple[Counter[tuple[str, ...]], list[str]]:
    """The text's multiset of 4-token shingles (one shingle below 4 tokens) and its tokens."""
    tokens = TOKEN.findall(text or "")
    if len(tokens) < 4:
        return (Counter([tuple(tokens)]) if tokens else Counter()), tokens
    return Counter(tuple(tokens[i:i + 4]) for i in range(len(tokens) - 3)), tokens


def score(pages: list[dict[str, str]], predictions: list[str]) -> dict[str, float]:
    """F1, precision, recall (means over pages) and accuracy (exact token lists)."""
    precisions, recalls, exact = [], [], 0
    for page, predicted in zip(pages, predictions, strict=True):
        truth, truth_tokens = shingles(page["truth"])
        pred, pred_tokens = shingles(predicted)
        tp = sum(min(n, pred[s]) for s, n in truth.items())
        fp, fn = sum(pred.values()) - tp, sum(truth.values()) - tp
        exact += truth_tokens == pred_tokens
        if fp == 0 and fn == 0:
            precisions.append(1.0)
            recalls.append(1.0)
            continue
        if tp + fp:
            precisions.append(tp / (tp + fp))
        if tp + fn:
            recalls.append(tp / (tp + fn))
    p, r = sum(precisions) / len(precisions), sum(recalls) / len(recalls)
    return {"f1": 2 * p * r / (p + r), "precision": p, "recall": r, "accuracy": exact / len(pages)}


def load_benchmark(data: Path) -> list[dict[str, str]]:
    base = data / "scrapinghub"
    truth = json.loads((base / "ground-truth.json").read_text("utf-8"))
    return [{"id": key, "url": item["url"], "truth": item["articleBody"],
             "html": gzip.decompress((base / "html" / f"{key}.html.gz").read_bytes()
                                     ).decode("utf-8")}
            for key, item in sorted(truth.items())]


# ---------------------------------------------------------------- the two extractors


def project(html: str, url: str) -> str:
    doc = extract.extract_document(html, url)
    return doc["text"] if doc else ""


def plain_trafilatura(html: str, url: str) -> str:
    return trafilatura.extract(html, url=url, include_comments=False) or ""


@contextmanager
def profile(overrides: dict[str, Any]) -> Iterator[None]:
    """The project's extraction with other trafilatura settings, for the duration."""
    saved = dict(extract.EXTRACTION_PROFILE)
    extract.EXTRACTION_PROFILE.update(overrides)
    try:
        yield
    finally:
        extract.EXTRACTION_PROFILE.clear()
        extract.EXTRACTION_PROFILE.update(saved)


def run_interleaved(pages: list[dict[str, str]], extractors: dict[str, Extractor]
                    ) -> tuple[dict[str, list[str]], dict[str, float]]:
    """Every extractor on every page, page by page (order alternating), with CPU ms/page."""
    outputs: dict[str, list[str]] = {name: [] for name in extractors}
    spent = dict.fromkeys(extractors, 0)
    names = list(extractors)
    for i, page in enumerate(pages):
        for name in names if i % 2 == 0 else reversed(names):
            start = time.process_time_ns()
            outputs[name].append(extractors[name](page["html"], page["url"]))
            spent[name] += time.process_time_ns() - start
    return outputs, {name: ns / 1e6 / len(pages) for name, ns in spent.items()}


# ---------------------------------------------------------------- fixture outlets


def fixture_outlets(extractor: str) -> list[dict[str, Any]]:
    """Per outlet: paragraphs kept and boilerplate phrases leaked."""
    expected = json.loads((FIXTURES / "expected.json").read_text("utf-8"))
    rows = []
    for outlet in expected["outlets"]:
        learner = TemplateLearner()
        pages = [(p, (FIXTURES / p["file"]).read_bytes()) for p in outlet["pages"]]
        if extractor == "project":
            for page, html in pages:  # learn the outlet's templates first, as a crawl does
                doc = extract.extract_document(html, page["url"])
                learner.observe(outlet["name"], doc["fingerprints"] if doc else ())
        kept = paragraphs = leaked = phrases = 0
        for page, html in pages:
            if extractor == "project":
                doc = extract.extract_document(html, page["url"],
                                               templates=learner.templates(outlet["name"]))
                text = doc["text"] if doc else ""
            else:
                text = plain_trafilatura(html.decode("utf-8"), page["url"])
            found = {" ".join(p.split()) for p in text.split("\n")}
            kept += sum(" ".join(p.split()) in found for p in page["paragraphs"])
            paragraphs += len(page["paragraphs"])
            leaked += sum(phrase in text for phrase in page["boilerplate"])
            phrases += len(page["boilerplate"])
        languages = sorted({p["language"] for p in outlet["pages"]})
        rows.append({"outlet": outlet["name"], "languages": ",".join(languages),
                     "pages": len(pages), "kept": kept, "paragraphs": paragraphs,
                     "leaked": leaked, "phrases": phrases})
    return rows


# ---------------------------------------------------------------- per language, dates


def written_pages() -> list[dict[str, Any]]:
    """Every page written for the project with its body and date known: file, url, outlet,
    language, split (fixture / dev / check), truth (the body), date, date_modified."""
    pages = []
    for base, split in ((FIXTURES, None), (GENERALIZATION, None)):
        for outlet in json.loads((base / "expected.json").read_text("utf-8"))["outlets"]:
            for p in outlet["pages"]:
                pages.append({"path": base / p["file"], "url": p["url"], "outlet": outlet["name"],
                              "language": p["language"], "split": p.get("split", split or
                                                                        "fixture"),
                              "truth": "\n\n".join(p["paragraphs"]), "date": p["date"],
                              "date_modified": p.get("date_modified", "?")})
    return pages


def sample_site_pages() -> list[dict[str, Any]]:
    """The bundled sample outlet's articles, with their dates (for the date table)."""
    expected = json.loads(SAMPLE_EXPECTED.read_text("utf-8"))
    return [{"path": SAMPLE_SITE / a["path"].lstrip("/"), "url": "http://127.0.0.1:8000"
             + a["path"], "date": a["date"], "date_modified": "?"} for a in expected["articles"]]


def date_pages() -> list[dict[str, Any]]:
    """Pages written for their dates (``tests/fixtures/dates``): datelines in 15 languages and
    scripts, structured data beside sidebars, undated pages with years and dates in them."""
    expected = json.loads((DATE_PAGES / "expected.json").read_text("utf-8"))
    return [{"path": DATE_PAGES / p["file"], "url": p["url"], "date": p["date"],
             "date_modified": p["date_modified"], "split": p["split"]}
            for p in expected["pages"]]


def script_score(truth: str, predicted: str) -> tuple[float, float]:
    """(precision, recall) of 4-token shingles, tokens per word or per CJK character."""
    def grams(text: str) -> Counter[tuple[str, ...]]:
        tokens = SCRIPT_TOKEN.findall(text or "")
        return Counter(tuple(tokens[i:i + 4]) for i in range(max(1, len(tokens) - 3)))
    t, p = grams(truth), grams(predicted)
    tp = sum(min(n, p[s]) for s, n in t.items())
    precision = tp / sum(p.values()) if predicted.strip() else 0.0
    return precision, tp / max(1, sum(t.values()))


def f1_by_language(pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (language, split): pages and mean F1 of the project and of plain trafilatura; the
    project learns each outlet's templates over its pages first, as a crawl does."""
    learners: dict[str, TemplateLearner] = {}
    for page in pages:
        doc = extract.extract_document(page["path"].read_bytes(), page["url"])
        learners.setdefault(page["outlet"], TemplateLearner()).observe(
            page["outlet"], doc["fingerprints"] if doc else ())
    scores: dict[tuple[str, str], dict[str, list[tuple[float, float]]]] = {}
    for page in pages:
        html = page["path"].read_bytes()
        doc = extract.extract_document(html, page["url"], templates=learners[
            page["outlet"]].templates(page["outlet"]))
        for key in ((page["language"], page["split"]), (page["language"], "all"),
                    ("all", "all")):
            row = scores.setdefault(key, {"project": [], "trafilatura": []})
            row["project"].append(script_score(page["truth"], doc["text"] if doc else ""))
            row["trafilatura"].append(script_score(page["truth"], plain_trafilatura(
                html.decode("utf-8"), page["url"])))
    rows = []
    for (language, split), row in sorted(scores.items()):
        rows.append({"language": language, "split": split, "pages": len(row["project"]),
                     **{name: _mean_f1(pairs) for name, pairs in row.items()}})
    return rows


def _mean_f1(pairs: list[tuple[float, float]]) -> float:
    p = sum(x for x, _ in pairs) / len(pairs)
    r = sum(y for _, y in pairs) / len(pairs)
    return 2 * p * r / (p + r) if p + r else 0.0


def date_accuracy(pages: list[dict[str, Any]]) -> dict[str, Counter[str]]:
    """right / wrong / none of the published date (and of the modified date where known), for
    the project and for htmldate alone; a page that states no date is wrong when given one."""
    tally: dict[str, Counter[str]] = {"project": Counter(), "htmldate": Counter(),
                                      "project modified": Counter()}
    for page in pages:
        html = page["path"].read_bytes()
        doc = extract.extract_document(html, page["url"]) or {}
        found = {"project": doc.get("date"), "htmldate": htmldate.find_date(
            html.decode("utf-8"), url=page["url"], original_date=True)}
        for name, value in found.items():
            tally[name][_verdict(page["date"], value)] += 1
        if page["date_modified"] != "?":
            tally["project modified"][_verdict(page["date_modified"], doc.get(
                "date_modified"))] += 1
    return tally


def _verdict(truth: str | None, found: str | None) -> str:
    if found is None:
        return "right" if truth is None else "none"
    return "right" if found == truth else "wrong"


# ---------------------------------------------------------------- report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help=f"benchmark data directory (default: {DEFAULT_DATA})")
    parser.add_argument("--profiles", action="store_true",
                        help="also score trafilatura profiles behind the project's cleaning")
    args = parser.parse_args()

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    pool.warm_up()
    plain_trafilatura("<html><body><p>" + "Warm up. " * 40 + "</p></body></html>", "")
    pages = load_benchmark(args.data)
    outputs, ms = run_interleaved(pages, {"project": project,
                                          "plain trafilatura": plain_trafilatura})

    print(f"Scrapinghub article-body benchmark: {len(pages)} pages, trafilatura "
          f"{trafilatura.__version__}")
    print(f"  {'extractor':<30} {'F1':>6} {'prec.':>6} {'recall':>6} {'acc.':>6} {'ms/page':>8}")
    for name in outputs:
        s = score(pages, outputs[name])
        print(f"  {name:<30} {s['f1']:6.3f} {s['precision']:6.3f} {s['recall']:6.3f} "
              f"{s['accuracy']:6.3f} {ms[name]:8.1f}")
    print(f"  cost: project / plain trafilatura = {ms['project'] / ms['plain trafilatura']:.2f}x"
          f" CPU time per page, one core")

    if args.profiles:
        print("\nProject extraction with other trafilatura settings (EXTRACTION_PROFILE):")
        print(f"  {'profile':<30} {'F1':>6} {'prec.':>6} {'recall':>6} {'acc.':>6} {'ms/page':>8}")
        for name, overrides in PROFILES.items():
            with profile(overrides):
                out, spent = run_interleaved(pages, {name: project})
            s = score(pages, out[name])
            print(f"  {name:<30} {s['f1']:6.3f} {s['precision']:6.3f} {s['recall']:6.3f} "
                  f"{s['accuracy']:6.3f} {spent[name]:8.1f}")

    print("\nFixture outlets (tests/fixtures/extraction): article paragraphs kept, boilerplate "
          "phrases leaked")
    print(f"  {'outlet':<12} {'lang.':<12} {'pages':>5}  {'project kept':>12} "
          f"{'leaked':>7}  {'trafilatura kept':>16} {'leaked':>7}")
    for ours, theirs in zip(fixture_outlets("project"), fixture_outlets("plain"), strict=True):
        print(f"  {ours['outlet']:<12} {ours['languages']:<12} {ours['pages']:>5}  "
              f"{ours['kept']:>5}/{ours['paragraphs']:<6} {ours['leaked']:>3}/{ours['phrases']:<3}"
              f"  {theirs['kept']:>9}/{theirs['paragraphs']:<6} "
              f"{theirs['leaked']:>3}/{theirs['phrases']:<3}")

    pages = written_pages()
    print("\nBody F1 per language, pages written for the project (fixture: the fixture outlets;"
          " dev / check: tests/fixtures/generalization, developed on / only checked)")
    print(f"  {'language':<9} {'pages':<14} {'project':>8} {'trafilatura':>12}")
    for row in f1_by_language(pages):
        print(f"  {row['language']:<9} {row['split'] + ' ' + str(row['pages']):<14} "
              f"{row['project']:8.3f} {row['trafilatura']:12.3f}")

    dated = pages + sample_site_pages() + date_pages()
    print("\nDates on the pages with a known date (the fixture outlets, the sample outlet, the "
          "generalization pages, tests/fixtures/dates); a page that states no date is right "
          "when given none; check: the pages written after the date code, never tuned on")
    print(f"  {'pages':<16} {'':<18} {'right':>6} {'wrong':>6} {'none':>6}")
    for label, chosen in (("all", dated), ("check", [p for p in dated
                                                     if p.get("split") == "check"])):
        for name, counts in date_accuracy(chosen).items():
            print(f"  {label + ' ' + str(len(chosen)):<16} {name:<18} {counts['right']:>6} "
                  f"{counts['wrong']:>6} {counts['none']:>6}")


if __name__ == "__main__":
    main()
