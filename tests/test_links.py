"""Link extraction from a page's markup: what a link-following crawl sees on a page."""

from crawler.discovery.markup import read_markup

PAGE = """<html><head><title>t</title></head><body>
<a href="/news/a.html#comments">root-relative, with a fragment</a>
<A HREF='../up.html'>relative, single quotes, upper case</A>
<a class="x" href=plain.html>unquoted</a>
<a href="https://other.example/b?x=1&amp;y=2">absolute, entity in query</a>
<a href="//cdn.example/c.js">scheme-relative</a>
<a href="mailto:desk@example.org">mail</a> <a href="javascript:void(0)">js</a>
<a href="#top">fragment only</a> <a href="/news/a.html">again</a>
<a name="anchor">no href</a>
<a href="/путь/статья.html">non-ASCII</a>
</body></html>""".encode()


def test_page_links_resolves_filters_and_dedupes() -> None:
    links = read_markup(PAGE, "http://host.example/section/index.html").links
    assert links == [
        "http://host.example/news/a.html",
        "http://host.example/up.html",
        "http://host.example/section/plain.html",
        "https://other.example/b?x=1&y=2",
        "http://cdn.example/c.js",
        "http://host.example/путь/статья.html",
    ]


def test_base_href_is_honoured() -> None:
    page = b'<head><base href="http://host.example/deep/dir/"></head><a href="x.html">x</a>'
    assert read_markup(page, "http://host.example/").links == [
        "http://host.example/deep/dir/x.html"]
