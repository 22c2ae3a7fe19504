"""The baseline: a bare Flask "hello" app, served by the same gunicorn config as the petition app.

    gunicorn -c gunicorn.conf.py --pythonpath bench hello_app:app
"""

from __future__ import annotations

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello() -> str:
    """The cheapest possible Flask response: what any view costs before it does any work."""
    return "Hello, World!"
