"""Generic teaser and widget removal on the parsed page, before trafilatura sees it.

Trafilatura finds boilerplate mostly by class and id names; these rules look at what a block
*is* (its links, its heading, its form controls, where its links point, its first words), so
they also work on outlets whose markup nobody configured. A block goes when it is:

- link-dense: a container of mostly link text with several links (menus, tag clouds, "most
  read" lists), or a paragraph that is nothing but links;
- a teaser list: repeated items that each lead to another page through a linked heading;
- headed by "related / read also / more news / comments" in one of ``HEADINGS``' languages
  (or ``HEADING_PAIRS``: "More great WIRED stories"), or a "Read also: <a>...</a>" line;
- a form with its helper text (comment and review forms, call-back boxes, newsletter sign-up);
- a share bar (links to social networks' share endpoints), or a cookie/consent banner;
- a promo line (``PROMOS``: "Subscribe...", "Подписывайтесь..."), a copyright line, a source
  or picture credit (``CREDITS``).
A layout table is unwrapped instead, so its cells read as ordinary blocks.

A paragraph of the article is never dropped because it contains a link: paragraphs are judged
by their words (a lead phrase, a call to action, a credit) and by their links only when they
have no words of their own; a container that holds a paragraph of plain text is looked into,
never dropped whole. The phrase tables are per language: add a language by adding a key.
"""

from __future__ import annotations

import re

from lxml.html import HtmlElement

from crawler.extraction.scripts import cjk_characters, text_length

# Headings that introduce links to other pages or the comments, per language; a heading
# matches when it starts with one of these (case and surrounding punctuation ignored). Add a
# language by adding a key.
HEADINGS: dict[str, tuple[str, ...]] = {
    "en": ("related", "read also", "also read", "read more", "read next", "see also",
           "more news", "more stories", "more from", "more on this", "more in", "more like this",
           "you may also like", "you might also like", "you may like", "recommended",
           "most read", "most popular", "most viewed", "popular", "trending", "top stories",
           "latest news", "latest stories", "don't miss", "don’t miss", "further reading",
           "editor's picks", "editors' picks", "explore further", "what to read next",
           "keep reading", "other news", "in other news", "comments", "leave a comment",
           "leave a reply", "join the conversation", "share this", "share on", "tags",
           "topics", "filed under"),
    "ru": ("читайте также", "читать также", "также читайте", "смотрите также", "см. также",
           "похожие", "по теме", "новости по теме", "материалы по теме", "другие новости",
           "еще новости", "ещё новости", "больше новостей", "популярное", "самое читаемое",
           "самое популярное", "рекомендуем", "вам может быть интересно", "последние новости",
           "лента новостей", "главное", "комментарии", "написать комментарий", "отзывы",
           "поделиться", "теги", "метки"),
    "uk": ("читайте також", "дивіться також", "схожі", "за темою", "новини за темою",
           "інші новини", "більше новин", "ще новини", "популярне", "найпопулярніше",
           "найчитаніше", "рекомендуємо", "вас може зацікавити", "останні новини", "головне",
           "коментарі", "поділитися", "теги", "мітки"),
    "pl": ("czytaj też", "czytaj także", "czytaj również", "czytaj więcej", "zobacz też",
           "zobacz także", "zobacz również", "przeczytaj też", "przeczytaj także", "podobne",
           "powiązane", "więcej wiadomości", "więcej informacji z", "najnowsze",
           "najczęściej czytane", "najpopularniejsze", "polecamy", "popularne",
           "może cię zainteresować", "inne artykuły", "komentarze", "udostępnij", "tagi"),
    "de": ("lesen sie auch", "lesen sie mehr", "auch interessant", "mehr zum thema",
           "zum thema", "weitere artikel", "weitere nachrichten", "mehr nachrichten",
           "mehr news", "das könnte sie auch interessieren", "ähnliche artikel",
           "verwandte artikel", "meistgelesen", "meist gelesen", "empfohlen", "beliebt",
           "kommentare", "teilen", "schlagwörter"),
    "fr": ("à lire aussi", "a lire aussi", "lire aussi", "à lire également", "voir aussi",
           "sur le même sujet", "sur le meme sujet", "articles similaires", "articles liés",
           "plus d'actualités", "plus d’actualités", "les plus lus", "populaire", "recommandé",
           "vous aimerez aussi", "dans la même rubrique", "commentaires", "partager"),
    "es": ("lee también", "leer también", "lea también", "ver también", "te puede interesar",
           "también te puede interesar", "noticias relacionadas", "artículos relacionados",
           "relacionad", "más noticias", "lo más leído", "más leídas", "lo más visto",
           "recomendado", "comentarios", "compartir", "etiquetas"),
    "it": ("leggi anche", "potrebbe interessarti", "articoli correlati", "più letti",
           "commenti", "condividi"),
    "pt": ("leia também", "leia mais", "veja também", "notícias relacionadas", "mais lidas",
           "você também pode gostar", "comentários", "compartilhe"),
    "el": ("διαβάστε επίσης", "διαβάστε ακόμη", "δείτε επίσης", "δείτε ακόμη", "σχετικά άρθρα",
           "σχετικές ειδήσεις", "σχετικά θέματα", "τελευταίες ειδήσεις", "πιο δημοφιλή",
           "δημοφιλή", "τα πιο διαβασμένα", "προτεινόμενα", "μην χάσετε", "σχόλια",
           "κοινοποίηση", "ετικέτες"),
    # Chinese and Japanese write no spaces: a heading starts with these (no word boundary)
    "zh": ("相关新闻", "相关阅读", "相关文章", "相关报道", "相关推荐", "延伸阅读", "推荐阅读",
           "热门新闻", "热门文章", "热门推荐", "热点新闻", "最新新闻", "更多新闻", "猜你喜欢",
           "为你推荐", "大家都在看", "精彩推荐", "阅读排行", "点击排行", "热门排行", "网友评论",
           "发表评论", "我要评论", "评论区", "分享到", "標籤", "标签", "相關新聞", "相關閱讀",
           "延伸閱讀", "熱門新聞", "推薦閱讀"),
    "ja": ("関連記事", "関連ニュース", "関連リンク", "あわせて読みたい", "合わせて読みたい",
           "おすすめ記事", "こちらもおすすめ", "人気記事", "アクセスランキング", "ランキング",
           "最新ニュース", "新着記事", "コメント", "この記事をシェア", "シェアする", "タグ",
           "もっと見る", "この記事を読んだ人は"),
}

# Headings that pair a "more / other / popular" word with a "news / stories" word, in any
# order and with anything between: "More great WIRED stories", "Інші новини розділу".
HEADING_PAIRS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "en": (("more", "other", "related", "popular", "recommended", "latest", "similar", "top",
            "trending", "recent", "further"),
           ("stories", "news", "articles", "posts", "reads", "headlines", "videos")),
    "ru": (("ещё", "еще", "больше", "другие", "похожие", "популярные", "последние", "свежие",
            "главные", "читаемые", "рекомендуемые"),
           ("новости", "статьи", "материалы", "публикации", "записи")),
    "uk": (("ще", "більше", "інші", "схожі", "популярні", "останні", "свіжі", "головні"),
           ("новини", "статті", "матеріали", "публікації")),
    "pl": (("więcej", "inne", "podobne", "popularne", "najnowsze", "ostatnie", "polecane"),
           ("wiadomości", "artykuły", "artykułów", "newsy", "teksty", "informacje")),
    "de": (("mehr", "weitere", "ähnliche", "beliebte", "neueste", "aktuelle"),
           ("artikel", "nachrichten", "news", "beiträge", "meldungen")),
    "fr": (("plus", "autres", "dernières", "populaires", "similaires"),
           ("articles", "actualités", "infos", "nouvelles")),
    "es": (("más", "otras", "otros", "últimas", "populares", "relacionadas", "relacionados"),
           ("noticias", "artículos", "historias")),
    "el": (("περισσότερες", "περισσότερα", "άλλες", "άλλα", "σχετικές", "δημοφιλείς",
            "τελευταίες", "πρόσφατες"), ("ειδήσεις", "άρθρα", "ιστορίες", "νέα")),
}

# Calls to action that open a promo line: "Subscribe to our newsletter", "Подписывайтесь...".
PROMOS: dict[str, tuple[str, ...]] = {
    "en": ("subscribe", "sign up", "follow us", "join our", "get our", "download our app",
           "click here to subscribe"),
    "ru": ("подписывайтесь", "подпишитесь", "присоединяйтесь", "следите за нами",
           "читайте нас в"),
    "uk": ("підписуйтесь", "підписуйтеся", "приєднуйтесь", "приєднуйтеся", "стежте за нами",
           "читайте нас у"),
    "pl": ("subskrybuj", "zapisz się", "obserwuj nas", "dołącz do nas"),
    "de": ("abonnieren sie", "jetzt abonnieren", "folgen sie uns", "melden sie sich"),
    "fr": ("abonnez-vous", "inscrivez-vous", "suivez-nous"),
    "es": ("suscríbete", "suscribete", "síguenos", "siguenos", "únete"),
    "el": ("ακολουθήστε μας", "εγγραφείτε", "κάντε εγγραφή"),
    "zh": ("关注我们", "扫码关注", "扫描二维码", "下载客户端", "欢迎关注", "點擊訂閱"),
    "ja": ("フォローする", "フォローしてください", "メルマガ登録", "アプリをダウンロード"),
}

# Source and picture credit lines: "Photo: Reuters", "Źródło informacji: The Information".
CREDITS: dict[str, tuple[str, ...]] = {
    "en": ("source", "sources", "photo", "photos", "image", "images", "picture", "credit",
           "credits", "cover photo", "illustration"),
    "ru": ("источник", "источники", "фото", "фотография", "изображение", "иллюстрация",
           "обложка", "фото на обложке"),
    "uk": ("джерело", "джерела", "фото", "світлина", "зображення", "ілюстрація",
           "фото на обкладинці"),
    "pl": ("źródło", "źródła", "zdjęcie", "zdjęcia", "fot", "foto", "ilustracja", "grafika",
           "zdjęcie z okładki", "zdjęcie główne"),
    "de": ("quelle", "quellen", "foto", "bild", "bildquelle", "titelbild"),
    "fr": ("source", "sources", "photo", "crédit", "crédits", "illustration", "image"),
    "es": ("fuente", "fuentes", "foto", "imagen", "ilustración", "crédito"),
    "el": ("πηγή", "πηγές", "φωτογραφία", "φωτ", "εικόνα"),
    "zh": ("来源", "來源", "图片来源", "图片", "摄影", "责任编辑", "責任編輯", "编辑", "編輯"),
    "ja": ("出典", "写真", "画像", "提供", "撮影"),
}

# Share endpoints of social networks and messengers: a block whose links go there is a share bar.
# Matched against the lowercased href: a case-insensitive pattern costs ~8 us an href (this one
# ~1), and a page has 100-200 links.
SHARE_LINK = re.compile(
    r"(?:facebook\.com/(?:sharer|share|dialog/share)|twitter\.com/(?:intent|share|home\?status)"
    r"|x\.com/intent|linkedin\.com/(?:share|sharearticle|cws/share)|pinterest\.com/pin/create"
    r"|reddit\.com/submit|vk\.com/share|connect\.ok\.ru|ok\.ru/dk\?st|t\.me/share"
    r"|telegram\.me/share|wa\.me/|api\.whatsapp\.com/send|whatsapp://send|viber://forward"
    r"|tumblr\.com/(?:share|widgets/share)|getpocket\.com/(?:save|edit)|xing\.com/spi/shares"
    r"|news\.ycombinator\.com/submitlink|mailto:\?)")

COOKIE_TEXT = re.compile(r"cookie|куки|ciasteczk|файл(?:ы|и) cookie")  # lowercased text

_BLOCKS = frozenset({"div", "section", "aside", "nav", "ul", "ol", "dl", "header", "footer",
                     "article", "form", "table", "tbody", "tr", "td", "menu", "figure",
                     "details", "center", "main", "fieldset"})
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_LABELS = frozenset({"h2", "h3", "h4", "h5", "h6", "p", "div", "span", "strong", "b", "header",
                     "dt", "legend", "summary", "em"})
_INLINE_BOXES = frozenset({"span", "a", "label", "button", "li", "strong", "b", "em", "i", "small",
                           "font"})
_CONTROLS = frozenset({"input", "textarea", "select", "button"})
_SKIP = frozenset({"script", "style", "noscript", "template", "svg"})
_LINK_DENSE = 0.6        # share of a container's text inside links
_MIN_LINKS = 3           # links a block needs before it can count as link-dense
_PARAGRAPH = 150         # plain (non-link) characters that make a run of text a paragraph
_SHORT = 300             # a block this short can be a widget (form helper text, banner, promo)


def _alternatives(table: dict[str, tuple[str, ...]]) -> str:
    """Every language's phrases as one regex alternation, longest first, case-folded as the
    text they match is (Greek's final sigma folds to σ)."""
    phrases = sorted({p.casefold() for per_language in table.values() for p in per_language},
                     key=len, reverse=True)
    return "|".join(re.escape(p) for p in phrases)


def _unspaced(table: dict[str, tuple[str, ...]]) -> str:
    """The phrases of languages written without spaces (they end in a Han or kana character):
    they open a heading followed by anything ("相关新闻推荐"), no word boundary needed."""
    return "|".join(re.escape(p) for per_language in table.values() for p in per_language
                    if cjk_characters(p[-1]))


_HEADING_RE = re.compile(rf"^(?:{_alternatives(HEADINGS)})(?!\w)|^(?:{_unspaced(HEADINGS)})")
_PROMO_RE = re.compile(rf"^(?:{_alternatives(PROMOS)})(?!\w)|^(?:{_unspaced(PROMOS)})")
# the credit word, at most two more words ("Źródło informacji"), a colon and the credit
_CREDIT_RE = re.compile(rf"^(?:{_alternatives(CREDITS)})\.?(?:\s+[^\s:：]+){{0,2}}\s*[:：]\s*\S")
_PAIR_FIRST = frozenset(w.casefold() for first, _ in HEADING_PAIRS.values() for w in first)
_PAIR_SECOND = frozenset(w.casefold() for _, second in HEADING_PAIRS.values() for w in second)
_WORD = re.compile(r"\w+")
_COPYRIGHT = re.compile(r"^(?:©|\(c\)|copyright\b)", re.IGNORECASE)
_EDGE = re.compile(r"^[\W\d_]+|[\W\d_]+$")
_INLINE_LEAD = re.compile(r"^[\W_]*([^:：|»>—–-]{2,40}?)\s*[:：|»>—–-]")


class _Stats:
    """Text measures of every element, taken once: characters, link characters, links, and
    the longest run of plain text found directly in one element (a paragraph's worth).
    Characters are counted by ``text_length``: a Han or kana character weighs as much text as
    a word of a spaced script, so a Chinese paragraph is a paragraph and a Chinese menu a menu."""

    __slots__ = ("chars", "link_chars", "links", "share_links", "controls", "longest")

    def __init__(self, chars: int = 0, link_chars: int = 0, links: int = 0,
                 share_links: int = 0, controls: int = 0, longest: int = 0) -> None:
        self.chars = chars
        self.link_chars = link_chars
        self.links = links
        self.share_links = share_links
        self.controls = controls
        self.longest = longest


def _measure(root: HtmlElement) -> dict[HtmlElement, _Stats]:
    """Every element's measures, children before parents (one pass; the page's hottest loop)."""
    stats: dict[HtmlElement, _Stats] = {}
    share_link = SHARE_LINK.search
    for el in reversed(list(root.iter())):  # every element comes after its descendants
        tag = el.tag
        if not isinstance(tag, str) or tag in _SKIP:
            stats[el] = _Stats()
            continue
        text = el.text
        own = text_length(text) if text else 0
        chars = link_chars = links = share_links = controls = longest = 0
        for child in el:
            tail = child.tail
            if tail:
                own += text_length(tail)
            c = stats[child]
            chars += c.chars
            link_chars += c.link_chars
            links += c.links
            share_links += c.share_links
            controls += c.controls
            if c.longest > longest:
                longest = c.longest
        chars += own
        if tag == "a":
            link_chars = chars
            href = el.get("href")
            if href is not None:
                links += 1
                if share_link(href.lower()):
                    share_links += 1
        elif tag in _CONTROLS or el.get("role") == "button" or el.get("onclick"):
            controls += 1
        else:
            plain = chars - link_chars if tag == "p" else own
            if plain > longest:
                longest = plain
        stats[el] = _Stats(chars, link_chars, links, share_links, controls, longest)
    return stats


def _text(el: HtmlElement) -> str:
    """The element's text, whitespace collapsed (a leaf's own text needs no XPath)."""
    return " ".join((el.text_content() if len(el) else el.text or "").split())


def _is_promo(text: str) -> bool:
    return bool(_PROMO_RE.match(_EDGE.sub("", text.casefold())))


def _is_heading_text(text: str) -> bool:
    text = _EDGE.sub("", text.casefold())
    if not 0 < len(text) <= 60:
        return False
    if _HEADING_RE.match(text):
        return True
    words = set(_WORD.findall(text))
    return bool(words & _PAIR_FIRST) and bool(words & _PAIR_SECOND)


class Cleaner:
    """One page's cleaning: measure once, then walk the tree from the root down."""

    def __init__(self, root: HtmlElement) -> None:
        self.root = root
        self.stats = _measure(root)
        self.removed: list[tuple[str, HtmlElement]] = []  # (rule, block) of every removal

    def run(self) -> None:
        body = self.root.find("body")
        self._walk(body if body is not None else self.root)

    # ------------------------------------------------------------ walking

    def _walk(self, el: HtmlElement) -> None:
        children = [c for c in el if isinstance(c.tag, str)]
        dropped = len(self.removed)
        skip_links = False
        for child in children:
            tag = child.tag
            if tag in _SKIP:
                continue
            if skip_links:  # blocks that follow a "related" heading in the article's flow
                if self._links_only(child):
                    self._drop(child, "headed-related")
                    continue
                skip_links = False
            stats = self.stats[child]
            if not stats.chars and not stats.controls:  # nothing in it to judge
                continue
            reason = self._verdict(child)
            if reason:
                self._drop(child, reason)
                continue
            if self._heads_related(child):
                following = [c for c in child.itersiblings() if isinstance(c.tag, str)
                             and c.tag not in _SKIP]
                if not following or (sum(self.stats[c].chars for c in following) < 80 and not any(
                        c.tag == "p" and self.stats[c].chars >= 40 for c in following)):
                    self._drop(child, "headed-related")  # nothing of substance follows it
                    for c in following:
                        self._drop(c, "headed-related")
                    break
                if self._links_only(following[0]):
                    self._drop(child, "headed-related")
                    skip_links = True
                    continue
            if tag == "table" and self._is_layout_table(child):
                self._unwrap_table(child)
            if len(child) and tag != "p" and tag not in _HEADINGS:  # a paragraph stays whole
                self._walk(child)
        if len(self.removed) > dropped and el.tag in _BLOCKS:
            chars, longest = self._left(el)
            if chars <= 80:  # only a label is left ("Related news") once its blocks went
                self._drop(el, "emptied")
            elif chars <= _SHORT and longest < _PARAGRAPH and any(
                    rule == "form" for rule, _ in self.removed[dropped:]):
                self._drop(el, "form")  # the box around a form: its title and helper text

    def _verdict(self, el: HtmlElement) -> str | None:
        """Why this element is boilerplate as a whole, or None (the walk asks only about elements
        with text or controls)."""
        s = self.stats[el]
        tag = el.tag
        if tag == "p" or tag in _HEADINGS:
            return self._paragraph_verdict(el)
        if tag == "form":  # unless it wraps the page (ASP.NET) and so the article
            return "form" if s.longest < _PARAGRAPH or s.chars - s.link_chars < 1500 else None
        if tag not in _BLOCKS and tag not in _INLINE_BOXES:
            return None
        if s.longest >= _PARAGRAPH:  # holds a real paragraph: look inside instead
            return None
        if not s.links and not s.controls:  # the rules below all need links or controls
            return "credit" if self._is_credit(el) else None
        if s.share_links >= 2 and s.chars < _SHORT * 2 and s.chars - s.link_chars < _PARAGRAPH:
            return "share-bar"  # share links and a label, not an article that ends with them
        if s.chars < _SHORT * 2 and (s.controls or s.links) and COOKIE_TEXT.search(
                _text(el).lower()):
            return "cookie-banner"
        if s.controls and s.chars < _SHORT and tag != "span":
            return "form"
        if s.links >= _MIN_LINKS and s.link_chars >= _LINK_DENSE * s.chars:
            return "link-dense"
        if self._is_credit(el):
            return "credit"
        if self._headed_block(el):
            return "headed-related"
        if self._teaser_list(el):
            return "teasers"
        if s.chars < 200 and tag not in ("ul", "ol") and (s.links or s.controls) and _is_promo(
                _text(el)):
            return "promo"
        return None

    # ------------------------------------------------------------ rules

    def _heads_related(self, el: HtmlElement) -> bool:
        """A short heading-like element whose text announces related links or comments."""
        if el.tag not in _LABELS or len(el) > 3:
            return False
        s = self.stats[el]
        return 0 < s.chars <= 80 and s.links <= 1 and _is_heading_text(_text(el))

    def _headed_block(self, el: HtmlElement) -> bool:
        """A block of links that opens with a "related / read also / comments" heading."""
        if not (self._links_only(el) or self.stats[el].controls):
            return False
        first = next((c for c in el if isinstance(c.tag, str) and c.tag not in _SKIP
                      and self.stats[c].chars), None)
        while first is not None and first.tag in ("div", "header") and not self._heads_related(
                first) and len(first):
            first = next((c for c in first if isinstance(c.tag, str) and self.stats[c].chars),
                         None)
        return first is not None and self._heads_related(first)

    def _paragraph_verdict(self, el: HtmlElement) -> str | None:
        """A paragraph goes only when it is not prose: nothing but links (a menu or tag line),
        share links, a copyright line, or a "Read also: <a>Another story</a>" teaser."""
        s = self.stats[el]
        text = _text(el) if s.chars < 200 else None
        if text is not None:
            if _COPYRIGHT.match(text):
                return "copyright"
            if s.chars <= 100 and _CREDIT_RE.match(text.casefold()):
                return "credit"
        if not s.links or s.chars > _SHORT * 2:
            return None
        if s.links >= _MIN_LINKS and s.chars - s.link_chars <= 0.1 * s.chars:
            return "link-dense"
        if s.share_links >= 2 and s.share_links == s.links and s.chars < _SHORT:
            return "share-bar"
        first = next((c for c in el if isinstance(c.tag, str)), None)
        if (first is not None and not (el.text or "").strip() and first.tag != "a"
                and self._heads_related(first) and s.link_chars >= 0.5 * (
                    s.chars - self.stats[first].chars)):
            return "inline-related"
        if s.chars > _SHORT:
            return None
        if text is None:
            text = _text(el)
        lead = _INLINE_LEAD.match(text)
        if lead and _is_heading_text(lead.group(1)) and s.link_chars >= 0.5 * (
                s.chars - text_length(lead.group(0))):
            return "inline-related"
        if _is_heading_text(text) and s.link_chars >= 0.5 * s.chars:
            return "inline-related"
        if s.chars < 200 and _is_promo(text):
            return "promo"
        return None

    def _is_credit(self, el: HtmlElement) -> bool:
        return (self.stats[el].chars <= 100 and not len(el)
                and bool(_CREDIT_RE.match(_text(el).casefold())))

    def _teaser_list(self, el: HtmlElement) -> bool:
        """Two or more items, each a linked heading (with a picture or a blurb) to elsewhere."""
        items = [c for c in el if isinstance(c.tag, str) and self.stats[c].chars]
        if len(items) < 2:
            return False
        teasers = sum(1 for c in items if self._is_teaser(c))
        return teasers >= 2 and teasers >= 0.6 * len(items)

    def _is_teaser(self, el: HtmlElement) -> bool:
        if el.tag == "p":
            return False
        s = self.stats[el]
        if not s.links or s.chars > 600:
            return False
        for h in el.iter("h2", "h3", "h4", "h5", "h6", "a"):
            if h.tag == "a":
                if any(d.tag in _HEADINGS for d in h.iterdescendants()):
                    return True
                continue
            hs = self.stats[h]
            if hs.links and hs.link_chars >= 0.8 * hs.chars:
                return True
        return False

    def _links_only(self, el: HtmlElement) -> bool:
        """A list or box of links (with at most short blurbs), as found under a heading."""
        s = self.stats[el]
        if not s.links or s.longest >= _PARAGRAPH * 2:
            return False
        if el.tag == "p":
            return s.link_chars >= 0.5 * s.chars
        return (s.link_chars >= 0.3 * s.chars or self._teaser_list(el)
                or any(self._is_teaser(c) for c in el if isinstance(c.tag, str)))

    def _left(self, el: HtmlElement) -> tuple[int, int]:
        """Characters and longest paragraph left in a block after removals inside it."""
        chars = longest = text_length(el.text or "")
        for child in el:
            tail = text_length(child.tail or "")
            chars += self.stats[child].chars + tail
            longest = max(longest, self.stats[child].longest, tail)
        return chars, longest

    def _is_layout_table(self, table: HtmlElement) -> bool:
        """A table used for page layout: its cells hold paragraphs or other tables."""
        return any(c.tag in ("p", "table", "div") and self.stats[c].longest >= _PARAGRAPH
                   for td in table.iter("td") for c in td)

    def _unwrap_table(self, table: HtmlElement) -> None:
        for el in table.iter("table", "tbody", "thead", "tfoot", "tr", "td", "th"):
            el.tag = "div"

    def _drop(self, el: HtmlElement, reason: str) -> None:
        self.removed.append((reason, el))
        parent = el.getparent()
        el.drop_tree()
        if parent is not None:  # keep the ancestors' measures true for later decisions
            s = self.stats[el]
            while parent is not None:
                p = self.stats[parent]
                p.chars -= s.chars
                p.link_chars -= s.link_chars
                p.links -= s.links
                p.share_links -= s.share_links
                p.controls -= s.controls
                parent = parent.getparent()


def remove_boilerplate(root: HtmlElement) -> list[tuple[str, HtmlElement]]:
    """Remove teaser and widget blocks from the parsed page in place; returns the rule and the
    (detached) block of every removal, to see why a text went missing. Their texts are not
    read here: the extraction has no use for them."""
    cleaner = Cleaner(root)
    cleaner.run()
    return cleaner.removed
