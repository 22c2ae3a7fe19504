"""Events: source codes, short links and QR codes."""

from petition.events.routes import bp

__all__ = ["bp"]
