"""The sign flow's framework floor: the same two requests through the chosen stack alone.

    gunicorn -c gunicorn.conf.py --pythonpath bench floor_app:app

The app's sign flow with the app taken out. The GET of a petition page starts a session and
answers a page of the petition page's size whose sign form carries the visitor's CSRF token,
the page rendered once and the token put in per visitor (as petition/signing/display.py
does). The POST is validated by Flask-WTF and WTForms (CSRF token, the same fields, filters
and library validators as petition/signing/forms.py, email-validator included) and answered
with the 303 to the "signed" page. Nothing else: no database, no encryption, no email, no
rate limiter, no translations, no security headers.

bench/wrk/sign.lua drives it exactly as it drives the app, so its signatures/s is what
gunicorn (the project's gunicorn.conf.py), Flask, Werkzeug, Flask-WTF and WTForms allow for
this request mix on the machine before the app does any work of its own: a ceiling of the
sign workload with DESIGN.md's stack.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from flask import Flask, redirect
from flask_wtf import FlaskForm
from flask_wtf.csrf import generate_csrf
from wtforms import BooleanField, EmailField, Field, HiddenField, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

app = Flask(__name__)
app.config["SECRET_KEY"] = "bench-floor-not-a-secret"

COUNTRIES = ["AU", "CA", "DE", "FR", "GB", "KZ", "NL", "SE", "TR", "US"]
# Filler text: the page is about as long as the app's petition page (about 15 kB).
TEXT = "An independent investigation. " * 480


def strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def email_address(_form: FlaskForm, field: Field) -> None:
    try:
        field.data = validate_email(field.data or "", check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValidationError(str(exc)) from exc


class SignForm(FlaskForm):
    name = StringField("Full name", filters=[strip], validators=[DataRequired(), Length(max=120)])
    email = EmailField("Email address", filters=[strip],
                       validators=[DataRequired(), Length(max=254), email_address])
    country = SelectField("Country", choices=[("", "Choose"), *[(c, c) for c in COUNTRIES]],
                          validate_choice=False, validators=[InputRequired()])
    postcode = StringField("Postcode", filters=[strip], validators=[Optional(), Length(max=16)])
    contact_consent = BooleanField("Keep me updated")
    public_consent = BooleanField("Show my first name")
    src = HiddenField(filters=[strip])


TEMPLATE = app.jinja_env.from_string(
    """<!doctype html><html lang="en"><title>Petition</title><h1>{{ slug }}</h1><p>{{ text }}</p>
<form method="post" action="/petitions/{{ slug }}/sign">{{ form.csrf_token }}
{{ form.name.label }} {{ form.name() }} {{ form.email.label }} {{ form.email() }}
{{ form.country.label }} {{ form.country() }} {{ form.postcode.label }} {{ form.postcode() }}
{{ form.contact_consent() }} {{ form.public_consent() }} {{ form.src() }}
<button>Sign</button></form></html>""")
_pages: dict[str, tuple[str, ...]] = {}


def _page(slug: str, form: SignForm) -> str:
    return TEMPLATE.render(slug=slug, form=form, text=TEXT)


@app.get("/petitions/<slug>")
def petition(slug: str) -> str:
    token = generate_csrf()
    parts = _pages.get(slug)
    if parts is None:
        parts = _pages[slug] = tuple(_page(slug, SignForm()).split(token))
    return token.join(parts)


@app.post("/petitions/<slug>/sign")
def sign(slug: str) -> object:
    form = SignForm()
    if not form.validate_on_submit():
        return _page(slug, form), 400
    return redirect(f"/petitions/{slug}/signed", 303)


@app.get("/")
def ready() -> str:
    return "ready"
