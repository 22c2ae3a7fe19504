"""Events: source codes, short links and QR codes."""

# Imported for their routes, which register on bp.
from petition.events import kiosk, poster_routes, screen  # noqa: F401
from petition.events.routes import bp

__all__ = ["bp"]
