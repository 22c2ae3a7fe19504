"""Public petition pages: sign, confirm, withdraw, live counts."""

from petition.signing.routes import bp

__all__ = ["bp"]
