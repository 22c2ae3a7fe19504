"""Importing demands from a campaign text: the finder (pure) and the import page (both backends)."""

from __future__ import annotations

import io
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from petition.models import AuditEntry, Demand
from petition.organiser.importer import (
    demands_in,
    is_demand_sentence,
    propose_demands,
    split_title,
    text_from_html,
)
from tests.helpers import csrf_token, login, make_campaign, make_organiser

# --- Finding demands (pure) -------------------------------------------------------------------

NUMBERED = """Our coalition works on three fronts.

Our demands:

1. Release every prisoner of conscience
2. Allow independent observers into the region
3. Stop the forced transfer of workers
"""


@pytest.mark.parametrize("markers", [
    ("1.", "2.", "3."),
    ("1)", "2)", "3)"),
    ("(1)", "(2)", "(3)"),
    ("i.", "ii.", "iii."),
    ("(a)", "(b)", "(c)"),
    ("-", "-", "-"),
    ("*", "*", "*"),
    ("•", "•", "•"),
    ("–", "–", "–"),
])
def test_list_markers(markers):
    items = ["Release every prisoner of conscience", "Allow independent observers in",
             "Stop the forced transfer of workers"]
    text = "We have a list.\n\n" + "\n".join(f"  {m} {t}" for m, t in zip(markers, items, strict=True))
    assert propose_demands(text) == items


def test_numbered_list_in_a_longer_text():
    assert propose_demands(NUMBERED) == [
        "Release every prisoner of conscience",
        "Allow independent observers into the region",
        "Stop the forced transfer of workers",
    ]


def test_list_punctuation_wrapped_lines_and_sub_items():
    text = (
        "- Close the detention sites;\n"
        "- Compensate the families of those\n"
        "  who were detained, and\n"
        "- Hold a public inquiry into:\n"
        "    - the treatment of detainees\n"
        "    - the role of contractors\n"
        "- Restore the right to travel; and\n"
    )
    assert propose_demands(text) == [
        "Close the detention sites",
        "Compensate the families of those who were detained",
        "Hold a public inquiry into:\n- the treatment of detainees\n- the role of contractors",
        "Restore the right to travel",
    ]


def test_loose_list_with_blank_lines_and_lazy_continuation():
    text = "1. End the surveillance of\nfamilies abroad.\n\n2. Return confiscated passports.\n"
    assert propose_demands(text) == ["End the surveillance of families abroad.",
                                     "Return confiscated passports."]


@pytest.mark.parametrize(("sentence", "found"), [
    ("We call on the government to end arbitrary detention.", True),
    ("We call upon all member states to act.", True),
    ("We, the undersigned, call on the council to publish the report.", True),
    ("We demand an independent investigation.", True),
    ("We urge the company to audit its suppliers.", True),
    ("We ask the minister to meet the families.", True),
    ("We strongly urge parliament to vote for the bill.", True),
    ("We also call for targeted sanctions.", True),
    ("Today we are calling on the UN to send observers.", True),
    ("That is why I urge every government to speak out.", True),
    ("We ask you to sign this petition today.", False),
    ("We urge everyone to share this page.", False),
    ("We ask for your support.", False),
    ("The protesters demanded answers.", False),
    ("We are grateful to the countries that spoke out.", False),
    ("Please donate today.", False),
])
def test_demand_sentences(sentence, found):
    assert is_demand_sentence(sentence) is found
    assert propose_demands(f"Some context first. {sentence} Thank you.") == ([sentence] if found else [])


def test_prose_and_lists_in_document_order():
    text = (
        "A report was published this week. We call on the regional authority to release "
        "the detainees named in it. Their families have waited for years.\n\n"
        "We also want to see:\n\n"
        "- An end to the mass surveillance programme\n"
        "- Access for journalists\n\n"
        "Finally, we demand that the victims receive reparations."
    )
    assert propose_demands(text) == [
        "We call on the regional authority to release the detainees named in it.",
        "An end to the mass surveillance programme",
        "Access for journalists",
        "Finally, we demand that the victims receive reparations.",
    ]


def test_single_items_one_word_items_and_duplicates():
    text = (
        "- Home\n- About\n- Contact\n\n"          # a menu: one-word items are skipped
        "1. A lone numbered line is not a list\n\n"
        "* Protect human rights defenders\n* Protect human rights defenders\n"
        "* PROTECT  human rights defenders\n"
    )
    assert propose_demands(text) == ["Protect human rights defenders"]


@pytest.mark.parametrize("text", ["", "   \n\n  ", "Just a story about a place. Nothing more.",
                                  "2019. A year to remember.\n2020. Another one."])
def test_nothing_found(text):
    assert propose_demands(text) == []


def test_windows_line_ends_bom_and_no_break_spaces():
    text = "\ufeff1.\u00a0Free the journalists\r\n2.\tEnd the blackout\r\n"
    assert propose_demands(text) == ["Free the journalists", "End the blackout"]


def test_split_title_short_and_multiline():
    assert split_title("Free the journalists") == ("Free the journalists", "")
    text = "Hold an inquiry into:\n- the camps\n- the transfers"
    assert split_title(text) == ("Hold an inquiry into:", text)


def test_split_title_cuts_after_the_first_sentence():
    first = "Release all human rights defenders held without trial."
    text = first + " " + "They must be allowed to return to their families and work. " * 5
    title, body = split_title(text)
    assert title == first
    assert body == text.strip()


def test_split_title_cuts_at_a_word_boundary():
    text = " ".join(["uninterrupted"] * 40)  # 559 characters, no sentence end
    title, body = split_title(text)
    assert len(title) <= 200
    assert title.endswith("uninterrupted…")
    assert body == text
    unbroken = "x" * 500
    title, _body = split_title(unbroken)
    assert title == "x" * 199 + "…"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=400))
def test_finder_never_fails_and_titles_fit(text):
    for found in propose_demands(text):
        assert found and found == found.strip()
        title, body = split_title(found)
        assert 0 < len(title) <= 200
        assert body in ("", found)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["1. ", "- ", "(ii) ", "We call on ", "we demand ", "  ", "\n",
                                 "\n\n", "word ", ". ", "<li>", "</ul>", "&amp;", "x"]),
                max_size=60))
def test_finder_handles_fragments(parts):
    text = "".join(parts)
    propose_demands(text)
    demands_in(text)


def test_large_hostile_text_is_fast():
    texts = [
        "We " + "really " * 30_000 + "urge",             # long run of adverbs
        ("- " + "word " * 10 + "\n") * 5_000,            # thousands of items
        "a. " * 60_000,                                 # no line breaks at all
        "<li>" * 20_000 + "x" * 10,                     # unbalanced HTML
        "<p " * 60_000,                                 # tags that never close
        "- a" + ",  " * 20_000 + "x\n- b c",             # list punctuation that never ends
        "i really " * 25_000,                           # many starts of a call
        "- x\n" + "  more\n" * 50_000,                  # one very long item
    ]
    for text in texts:
        start = time.perf_counter()
        demands_in(text)
        assert time.perf_counter() - start < 5


def test_text_from_html_keeps_lists_and_drops_the_rest():
    html = """<!doctype html><html><head><title>Page title</title>
    <style>li { color: red }</style><script>var x = "<li>Not this</li>";</script></head>
    <body><nav><ul><li><a href="/">Home page</a></li><li>Donate now</li></ul></nav>
    <h1>Justice &amp; truth</h1>
    <p>We call on the
       authorities to <b>free</b> them.</p>
    <ol><li>Open the archives</li><li>Name the officials<ul><li>at every level</li></ul></li></ol>
    <ul><li>Fund&nbsp;the&nbsp;inquiry</li></ul>
    <footer><ul><li>Privacy policy</li><li>Contact us</li></ul></footer>
    <!-- <li>A comment</li> --></body></html>"""
    text = text_from_html(html)
    assert "Page title" not in text and "Not this" not in text and "color" not in text
    assert "Home page" not in text and "Privacy policy" not in text and "A comment" not in text
    assert "Justice & truth" in text
    assert "We call on the authorities to free them." in text
    assert "1. Open the archives\n2. Name the officials\n    - at every level" in text
    assert "- Fund the inquiry" in text
    assert demands_in(html, is_html=True) == [
        "We call on the authorities to free them.",
        "Open the archives",
        "Name the officials\n- at every level",
    ]


def test_pasted_html_is_detected():
    pasted = "<p>Intro</p><ul><li>Protect the witnesses</li><li>Publish the evidence</li></ul>"
    assert demands_in(pasted) == ["Protect the witnesses", "Publish the evidence"]
    assert demands_in("1 < 2 and 3 > 2, we demand fair maths.") == ["1 < 2 and 3 > 2, we demand fair maths."]


# --- The import page (SQLite and PostgreSQL) ---------------------------------------------------

@pytest.fixture
def campaign(db):
    """An open campaign with two demands; the client is logged in as its editor."""
    return make_campaign(db, title="Free the detainees", demands=2)


@pytest.fixture
def editor(client, db, campaign):
    make_organiser(db, email="editor@example.org", campaign=campaign, role="editor")
    login(client, "editor@example.org")
    return client


def _url(campaign) -> str:
    return f"/organiser/campaigns/{campaign.slug}/import"


def _find(client, campaign, **data):
    token = csrf_token(client, _url(campaign))
    return client.post(_url(campaign), data={"csrf_token": token, "find": "Find demands", **data})


def _demands(db, campaign) -> list[Demand]:
    db.rollback()
    return list(db.scalars(select(Demand).where(Demand.campaign_id == campaign.id)
                           .order_by(Demand.ordinal)))


def _created(db) -> int:
    db.rollback()
    return db.scalar(select(func.count()).select_from(Demand))


def test_paste_then_create_the_ticked_demands(editor, db, campaign):
    page = editor.get(_url(campaign))
    assert page.status_code == 200
    assert 'enctype="multipart/form-data"' in page.text
    found = _find(editor, campaign, text=NUMBERED + "\nWe urge the envoy to visit the camps.")
    assert found.status_code == 200
    assert "4 possible demands were found" in found.text
    assert found.text.count('type="checkbox"') == 4
    assert found.text.count("checked") == 4
    assert 'value="Allow independent observers into the region"' in found.text
    assert _created(db) == 2  # nothing written yet

    token = csrf_token(editor, _url(campaign))
    response = editor.post(_url(campaign), data={
        "csrf_token": token, "create": "Create",
        "items-0-selected": "y", "items-0-title": "Release every prisoner of conscience",
        "items-0-body": "",
        "items-1-title": "Allow independent observers into the region", "items-1-body": "",
        "items-2-selected": "y", "items-2-title": "Stop forced labour transfers (edited)",
        "items-2-body": "",
        "items-3-selected": "y", "items-3-title": "We urge the envoy to visit the camps.",
        "items-3-body": "",
    })
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/organiser/campaigns/{campaign.slug}/edit#demands")
    demands = _demands(db, campaign)
    assert [(d.title, d.ordinal, d.status) for d in demands[2:]] == [
        ("Release every prisoner of conscience", 3, "draft"),
        ("Stop forced labour transfers (edited)", 4, "draft"),
        ("We urge the envoy to visit the camps.", 5, "draft"),
    ]
    assert demands[2].slug == "release-every-prisoner-of-conscience"
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "demand.import"))
    assert entry.row_count == 3
    assert entry.detail["demands"] == [d.slug for d in demands[2:]]
    assert "3 demands were created as drafts." in editor.get(response.headers["Location"]).text


def test_long_item_gets_a_cut_title_and_the_full_text(editor, db, campaign):
    long_item = ("Establish an independent commission with full access to every detention "
                 "site. " + "It should interview former detainees and publish its findings. " * 4)
    found = _find(editor, campaign, text=f"- {long_item}\n- A second demand here\n")
    assert 'value="Establish an independent commission with full access to every detention site."' \
        in found.text
    assert "Full text" in found.text
    token = csrf_token(editor, _url(campaign))
    editor.post(_url(campaign), data={
        "csrf_token": token, "create": "Create", "items-0-selected": "y",
        "items-0-title": "Establish an independent commission with full access to every detention site.",
        "items-0-body": long_item.strip(),
    })
    demand = _demands(db, campaign)[-1]
    assert demand.title.startswith("Establish an independent commission")
    assert demand.body == long_item.strip()


@pytest.mark.parametrize(("name", "content"), [
    ("demands.txt", b"Intro.\n\n* Stop the raids on homes\n* Return seized property\n"),
    ("demands.TXT", "\ufeff1) Stop the raids on homes\n2) Return seized property\n".encode()),
    ("page.html", b"<ul><li>Stop the raids on homes</li><li>Return seized property</li></ul>"),
    ("page.htm", "<ol><li>Stop the raids on homes</li><li>Return seized property</li></ol>".encode("utf-8-sig")),
])
def test_upload_a_text_or_html_file(editor, campaign, name, content):
    response = _find(editor, campaign, file=(io.BytesIO(content), name))
    assert response.status_code == 200
    assert 'value="Stop the raids on homes"' in response.text
    assert 'value="Return seized property"' in response.text


def test_upload_above_the_default_request_limit(editor, campaign):
    filler = ("Background paragraph with no demand in it at all. " * 40 + "\n\n") * 60  # ~120 KB
    content = (filler + "- Repeal the emergency law\n- Restore the independent courts\n").encode()
    assert 64 * 1024 < len(content) < 200 * 1024
    response = _find(editor, campaign, file=(io.BytesIO(content), "long.txt"))
    assert response.status_code == 200
    assert 'value="Repeal the emergency law"' in response.text


@pytest.mark.parametrize(("data", "message"), [
    ({}, "Please paste a campaign text or upload a file."),
    ({"text": "   \n  "}, "Please paste a campaign text or upload a file."),
    ({"file": (b"%PDF-1.4 ...", "demands.pdf")}, "Please choose a .txt or .html file."),
    ({"file": (b"PK\x03\x04", "demands.docx")}, "Please choose a .txt or .html file."),
    ({"file": ("Talep listesi".encode("utf-16"), "utf16.txt")},
     "The file is not UTF-8 text."),
    ({"file": ("- Özgürlük için\n- İkinci".encode("cp1254"), "latin.txt")},
     "The file is not UTF-8 text."),
    ({"file": (b"text\x00with nul", "binary.txt")}, "This file is not a text file."),
    ({"file": (b"", "empty.txt")}, "The file is empty."),
    ({"file": (b"- a b\n" * 40_000, "big.txt")},
     "The file is larger than 200 KB. Please upload a shorter one."),
    ({"text": "- One thing\n- Another thing", "file": (b"- x y\n- z w", "a.txt")},
     "Please either paste a text or upload a file, not both."),
    ({"text": "- a b\n" * 40_000}, "The text is longer than 200 KB. Please paste a shorter one."),
])
def test_bad_input_gets_a_clear_message(editor, db, campaign, data, message):
    if "file" in data:  # a fresh stream per run: the client closes the one it sent
        content, name = data["file"]
        data = {**data, "file": (io.BytesIO(content), name)}
    response = _find(editor, campaign, **data)
    assert response.status_code == 400
    assert message in response.text
    assert _created(db) == 2


def test_nothing_found_says_so_and_keeps_the_text(editor, db, campaign):
    text = "A long story about a journey. It has no lists and asks nothing of anyone."
    response = _find(editor, campaign, text=text)
    assert response.status_code == 200
    assert "No demands were found in this text." in response.text
    assert text in response.text
    assert _created(db) == 2
    assert db.scalar(select(func.count()).select_from(AuditEntry)) == 0


@pytest.mark.parametrize(("data", "message"), [
    ({"items-0-title": "First", "items-1-title": "Second"},
     "Please tick at least one demand to create."),
    ({"items-0-selected": "y", "items-0-title": "   "},
     "Please enter a title, or untick this demand."),
    ({"items-0-selected": "y", "items-0-title": "t" * 201},
     "The title can be at most 200 characters long."),
    ({}, "Please tick at least one demand to create."),
])
def test_create_step_bad_input(editor, db, campaign, data, message):
    token = csrf_token(editor, _url(campaign))
    response = editor.post(_url(campaign), data={"csrf_token": token, "create": "Create", **data})
    assert response.status_code == 400
    assert message in response.text
    assert _created(db) == 2


def test_create_step_without_csrf_token_writes_nothing(editor, db, campaign):
    response = editor.post(_url(campaign), data={
        "create": "Create", "items-0-selected": "y", "items-0-title": "Sneaky demand"})
    assert response.status_code == 400
    assert _created(db) == 2


def test_at_most_fifty_proposals_per_round(editor, campaign):
    text = "\n".join(f"- Demand about topic number {n}" for n in range(1, 61))
    response = _find(editor, campaign, text=text)
    assert response.status_code == 200
    assert response.text.count('type="checkbox"') == 50
    assert "10 more were found" in response.text


def test_viewer_cannot_import(client, db, campaign):
    make_organiser(db, email="viewer@example.org", campaign=campaign, role="viewer")
    login(client, "viewer@example.org")
    assert client.get(_url(campaign)).status_code == 403
    token = csrf_token(client, "/organiser/")
    response = client.post(_url(campaign), data={
        "csrf_token": token, "create": "Create", "items-0-selected": "y",
        "items-0-title": "Viewer demand"})
    assert response.status_code == 403
    assert _created(db) == 2
