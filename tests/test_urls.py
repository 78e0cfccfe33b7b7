"""URL hygiene: canonical form, and which hosts an outlet may reach."""

import pytest

from crawler.discovery.urls import HostScope, canonical_url


@pytest.mark.parametrize(("url", "canonical"), [
    ("HTTP://News.Example.ORG:80/a/b.html#top", "http://news.example.org/a/b.html"),
    ("https://news.example.org:443", "https://news.example.org/"),
    ("https://news.example.org:8443/x", "https://news.example.org:8443/x"),
    ("https://n.example/a?utm_source=tw&id=7&fbclid=Z&gclid=1&utm_medium=x",
     "https://n.example/a?id=7"),
    ("https://n.example/a?b=2&a=1", "https://n.example/a?b=2&a=1"),  # order kept
    ("https://n.example/a?q=caf%C3%A9&x=a%20b", "https://n.example/a?q=caf%C3%A9&x=a%20b"),
    ("https://пример.рф/новости", "https://xn--e1afmkfd.xn--p1ai/новости"),
])
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


def test_scope_keeps_crawls_on_the_outlet() -> None:
    scope = HostScope(("https://news.example.org/",))
    assert scope.verdict("https://news.example.org/politics/1.html") is None
    assert scope.verdict("https://NEWS.example.org:443/x") is None
    assert scope.verdict("https://other.example.com/") == "offsite"
    assert scope.verdict("https://cdn.news.example.org/") == "offsite"
    assert HostScope(("https://news.example.org/",), allow_subdomains=True).verdict(
        "https://cdn.news.example.org/") is None
    assert scope.verdict("ftp://news.example.org/") == "scheme"


@pytest.mark.parametrize("url", ["http://127.0.0.1/admin", "http://10.0.0.5/", "http://[::1]/",
                                 "http://169.254.169.254/latest/meta-data/",
                                 "http://192.168.1.1/", "http://localhost:8080/"])
def test_internal_addresses_are_refused_for_public_outlets(url: str) -> None:
    assert HostScope(("https://news.example.org/",), allow_subdomains=True).verdict(url) in (
        "internal",)


def test_outlet_on_loopback_may_crawl_itself_only() -> None:
    scope = HostScope(("http://127.0.0.1:8000/",))
    assert scope.verdict("http://127.0.0.1:8000/news/1.html") is None
    assert scope.verdict("http://127.0.0.1:9000/") == "offsite"
