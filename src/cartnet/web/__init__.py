"""The portal: one web application for every center, site, QA team, courier and planner.

Server-rendered pages (Jinja2, htmx 2.0 vendored) in the service's own process. Pages
call the :mod:`cartnet.service` use cases directly, never the HTTP API, so roles,
tenancy, e-signatures and the audit trail work exactly as they do for API clients.
"""

from cartnet.web.portal import error_page, is_portal, mount_portal

__all__ = ["error_page", "is_portal", "mount_portal"]
