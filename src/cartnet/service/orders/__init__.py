"""Orders: enrol a patient, offer slot chains, book, reschedule, cancel, read.

One module per feature: :mod:`~cartnet.service.orders.enrolment` (new orders and the
sealed patient identity), :mod:`~cartnet.service.orders.booking` (offers, booking,
rescheduling, held capacity), :mod:`~cartnet.service.orders.events` (closing, and
manufacturing and QC outcomes), :mod:`~cartnet.service.orders.queries` (reading) and
:mod:`~cartnet.service.orders.view` (the order as returned). The API, portal and demo
call them through this package, as ``orders.book(...)``.
"""

from cartnet.service.orders.booking import (
    BOOKERS,
    CHAIN_TAIL,
    book,
    change_text,
    held_claims,
    offers,
    reschedule,
)
from cartnet.service.orders.enrolment import (
    APHERESIS_AHEAD_DAYS,
    PSEUDONYM_ALPHABET,
    enroll,
    patient_identity,
)
from cartnet.service.orders.events import (
    apply_event,
    close,
    require_no_open_exceptions,
    take_event,
)
from cartnet.service.orders.queries import (
    MAX_PAGE,
    aggregates,
    count_orders,
    get_order,
    list_orders,
    order_audit,
    order_steps,
    site_capacity,
)
from cartnet.service.orders.view import RELEASE_EVENTS, default_tissue_establishment, order_view

__all__ = [
    "APHERESIS_AHEAD_DAYS",
    "BOOKERS",
    "CHAIN_TAIL",
    "MAX_PAGE",
    "PSEUDONYM_ALPHABET",
    "RELEASE_EVENTS",
    "aggregates",
    "apply_event",
    "book",
    "change_text",
    "close",
    "count_orders",
    "default_tissue_establishment",
    "enroll",
    "get_order",
    "held_claims",
    "list_orders",
    "offers",
    "order_audit",
    "order_steps",
    "order_view",
    "patient_identity",
    "require_no_open_exceptions",
    "reschedule",
    "site_capacity",
    "take_event",
]
