"""Petition and campaign-demand tracker: the application factory."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask
from flask_babel import get_locale
from werkzeug.middleware.proxy_fix import ProxyFix

from petition import config, db, errors, keys, markdown
from petition.crypto import DataCipher
from petition.extensions import (
    babel,
    configured_locale,
    csrf,
    drop_idle_limiter_hook,
    install_template_gettext,
    limiter,
    log_limiter_to_app,
)
from petition.http import add_security_headers
from petition.signing import display


def create_app(
    test_config: dict[str, Any] | None = None, instance_path: str | None = None
) -> Flask:
    """Build the Flask application; it only wires configuration, extensions and blueprints."""
    app = Flask(
        __name__,
        instance_path=instance_path or os.environ.get("PETITION_INSTANCE_PATH") or None,
        instance_relative_config=True,
        template_folder="../templates",
        static_folder="../static",
    )
    config.load(app, test_config)
    app.jinja_env.add_extension("jinja2.ext.do")
    app.jinja_env.globals["get_locale"] = get_locale
    app.jinja_env.globals["has_endpoint"] = lambda name: name in app.view_functions
    app.extensions["petition.cipher"] = DataCipher(
        app.config["DATA_KEY"], app.config["DOTLESS_EMAIL_DOMAINS"]
    )
    if app.config["PROXY_COUNT"]:
        n = int(app.config["PROXY_COUNT"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]

    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"] or "memory://")
    if app.config["REDIS_URL"]:  # redis-py waits forever by default: a hung Redis would hang signing
        timeout = float(app.config["REDIS_TIMEOUT_SECONDS"])
        app.config.setdefault("RATELIMIT_STORAGE_OPTIONS",
                              {"socket_connect_timeout": timeout, "socket_timeout": timeout})
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", False)
    db.init_app(app)
    keys.install(app.extensions["petition.engine"], app.extensions["petition.cipher"])
    display.init_app(app)
    babel.init_app(app, locale_selector=configured_locale)
    install_template_gettext(app)
    csrf.init_app(app)
    limiter.init_app(app)
    drop_idle_limiter_hook(app)
    log_limiter_to_app()
    markdown.init_app(app)
    errors.init_app(app)

    from petition import cli, health
    from petition.events import bp as events_bp
    from petition.organiser import auth as organiser_auth
    from petition.organiser import bp as organiser_bp
    from petition.signing import bp as signing_bp

    app.register_blueprint(signing_bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(organiser_bp)
    app.register_blueprint(events_bp)
    organiser_auth.init_app(app)
    cli.init_app(app)

    app.after_request(add_security_headers)
    app.wsgi_app = display.PollFastPath(app, app.wsgi_app)  # type: ignore[method-assign]

    return app
