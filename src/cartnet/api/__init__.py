"""The REST API: FastAPI routers over :mod:`cartnet.service`, under ``/api/v1``.

Routers translate HTTP to use cases and back; they hold no rules. Errors are RFC 9457
problem details (``application/problem+json``) with the field at fault.
"""

from cartnet.api.app import create_app

__all__ = ["create_app"]
