"""Incremental crawls: the same job run twice over an outlet where one article changed between the
runs. Real command, fixture outlet on 127.0.0.1 (a server that answers conditional requests, and
one that ignores them), a local archive and the real S3 server; WARCs read back with warcio."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crawler.config import ArchiveConfig
from crawler.jobs.demo import OutletServer
from crawler.layout import state_prefix
from crawler.store.backends import LocalStore, S3Store
from crawler.store.state import merge_journal, next_check, read_state, recheck_due
from tests.conftest import (
    EXPECTED,
    FixtureHandler,
    make_fixture_site,
    read_text_shards,
    run_cli,
    s3_archive,
    s3_env,
    write_config,
)
from tests.test_crawl_local import warc_records

CHANGED = EXPECTED["articles"][1]["path"]
RESKINNED = EXPECTED["articles"][2]["path"]  # new markup, same article text
EDIT = "Редакция дополнила материал: компания подтвердила новую дату выпуска модели."
IDENTICAL = "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"
NOT_MODIFIED = "http://netpreserve.org/warc/1.1/revisit/server-not-modified"


class NoValidatorsHandler(FixtureHandler):
    """An outlet that sends neither ETag nor Last-Modified, and answers every GET in full."""

    validators = False


def captures(warcs: list[Path]) -> dict[str, list[dict[str, Any]]]:
    """response and revisit records of the WARCs, by target URI."""
    by_url: dict[str, list[dict[str, Any]]] = {}
    for path in warcs:
        for record in warc_records(path):
            if record["type"] in ("response", "revisit"):
                by_url.setdefault(record["uri"], []).append(record)
    return by_url


def two_runs(tmp_path: Path, handler: type, archive: str, env: dict[str, str] | None = None,
             extra_archive: str = "") -> dict[str, Any]:
    """Crawl, change one article, crawl again with --recheck; the two crawls' files."""
    root = make_fixture_site(tmp_path / "www")
    with OutletServer(root, handler=handler) as server:
        config = write_config(tmp_path / "outlets.toml", server.url, archive,
                              extra_archive=extra_archive)
        first = run_cli("crawl", "-c", str(config), env=env)
        assert first.returncode == 0, first.stderr + first.stdout
        page = root / CHANGED.lstrip("/")
        html = page.read_text("utf-8")
        page.write_text(html.replace("</p>", f"</p><p>{EDIT}</p>", 1), "utf-8")
        page = root / RESKINNED.lstrip("/")
        page.write_text(page.read_text("utf-8").replace("</body>", "<!-- ad slot 2 --></body>"),
                        "utf-8")
        second = run_cli("crawl", "-c", str(config), "--recheck", env=env)
        assert second.returncode == 0, second.stderr + second.stdout
        return {"url": server.url.rstrip("/"), "first": first, "second": second}


def local_crawl_files(archive: Path) -> list[dict[str, Any]]:
    out = []
    for crawl in sorted((archive / "crawls").iterdir()):
        out.append({"id": crawl.name,
                    "warcs": sorted((crawl / "warc").glob("*.warc.gz")),
                    "texts": read_text_shards(sorted((crawl / "text").glob("*.jsonl.gz"))),
                    "manifest": json.loads((crawl / "manifest.json").read_text())})
    return out


@pytest.mark.parametrize("handler, article_profile", [(FixtureHandler, NOT_MODIFIED),
                                                      (NoValidatorsHandler, IDENTICAL)],
                         ids=["conditional-304", "identical-payload"])
def test_second_run_stores_revisits_and_one_new_version(tmp_path: Path, handler: type,
                                                        article_profile: str) -> None:
    archive = tmp_path / "archive"
    run = two_runs(tmp_path, handler, str(archive))
    first, second = local_crawl_files(archive)
    changed_url = run["url"] + CHANGED
    articles = {run["url"] + a["path"] for a in EXPECTED["articles"]}
    before, after = captures(first["warcs"]), captures(second["warcs"])

    # the changed article: captured in full again, with its edit
    (full,) = after[changed_url]
    assert full["type"] == "response" and full["http"].get_statuscode() == "200"
    assert EDIT.encode() in gzip.decompress(full["raw_payload"])
    # new markup around the same text: a full capture, but no new text record (below)
    (reskinned,) = after[run["url"] + RESKINNED]
    assert reskinned["type"] == "response"
    # every other archived 200 page: a revisit pointing at its first capture, no second copy
    for url, records in before.items():
        original = records[0]
        if url in (changed_url, run["url"] + RESKINNED) or original["type"] != "response" or \
                original["http"].get_statuscode() != "200" or url.endswith("/robots.txt"):
            continue
        (revisit,) = after[url]
        expected = article_profile if url in articles else IDENTICAL
        headers = revisit["headers"]
        assert revisit["type"] == "revisit", url
        assert headers.get_header("WARC-Profile") == expected, url
        assert headers.get_header("WARC-Refers-To-Target-URI") == url
        assert headers.get_header("WARC-Refers-To-Date") == \
            original["headers"].get_header("WARC-Date")
        assert headers.get_header("WARC-Refers-To") == \
            original["headers"].get_header("WARC-Record-ID")
        assert headers.get_header("WARC-Payload-Digest") == \
            original["headers"].get_header("WARC-Payload-Digest")
        assert revisit["raw_payload"] == b""  # the block is the HTTP head only
        status = "304" if expected == NOT_MODIFIED else "200"
        assert revisit["http"].get_statuscode() == status

    # one new text record, marked as the next revision of the first one; no duplicate text
    (record,) = second["texts"]
    (original_text,) = [r for r in first["texts"] if r["url"] == changed_url]
    assert record["url"] == changed_url and EDIT in record["text"]
    assert record["revision"] == 2 and original_text["revision"] == 1
    assert record["previous_revision"] == {
        "crawl_id": first["id"], "warc_record_id": original_text["warc_record_id"],
        "fetched_at": original_text["fetched_at"], "digest": original_text["text_digest"]}
    assert record["warc_record_id"] == full["headers"].get_header("WARC-Record-ID")
    assert second["manifest"]["counts"]["text_records"] == 1
    revisits = sum(v for k, v in second["manifest"]["counts"].items()
                   if k.startswith("revisits/"))
    assert revisits == len(before) - 2 - sum(
        1 for r in before.values() if r[0]["type"] != "response" or
        r[0]["http"].get_statuscode() != "200" or r[0]["uri"].endswith("/robots.txt"))
    assert f"(+ {len(articles) - 2} unchanged)" in run["second"].stdout

    # every file passes warcio check; pywb-style index lines call revisits warc/revisit
    for path in second["warcs"]:
        check = subprocess.run([str(Path(sys.executable).parent / "warcio"), "check", str(path)],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
    index = "".join(p.read_text() for p in (archive / "crawls" / second["id"] / "index")
                    .glob("*.cdxj"))
    assert index.count('"mime": "warc/revisit"') == revisits

    # verify re-reads both crawls: revisit records count as the exchanges they are
    verify = run_cli("verify", "--archive", str(archive))
    assert verify.returncode == 0, verify.stdout + verify.stderr

    # the dump has every article once, the changed one with its new text
    dump = run_cli("dump", "--archive", str(archive))
    docs = [json.loads(line) for line in dump.stdout.splitlines()]
    assert sorted(d["url"] for d in docs) == sorted(articles)
    assert EDIT in next(d for d in docs if d["url"] == changed_url)["text"]


def s3_store(s3, archive: str, monkeypatch) -> S3Store:  # noqa: ANN001
    for name, value in s3_env(s3).items():
        monkeypatch.setenv(name, value)
    return S3Store(archive, ArchiveConfig(uri=archive, endpoint_url=s3.endpoint_url,
                                          addressing_style="path"))


def test_incremental_state_lives_in_s3(tmp_path: Path, s3, bucket: str,  # noqa: ANN001
                                       monkeypatch) -> None:  # noqa: ANN001
    archive = f"s3://{bucket}/incremental"
    run = two_runs(tmp_path, NoValidatorsHandler, archive, env=s3_env(s3),
                   extra_archive=s3_archive(s3, tmp_path / "spool"))
    assert "finished" in run["second"].stdout
    store = s3_store(s3, archive, monkeypatch)
    state = {e["url"]: e for e in read_state(store, ["techwire"])}
    changed = state[run["url"] + CHANGED]
    assert changed["article"] and changed["text"]["revision"] == 2
    assert changed["first_seen"] < changed["last_checked"]
    crawls = sorted({i.key.split("/")[1] for i in store.list("crawls/")})
    assert changed["warc_file"].startswith(f"crawls/{crawls[1]}/warc/")  # the new capture
    unchanged = state[run["url"] + EXPECTED["articles"][0]["path"]]
    assert unchanged["warc_file"].startswith(f"crawls/{crawls[0]}/warc/")  # still the first
    assert unchanged["text"]["revision"] == 1
    assert not list((tmp_path / "spool" / "jobs").glob("*/state.jsonl"))  # merged, not left


def test_policy_skips_articles_checked_recently(tmp_path: Path) -> None:
    root = make_fixture_site(tmp_path / "www")
    archive = tmp_path / "archive"
    with OutletServer(root, handler=FixtureHandler) as server:
        config = write_config(tmp_path / "outlets.toml", server.url, str(archive))
        assert run_cli("crawl", "-c", str(config)).returncode == 0
        second = run_cli("crawl", "-c", str(config))  # first re-check is due after 1 h
    assert second.returncode == 0, second.stderr
    first, again = local_crawl_files(archive)
    articles = {server.url.rstrip("/") + a["path"] for a in EXPECTED["articles"]}
    assert articles <= set(captures(first["warcs"]))
    assert not articles & set(captures(again["warcs"]))  # not fetched at all
    assert not again["texts"]
    assert f"archived {len(articles)}" in second.stdout


def test_decaying_recheck_schedule() -> None:
    hours = [3600, 6 * 3600, 86400, 7 * 86400]
    first = datetime(2025, 8, 1, tzinfo=UTC)
    entry = {"first_seen": "2025-08-01T00:00:00Z", "last_checked": "2025-08-01T00:00:00Z"}
    assert next_check(entry, hours) == first + timedelta(hours=1)
    assert not recheck_due(entry, hours, first + timedelta(minutes=59))
    assert recheck_due(entry, hours, first + timedelta(hours=2))
    entry["last_checked"] = "2025-08-01T07:00:00Z"  # checked after the 6 h point: next is 1 d
    assert next_check(entry, hours) == first + timedelta(days=1)
    entry["last_checked"] = "2025-08-09T00:00:00Z"  # past the last point: never again
    assert next_check(entry, hours) is None
    assert not recheck_due(entry, hours, first + timedelta(days=400))
    assert next_check(entry, []) is None


def test_concurrent_merges_keep_every_update(tmp_path: Path, s3, bucket: str,  # noqa: ANN001
                                             monkeypatch) -> None:  # noqa: ANN001
    remote = s3_store(s3, f"s3://{bucket}/state-race", monkeypatch)
    for store in (LocalStore(tmp_path / "local"), remote):
        journals = []
        for worker in range(4):
            journal = tmp_path / f"{id(store)}-{worker}.jsonl"
            journal.write_text("".join(json.dumps({
                "url": f"https://example.org/{worker}/{n}", "outlet": "x",
                "first_seen": "2025-08-01T00:00:00Z", "digest": f"d{n}"}) + "\n"
                for n in range(40)) + '{"url": "https://example.org/torn", "outl')
            journals.append(journal)
        threads = [threading.Thread(target=merge_journal, args=(store, j)) for j in journals]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        state = {e["url"]: e for e in read_state(store, ["x"])}
        assert len(state) == 160  # every worker's URLs, none lost to a race; torn line skipped
        assert len(list(store.list(state_prefix("x")))) == 16
