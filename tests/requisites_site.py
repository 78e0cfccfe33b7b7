"""A fixture outlet whose pages load every kind of requisite, half of them from a CDN on another
loopback address (127.0.0.2), and hold every "looks like a link but is none" trap.

Every requisite path contains ``/req/`` and every trap path ``/trap/``, so a test can compare
what was fetched with what should have been. The images are real PNGs, the font a real TrueType
font (DejaVu, from Debian's fonts-dejavu-core), so a screenshot shows whether each arrived.
"""

from __future__ import annotations

import shutil
import struct
import zlib
from pathlib import Path
from typing import Any

from crawler.jobs.demo import OutletRequestHandler

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf")
ARTICLES = ("first", "second", "third")
REQUISITE_MAX_SIZE = 500_000


def png(width: int, height: int, color: tuple[int, int, int], stripe: int = 0) -> bytes:
    """A real PNG: a colour with darker horizontal stripes every `stripe` rows."""
    rows = []
    for y in range(height):
        r, g, b = (c // 2 for c in color) if stripe and (y // stripe) % 2 else color
        rows.append(b"\0" + bytes((r, g, b)) * width)
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                                               0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b""))


SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="60" height="60">'
       '<circle cx="30" cy="30" r="28" fill="{}"/></svg>')
SPRITE = ('<svg xmlns="http://www.w3.org/2000/svg"><symbol id="dot" viewBox="0 0 10 10">'
          '<rect width="10" height="10" fill="#c0392b"/></symbol></svg>')


def article_html(name: str, cdn: str, n: int) -> str:
    """An article that loads each requisite kind once, and holds each trap."""
    extra = {
        # the same logo under two cache-busting URLs: one payload, stored once
        "first": '<img src="/req/logo.png?v=1" alt="logo" width="40" height="40">',
        "second": ('<img src="/req/logo.png?v=2" alt="logo" width="40" height="40">'
                   f'<img src="{cdn}/ads/req/banner.png" alt="" width="1" height="1">'
                   f'<img src="{cdn}/private/req/hidden.png" alt="" width="1" height="1">'),
        "third": (f'<video src="{cdn}/req/big.webm" preload="none" width="1" height="1">'
                  '</video><audio src="/req/stream.ogg" preload="none"></audio>'),
    }[name]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Fixture article {name}</title>
<meta property="og:type" content="article">
<link rel="stylesheet" href="/req/site.css">
<link rel="icon" href="{cdn}/req/favicon.png">
<link rel="apple-touch-icon" href="{cdn}/req/touch.png">
<link rel="preload" as="image" href="{cdn}/req/preloaded.png">
<link rel="modulepreload" href="/req/module.js">
<script src="/req/app.js" defer></script>
<style>.inline-bg {{ background: url("{cdn}/req/inline-style-block.png") repeat-x; }}
/* url(/trap/css-comment.png) */ .unused::before {{ content: "url(/trap/css-string.png)"; }}
</style>
<noscript><link rel="stylesheet" href="/req/noscript.css"></noscript>
</head><body>
<header class="inline-bg"><h1>Fixture article {name}</h1>
<svg width="20" height="20"><use href="/req/sprite.svg#dot"/></svg></header>
<!-- <img src="/trap/comment.png"> <a href="/trap/comment.html">x</a> -->
<template><img src="/trap/template.png"></template>
<textarea rows="1" cols="10"><img src="/trap/textarea.png"></textarea>
<xmp style="display:none"><img src="/trap/xmp.png"></xmp>
<p class="quote">Plain text naming /trap/text.png is no link. <a href="mailto:desk@example.org">
mail</a> <a href="tel:+100">call</a> <a href="javascript:void(0)">js</a></p>
<figure><img src="{cdn}/req/photo-{n}.png" srcset="{cdn}/req/photo-{n}.png 1x,
{cdn}/req/photo-{n}@2x.png 2x" alt="photo" width="320" height="120">
<picture><source srcset="{cdn}/req/pic-{n}.png 1x, {cdn}/req/pic-{n}-wide.png 2x">
<img src="{cdn}/req/pic-fallback.png" alt="picture" width="160" height="60"></picture>
<img class="lazy" src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" data-src="{cdn}/req/lazy-{n}.png"
 alt="lazy" width="160" height="60">
<img data-srcset="{cdn}/req/lazyset-{n}.png 1x" alt="" width="1" height="1">
<noscript><img src="{cdn}/req/noscript-{n}.png" alt="" width="1" height="1"></noscript>
</figure>
<div style="background-image: url('{cdn}/req/style-attr.png'); height: 30px">styled</div>
<video poster="{cdn}/req/poster.png" width="160" height="60" preload="none">
<source src="/req/clip.webm" type="video/webm"><track src="/req/captions.vtt" kind="captions">
</video>
<object data="/req/object.svg" type="image/svg+xml" width="60" height="60"></object>
<embed src="/req/embed.svg" type="image/svg+xml" width="60" height="60">
<input type="image" src="{cdn}/req/button.png" alt="go" width="60" height="20">
<svg width="60" height="40"><image href="{cdn}/req/svg-image.png" width="60" height="40"/></svg>
<iframe src="/req/widget.html" width="300" height="80"></iframe>
{extra}
<article><p>Body of the fixture article {name}. It is long enough to be extracted as an article
by trafilatura, with a second sentence about requisites, and a third one that ends here.</p>
<p>Another paragraph of the article {name}, so that the text has some weight to it.</p></article>
</body></html>
"""


def build(root: Path, cdn_url: str) -> tuple[Path, Path]:
    """The outlet's files (``root/www``) and the CDN's (``root/cdn``)."""
    cdn = cdn_url.rstrip("/")
    www, cdn_dir = root / "www", root / "cdn"
    for d in (www / "req", www / "articles", www / "trap", cdn_dir / "req", cdn_dir / "ads/req",
              cdn_dir / "private/req"):
        d.mkdir(parents=True, exist_ok=True)
    links = "".join(f'<li><a href="/articles/{name}.html">{name}</a></li>' for name in ARTICLES)
    (www / "index.html").write_text(
        '<!DOCTYPE html><html><head><title>Fixture front page</title>'
        '<link rel="stylesheet" href="/req/site.css"></head><body><h1>Front page</h1>'
        f'<ul>{links}</ul><!-- <a href="/trap/front-comment.html">x</a> --></body></html>',
        "utf-8")
    for n, name in enumerate(ARTICLES):
        (www / "articles" / f"{name}.html").write_text(article_html(name, cdn, n), "utf-8")
    (www / "robots.txt").write_text("User-agent: *\nDisallow: /private/\n")
    (cdn_dir / "robots.txt").write_text("User-agent: *\nDisallow: /private/\n")
    shutil.copy(FONT, www / "req" / "fixture-serif.ttf")
    (www / "req" / "site.css").write_text(
        '@import url("/req/imported.css");\n'
        '@font-face { font-family: "Fixture Serif"; src: url(fixture-serif.ttf) '
        'format("truetype"); }\n'
        'body { font-family: "Fixture Serif", monospace; margin: 20px; background: #fdf6e3; }\n'
        f'header {{ border-bottom: 6px solid #268bd2; background-image: url({cdn}/req/header.png);'
        ' }\n'
        'figure { background-image: image-set("/req/set-1x.png" 1x, url(/req/set-2x.png) 2x); '
        'padding: 10px; }\n'
        '/* background: url(/trap/css-file-comment.png) */\n', "utf-8")
    (www / "req" / "imported.css").write_text(
        "h1 { color: #b58900; text-shadow: 2px 2px 0 #eee8d5; }\n", "utf-8")
    (www / "req" / "noscript.css").write_text("p { color: #073642; }\n", "utf-8")
    (www / "req" / "app.js").write_text(
        "document.querySelectorAll('img.lazy').forEach(i => { i.src = i.dataset.src; });\n"
        "document.body.style.borderLeft = '12px solid #6c71c4';\n", "utf-8")
    (www / "req" / "module.js").write_text("export const ready = true;\n", "utf-8")
    (www / "req" / "sprite.svg").write_text(SPRITE, "utf-8")
    (www / "req" / "object.svg").write_text(SVG.format("#2aa198"), "utf-8")
    (www / "req" / "embed.svg").write_text(SVG.format("#d33682"), "utf-8")
    (www / "req" / "clip.webm").write_bytes(b"\x1aE\xdf\xa3" + bytes(2000))
    (www / "req" / "captions.vtt").write_text("WEBVTT\n", "utf-8")
    (www / "req" / "widget.html").write_text(
        '<!DOCTYPE html><html><head><link rel="stylesheet" href="/req/widget.css">'
        f'<style>body {{ margin: 0; background: url({cdn}/req/widget-bg.png); }}</style>'
        '</head><body>'
        f'<img src="{cdn}/req/widget-img.png" width="200" height="30" alt="w">'
        '<a href="/trap/frame-link.html">a link inside the frame is never followed</a>'
        '</body></html>', "utf-8")
    # page -> frame -> its stylesheet -> this image: three hops, one past requisite_hops
    (www / "req" / "widget.css").write_text(
        f"a {{ color: #859900; }}\n.unused {{ background: url({cdn}/hop3/deep.png); }}\n",
        "utf-8")
    (cdn_dir / "hop3").mkdir(exist_ok=True)
    (cdn_dir / "hop3" / "deep.png").write_bytes(png(1, 1, (0, 0, 0)))
    logo = png(40, 40, (220, 50, 47), 4)
    (www / "req" / "logo.png").write_bytes(logo)
    for name, size in (("set-1x", 16), ("set-2x", 32)):
        (www / "req" / f"{name}.png").write_bytes(png(size, size, (133, 153, 0), size // 8))
    images = {"favicon": (16, 16), "touch": (60, 60), "preloaded": (10, 10),
              "inline-style-block": (10, 40), "header": (10, 40), "pic-fallback": (160, 60),
              "style-attr": (30, 30), "poster": (160, 60), "button": (60, 20),
              "svg-image": (60, 40), "widget-img": (200, 30), "widget-bg": (20, 20)}
    for n in range(len(ARTICLES)):
        images.update({f"photo-{n}": (320, 120), f"photo-{n}@2x": (640, 240),
                       f"pic-{n}": (160, 60), f"pic-{n}-wide": (320, 120),
                       f"lazy-{n}": (160, 60), f"lazyset-{n}": (1, 1),
                       f"noscript-{n}": (1, 1)})
    for i, (name, (w, h)) in enumerate(sorted(images.items())):
        color = (40 + 37 * i % 200, 90 + 53 * i % 160, 140 + 29 * i % 110)
        (cdn_dir / "req" / f"{name}.png").write_bytes(png(w, h, color, 3 + i % 5))
    (cdn_dir / "ads/req/banner.png").write_bytes(png(1, 1, (0, 0, 0)))
    (cdn_dir / "private/req/hidden.png").write_bytes(png(1, 1, (0, 0, 0)))
    (cdn_dir / "req" / "big.webm").write_bytes(b"\x1aE\xdf\xa3" + bytes(REQUISITE_MAX_SIZE * 2))
    return www, cdn_dir


class RecordingHandler(OutletRequestHandler):
    """Serves the fixture, recording every request (path and headers) on the server, and
    streams ``/req/stream.ogg`` without a Content-Length, past the size limit."""

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        self.server.requests.append((self.path, dict(self.headers.items())))  # type: ignore[attr-defined]
        if self.path == "/req/stream.ogg":
            self.send_response(200)
            self.send_header("Content-Type", "audio/ogg")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"OggS" + bytes(16_380)
            for _ in range(REQUISITE_MAX_SIZE // len(chunk) + 10):
                try:
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                except OSError:  # the crawler hung up at its limit
                    return
            self.wfile.write(b"0\r\n\r\n")
            return
        super().do_GET()

    def guess_type(self, path: Any) -> str:
        return "font/ttf" if str(path).endswith(".ttf") else super().guess_type(path)


def recording(server: Any) -> list[tuple[str, dict[str, str]]]:
    """The request log of an OutletServer built with RecordingHandler (from now on)."""
    server.httpd.requests = []
    return server.httpd.requests
