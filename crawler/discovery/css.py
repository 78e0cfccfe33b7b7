"""What a stylesheet loads: ``@import``, ``url()`` (``@font-face src`` included) and
``image-set()``, read with tinycss2, the CSS Syntax Level 3 tokenizer.

Tokens, not regexes: a ``url(...)`` inside a comment or a quoted string is no reference, and
escapes are decoded as a browser decodes them. The walk over nested blocks is iterative (a
hostile stylesheet nests blocks without end). News sites repeat the same inline ``<style>``
block on every page: its references are remembered by the block's digest, so it is tokenized
once per crawl, not once per page.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

import tinycss2
from tinycss2.ast import AtRule, FunctionBlock, Node, StringToken, URLToken

_IMAGE_SETS = ("image-set", "-webkit-image-set")
_MIGHT_LOAD = ("url(", "@import", "image-set", "URL(", "@IMPORT")  # cheap test before tokenizing
_REMEMBERED = 512  # inline blocks whose references are kept (by digest)


@dataclass(frozen=True)
class CssReference:
    url: str          # as written, relative to the stylesheet (or page, for inline CSS)
    imported: bool    # an @import: a stylesheet itself


def stylesheet_references(text: str) -> list[CssReference]:
    """A stylesheet's references, in order, once each."""
    return _distinct(_references(tinycss2.parse_stylesheet(text, skip_comments=True)))


def declarations_references(text: str) -> list[str]:
    """The URLs a ``style="..."`` attribute loads."""
    if not any(marker in text for marker in _MIGHT_LOAD):
        return []
    return [ref.url for ref in _distinct(_references(
        tinycss2.parse_component_value_list(text, skip_comments=True)))]


class InlineStyles:
    """``<style>`` blocks' references, remembered by the block's digest."""

    def __init__(self) -> None:
        self._known: OrderedDict[bytes, list[CssReference]] = OrderedDict()

    def references(self, text: str) -> list[CssReference]:
        if not any(marker in text for marker in _MIGHT_LOAD):
            return []
        key = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        found = self._known.get(key)
        if found is None:
            found = self._known[key] = stylesheet_references(text)
            if len(self._known) > _REMEMBERED:
                self._known.popitem(last=False)
        else:
            self._known.move_to_end(key)
        return found


def _references(nodes: Iterable[Node]) -> Iterable[CssReference]:
    """Every reference in the nodes and the blocks nested in them, depth first, iteratively."""
    stack = [iter(nodes)]
    while stack:
        node = next(stack[-1], None)
        if node is None:
            stack.pop()
            continue
        if isinstance(node, URLToken):
            yield CssReference(node.value, False)
        elif isinstance(node, AtRule):
            if node.lower_at_keyword == "import":
                target = _import_target(node.prelude)
                if target:
                    yield CssReference(target, True)
                continue
            stack.append(iter(node.prelude))
            if node.content:
                stack.append(iter(node.content))
        elif isinstance(node, FunctionBlock):
            if node.lower_name == "url":  # url("quoted") is a function holding a string
                yield from (CssReference(t.value, False) for t in node.arguments
                            if isinstance(t, StringToken))
            elif node.lower_name in _IMAGE_SETS:  # image-set("a.png" 1x, url(b.png) 2x)
                yield from (CssReference(t.value, False) for t in node.arguments
                            if isinstance(t, StringToken))
                stack.append(iter(node.arguments))
            else:
                stack.append(iter(node.arguments))
        else:
            for attr in ("prelude", "content"):  # rules and {} [] () blocks
                children = getattr(node, attr, None)
                if children:
                    stack.append(iter(children))


def _import_target(prelude: list[Node]) -> str | None:
    """``@import url(x)``, ``@import url("x")`` or ``@import "x"``: the first one."""
    for token in prelude:
        if isinstance(token, (URLToken, StringToken)):
            return token.value
        if isinstance(token, FunctionBlock) and token.lower_name == "url":
            return next((t.value for t in token.arguments if isinstance(t, StringToken)), None)
    return None


def _distinct(references: Iterable[CssReference]) -> list[CssReference]:
    seen: dict[str, CssReference] = {}
    for ref in references:
        url = ref.url.strip()
        if url and url not in seen:
            seen[url] = CssReference(url, ref.imported)
    return list(seen.values())
