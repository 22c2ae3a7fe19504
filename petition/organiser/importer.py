"""Finding demands in a campaign text: list items and "we call on ..." sentences (pure, no I/O).

The organiser pastes or uploads a campaign text; `propose_demands` returns the candidate
demands in the order they appear, `split_title` turns one into a title and a body, and
`text_from_html` reduces an HTML page to plain text with its lists kept as lists.
"""

from __future__ import annotations

import html
import re
import unicodedata

import nh3

TITLE_MAX = 200

# A list item: "1." "1)" "(1)" "i." "ii)" "(iv)" "a)" "(a)" or a bullet, then the text.
_ITEM = re.compile(
    r"""^(?P<indent>[ \t]*)
    (?P<marker>\(\s*(?:\d{1,3}|[ivx]{1,5}|[IVX]{1,5}|[a-zA-Z])\s*\)   # (1) (ii) (a)
      |(?:\d{1,3}|[ivx]{1,5}|[IVX]{1,5})[.)]                           # 1. 1) i. ii)
      |[a-zA-Z]\)                                                      # a)
      |[-*•–‣◦▪●·]                                                     # bullets
    )[ \t]+(?P<text>\S.*)$""",
    re.VERBOSE,
)
# A sentence ends at . ! or ? (perhaps inside a closing quote or bracket) before a space and
# something that is not a lower-case letter (so "e.g. this" stays one sentence).
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"'”’)\]]))\s+(?=[^\sa-z])")
# "We call on X to ...", "We, the undersigned, demand ...", "I urge ...", "We are asking ...".
_CALL = re.compile(
    r"""\b(?:we|i)\b
    (?:\s*,[^,.;:!?]{1,80},)?
    (?:\s+(?:also|therefore|hereby|further|again|now|still|jointly|all|together|once\s+again
             |\w+ly)){0,4}
    \s+(?:are\s+|am\s+)?
    (?:call(?:ing)?\s+(?:up)?on|call(?:ing)?\s+for|demand(?:ing)?|urg(?:e|ing)|ask(?:ing)?
      |appeal(?:ing)?\s+to|implor(?:e|ing))\b
    (?!\s+(?:you|everyone|everybody|readers|supporters|our\s+supporters|for\s+your)\b)""",
    re.IGNORECASE | re.VERBOSE,
)
# A trailing "and"/"or" of a list item ("...; and"), removed with the punctuation before it.
_TRAILING_WORD = re.compile(r"\s(?:and|or)$", re.IGNORECASE)
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_UNICODE_SPACES = re.compile(r"[\u00a0\u2000-\u200a\u202f\u205f\u3000]")

# HTML: the tags kept long enough to become line breaks and list markers; the contents of
# the others listed here (menus, scripts, forms) are dropped with them.
_BLOCK_TAGS = {
    "p", "div", "section", "article", "main", "blockquote", "pre", "h1", "h2", "h3", "h4",
    "h5", "h6", "table", "tr", "dl", "dt", "dd", "figure", "figcaption", "address", "hr",
}
_LIST_TAGS = {"ul", "ol", "li", "br", "td", "th"}
_DROPPED_TAGS = {
    "script", "style", "template", "noscript", "title", "nav", "footer", "form", "button",
    "select", "textarea", "iframe", "object", "svg", "math",
}
_TAG = re.compile(r"<(/?)([a-z0-9]+)\s*/?>")
_INDENT_MARK = "\x01"


def _normalise(text: str) -> str:
    """NFC, Unix line ends, no control characters, no-break spaces as spaces."""
    text = unicodedata.normalize("NFC", text).replace("\ufeff", "")
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n")
    text = text.replace("\u2029", "\n\n").replace("\t", "    ")
    return _UNICODE_SPACES.sub(" ", _CONTROLS.sub("", text))


def _marker_kind(marker: str) -> str:
    """The style of a list marker: "1." and "2." are alike, "1." and "-" are not."""
    return re.sub(r"\d+", "1", re.sub(r"[a-zA-Z]+", "a", marker.replace(" ", "")))


def _clean_item(text: str) -> str:
    """One space between words, no trailing list punctuation like "; and"."""
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    text = "\n".join(line for line in lines if line)
    previous = None
    while text != previous:  # a loop, not one regex: nested repetition would backtrack
        previous = text
        text = _TRAILING_WORD.sub("", text.rstrip(" ,;"))
    return text.strip()


def _sentences(paragraph: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(paragraph) if s.strip()]


def is_demand_sentence(sentence: str) -> bool:
    """True for a sentence that calls on someone: "We call on ...", "We demand ...", "I urge ..."."""
    return _CALL.search(sentence) is not None


def propose_demands(text: str) -> list[str]:
    """The demands found in a campaign text, in order, each once.

    Found are the items of numbered lists ("1." "1)" "(1)" "i.") and bulleted lists
    ("-" "*" "•" "–") of at least two items, and sentences outside lists that call on someone
    ("We call on X to ...", "We demand ...", "We urge ...", "We ask ..."). Lines indented
    under an item (wrapped text, a sub-list) belong to it, joined by a line break for a
    sub-list item. One-word items (menus, labels) are skipped.
    """
    # Each element is ("item", group number, text) or ("para", -1, text), in document order.
    elements: list[tuple[str, int, str]] = []
    group_sizes: dict[int, int] = {}
    group = -1
    group_indent = 0
    group_kind = ""
    in_group = False
    item_lines: list[list[str]] = []  # the item's lines, each a list of wrapped parts
    para_lines: list[str] = []
    blank_before = False

    def end_item() -> None:
        if item_lines:
            elements.append(("item", group, "\n".join(" ".join(parts) for parts in item_lines)))
            group_sizes[group] = group_sizes.get(group, 0) + 1
            item_lines.clear()

    def end_para() -> None:
        if para_lines:
            elements.append(("para", -1, " ".join(para_lines)))
            para_lines.clear()

    for line in _normalise(text).split("\n"):
        if not line.strip():
            end_para()
            blank_before = True
            continue
        indent = len(line) - len(line.lstrip(" "))
        match = _ITEM.match(line)
        if in_group and item_lines and indent > group_indent:
            # Deeper than the list's markers: a sub-item or wrapped text of the current item.
            if match:
                item_lines.append([line.strip()])
            else:
                item_lines[-1].append(line.strip())
        elif match:
            end_para()
            end_item()
            kind = _marker_kind(match.group("marker"))
            if not in_group or kind != group_kind:  # another style of marker: another list
                group += 1
                group_indent = indent
                group_kind = kind
                in_group = True
            item_lines.append([match.group("text").strip()])
        elif in_group and item_lines and not blank_before and line.lstrip()[:1].islower():
            item_lines[-1].append(line.strip())  # a wrapped line that was not indented
        else:
            end_item()
            in_group = False
            para_lines.append(line.strip())
        blank_before = False
    end_item()
    end_para()

    found: list[str] = []
    seen: set[str] = set()

    def add(candidate: str) -> None:
        candidate = _clean_item(candidate)
        key = " ".join(candidate.casefold().split())
        if len(candidate.split()) >= 2 and key not in seen:
            seen.add(key)
            found.append(candidate)

    for kind, number, body in elements:
        if kind == "item" and group_sizes[number] >= 2:
            add(body)
        else:
            for sentence in _sentences(body.replace("\n", " ")):
                if is_demand_sentence(sentence):
                    add(sentence)
    return found


def split_title(text: str, limit: int = TITLE_MAX) -> tuple[str, str]:
    """A title of at most `limit` characters and a body: the full text if the title is cut.

    A long first line is cut after its first sentence if that fits, else at the last word
    boundary with an ellipsis. The body is empty when the title is the whole text.
    """
    text = text.strip()
    first = text.split("\n", 1)[0].strip()
    if len(first) <= limit:
        return first, ("" if first == text else text)
    for match in re.finditer(r"[.!?](?=\s)", first):
        end = match.end()
        if end > limit:
            break
        if end >= 20:
            return first[:end], text
    cut = first[: limit - 1]
    if not first[limit - 1].isspace() and " " in cut[limit // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:-–") + "…", text


def looks_like_html(text: str) -> bool:
    """True if a pasted text has HTML block or list tags (copied page source)."""
    pattern = r"<(?:p|li|ul|ol|br|div|h[1-6]|html|body|table)\b[^<>]{0,500}>"
    return re.search(pattern, text, re.IGNORECASE) is not None


def text_from_html(markup: str) -> str:
    """Plain text of an HTML document or fragment: paragraphs as blank-line separated
    blocks, list items as "- item" / "1. item" lines (nested ones indented), scripts,
    styles, menus and forms dropped, entities decoded."""
    cleaned = nh3.clean(
        markup.replace(_INDENT_MARK, ""),
        tags=_BLOCK_TAGS | _LIST_TAGS,
        attributes={},
        clean_content_tags=_DROPPED_TAGS,
        strip_comments=True,
        link_rel=None,
    )
    # nh3 returns well-formed markup without attributes, and escapes every "<" in text, so
    # each "<...>" left is one of the tags allowed above.
    cleaned = re.sub(r"\s+", " ", cleaned)
    out: list[str] = []
    lists: list[int | None] = []  # per open list: the next number (ol) or None (ul)
    for piece in re.split(r"(<[^>]*>)", cleaned):
        tag = _TAG.fullmatch(piece)
        if tag is None:
            out.append(piece)
            continue
        closing, name = tag.group(1) == "/", tag.group(2)
        if name in ("ul", "ol"):
            if closing:
                if lists:
                    lists.pop()
            else:
                lists.append(1 if name == "ol" else None)
            # Only the outermost list is a block of its own; a nested one continues its item.
            out.append("\n\n" if not lists or (len(lists) == 1 and not closing) else "")
        elif name == "li" and not closing:
            number = lists[-1] if lists else None
            if lists and number is not None:
                lists[-1] = number + 1
            marker = f"{number}." if number is not None else "-"
            out.append("\n" + _INDENT_MARK * max(len(lists) - 1, 0) + marker + " ")
        elif name == "br":
            out.append("\n")
        elif name in ("td", "th"):
            out.append(" ")
        elif name != "li":
            out.append("\n\n")
    text = html.unescape("".join(out))
    lines = []
    for line in text.split("\n"):
        content = _SPACES.sub(" ", line.replace(_INDENT_MARK, "")).strip()
        lines.append("    " * line.count(_INDENT_MARK) + content if content else "")
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def demands_in(text: str, *, is_html: bool = False) -> list[str]:
    """The demands found in a pasted or uploaded text; HTML (given or detected) is reduced
    to plain text first."""
    if is_html or looks_like_html(text):
        text = text_from_html(text)
    return propose_demands(text)
