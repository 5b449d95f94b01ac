"""What the service takes and gives: request and response records.

Requests refuse unknown fields and name the field that is wrong; the same models are
the API's OpenAPI schema. No response but :class:`PatientIdentity` carries patient
identity; orders are shown by pseudonym and chain-of-identity id.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from cartnet.ledger.custody import CustodyStep
from cartnet.ledger.lifecycle import OrderEvent, OrderState
from cartnet.ledger.reasons import ReasonCode
from cartnet.ledger.roles import Role
from cartnet.ledger.signatures import SignatureMeaning
from cartnet.network.entities import Scope

PRINTABLE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
"""No control characters but tab and line breaks (PostgreSQL refuses NUL in text)."""
Text = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=PRINTABLE)
]
LongText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000, pattern=PRINTABLE)
]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[!-~]+$"),
]
"""An identifier: printable ASCII without spaces (usernames, site and center ids)."""
Password = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f-\x9f]*$")
]
"""No control characters at all: refused at login as when a password is set."""
Scan = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00]*$")]
"""What a scanner or keyboard produced, kept as given (only NUL is refused)."""
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2199, 12, 31)


def _date_bounds(first: date, last: date) -> Any:
    """``ge``/``le`` for a date, also shown in the OpenAPI document (JSON Schema has no
    date bounds of its own: ``formatMinimum``/``formatMaximum`` as JSON Schema validators
    such as Ajv read them, and words for people)."""
    return Field(
        ge=first,
        le=last,
        description=f"From {first.isoformat()} to {last.isoformat()}.",
        json_schema_extra={"formatMinimum": first.isoformat(), "formatMaximum": last.isoformat()},
    )


Day = Annotated[date, _date_bounds(FIRST_DAY, LAST_DAY)]
"""A planning date: within what the calendars can hold."""
BirthDate = Annotated[date, _date_bounds(date(1880, 1, 1), LAST_DAY)]

FIRST_INSTANT = datetime(FIRST_DAY.year, 1, 1, tzinfo=UTC)
LAST_INSTANT = datetime(LAST_DAY.year + 1, 1, 1, tzinfo=UTC)


def _instant_in_range(value: datetime) -> datetime:
    """An event time must be a real moment the store can hold, in UTC.

    An offset can push a time near year 1 or 9999 out of what a datetime holds once it
    is converted to UTC (``0001-01-01T00:00:00+14:00``); that is refused here, with the
    field, rather than failing when it is stored.
    """
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not FIRST_INSTANT <= utc < LAST_INSTANT:
        raise ValueError(
            f"must be from {FIRST_INSTANT.isoformat()} to before {LAST_INSTANT.isoformat()} "
            "(in UTC)"
        )
    return value


EventTime = Annotated[
    AwareDatetime,
    AfterValidator(_instant_in_range),
    Field(
        description="An ISO 8601 date and time with its UTC offset, from "
        f"{FIRST_INSTANT.isoformat()} to before {LAST_INSTANT.isoformat()}; at most "
        "`clock_skew_minutes` ahead of the server clock, and not before the order's "
        "previous step.",
        json_schema_extra={
            "formatMinimum": FIRST_INSTANT.isoformat(),
            "formatExclusiveMaximum": LAST_INSTANT.isoformat(),
        },
    ),
]
"""When something happened at the bench, as the bench's clock says (with its offset)."""


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Response(BaseModel):
    model_config = ConfigDict(frozen=True)


# --- accounts ---------------------------------------------------------------------------


class Login(Request):
    username: Name
    password: Password


class TokenIssued(Response):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: datetime


class NewUser(Request):
    username: Name
    printed_name: Text
    password: Password | None = None
    """Only from the command line (bootstrap, demo); an administrator's new account gets
    a one-time enrolment token and its person sets the password."""
    role: Role
    center: Name | None = None
    site: Name | None = None


class UserView(Response):
    id: str
    username: str
    printed_name: str
    role: Role
    center: str | None
    site: str | None
    active: bool
    enrolled: bool = True
    """Whether the person has set a password (enrolment done)."""
    failed_logins: int = 0
    locked_until: datetime | None = None
    """Set while the account must wait after failed logins (a lockout past
    ``login_lockout_after`` failures); an administrator can lift it."""
    pending: str | None = None
    """A change awaiting a second administrator's approval, in words."""


class Enrolment(Response):
    """A new account (or a reset one) and the one-time token its person enrols with."""

    user: UserView
    enrolment_token: str | None
    """Give it to the person (not by the same channel as the username if possible);
    ``None`` while a second administrator's approval is pending (the approver gets it)."""
    enrolment_url: str | None = None
    expires_at: datetime | None


class EnrolRequest(Request):
    token: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[!-~]+$")]
    password: Password


class PasswordChange(Request):
    username: Name
    old_password: Password
    new_password: Password


class AccountChange(Request):
    """What an administrator changes of an account; each change is audited with the reason."""

    active: bool | None = None
    role: Role | None = None
    center: Name | None = None
    site: Name | None = None
    printed_name: Text | None = None
    reason: Text


# --- orders -----------------------------------------------------------------------------


class PatientIdentity(BaseModel):
    """Who the patient is; encrypted at rest, shown only to the center's coordinators."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    given_name: Text
    family_name: Text
    date_of_birth: BirthDate
    hospital_number: Text


class NewOrder(Request):
    product: Name
    scope: Scope = Scope.COMMERCIAL
    trial: Name | None = None
    earliest_apheresis: Day
    patient: PatientIdentity


class PlannedChain(Response):
    site: str
    apheresis: date
    start: date
    release: date
    delivery: date
    infusion: date


class OrderView(Response):
    id: str
    coi: str
    coi_eye_readable: str
    pseudonym: str
    center: str
    market: str
    country: str
    product: str
    scope: Scope
    trial: str | None
    state: OrderState
    allowed_events: list[OrderEvent]
    earliest_apheresis: date
    din: str | None
    expiry: date | None
    """Release day (planned until QA releases) plus the product's shelf life."""
    sec: str | None
    """Single European Code, for orders of EU markets once a DIN exists."""
    plan: PlannedChain | None
    open_exceptions: int
    created_at: datetime
    updated_at: datetime
    version: int


class OrderPage(Response):
    items: list[OrderView]
    next_cursor: str | None
    """Pass as ``cursor`` for the next page; ``null`` on the last page."""


class Offer(Response):
    site: str
    site_name: str
    apheresis: date
    start: date
    release: date
    delivery: date
    infusion: date
    vein_to_vein_days: int
    time_to_treatment_days: int
    lane_cost: float
    from_quota: bool = False
    """The start is one of the slots a quota holds for this order's center, market or trial."""


class HeldQuota(Response):
    """Slots a quota still holds for another holder: not offered to this order."""

    site: str
    site_name: str
    holder_kind: str
    holder: str
    period_start: date
    period_end: date
    release_days: int
    """Held slots return to everybody this many days before their day."""
    unused: int


class ExcludedSite(Response):
    site: str
    site_name: str
    reason: str
    message: str


class OfferList(Response):
    order_id: str
    market: str
    offers: list[Offer]
    excluded: list[ExcludedSite]
    held: list[HeldQuota] = []
    """Quotas of other holders that keep slots from this order."""


class BookChain(Request):
    site: Name
    start: Day
    reason_code: ReasonCode | None = None
    """Needed when booking a new apheresis after an out-of-specification result."""
    reason_text: LongText | None = None


class Reason(Request):
    reason_code: ReasonCode
    reason_text: LongText | None = None


class Reschedule(Request):
    site: Name
    start: Day
    reason_code: ReasonCode
    reason_text: LongText | None = None


class SignatureInput(Request):
    """The caller's own e-signature: they re-enter their password (21 CFR 11.200).

    Only one: co-signers sign in their own session (:class:`CosignInput`).
    """

    username: Name
    password: Password


class CosignInput(Request):
    """A co-signature in the co-signer's own session: password re-entry and the meaning
    they declare, which must be the step's (21 CFR 11.50, 11.200)."""

    password: Password
    meaning: SignatureMeaning


class SignatureView(Response):
    signer_id: str
    printed_name: str
    signed_at: datetime
    meaning: SignatureMeaning
    record_type: str
    record_id: str
    record_hash: str
    signature_hash: str
    manifestation: str


class EventRequest(Request):
    """A lifecycle step that is not a handoff: finish manufacturing, OOS, dispositions."""

    event: Literal[
        "complete_manufacturing", "report_oos", "remanufacture", "release_under_expanded_access"
    ]
    reason_code: ReasonCode | None = None
    reason_text: LongText | None = None
    signatures: Annotated[list[SignatureInput], Field(max_length=5)] = []


class CustodyRequest(Request):
    """A handoff as recorded at the bench: the scan, where, when, the temperature."""

    step: CustodyStep
    scanned: Scan
    typed: bool = False
    """The identifier was keyed in, so it must carry its check character."""
    organisation: Text
    place: Text
    at: EventTime
    temperature_c: Annotated[float, Field(ge=-273.15, le=100)] | None = None
    signatures: Annotated[list[SignatureInput], Field(max_length=5)] = []


class StepRequest(Request):
    """Release and infusion: a scan of the bag and the signatures, no custody details."""

    scanned: Scan
    typed: bool = False
    place: Text
    at: EventTime
    temperature_c: Annotated[float, Field(ge=-273.15, le=100)] | None = None
    signatures: Annotated[list[SignatureInput], Field(min_length=1, max_length=5)]


class StepView(Response):
    id: str
    order_id: str
    event: OrderEvent
    from_state: OrderState
    to_state: OrderState
    at: datetime
    actor_name: str
    role: Role
    reason_code: ReasonCode | None
    record_hash: str
    signatures: list[SignatureView]


class CustodyView(Response):
    id: int
    order_id: str
    step: CustodyStep
    actor_id: str
    actor_name: str
    role: Role
    organisation: str
    place: str
    at: datetime
    utc_offset_minutes: int
    temperature_c: float | None
    scanned: str
    accepted: bool
    refusal_reason: str | None


class CosignatureView(Response):
    """A signed step awaiting co-signature: what it is, who signed, until when."""

    id: str
    order_id: str
    coi: str
    event: OrderEvent
    meaning: SignatureMeaning
    required: int
    """Independent signatures the step needs."""
    requested_by: str
    """Printed name of the first signer."""
    signed_by: list[str]
    """The manifestation of each signature so far (21 CFR 11.50)."""
    step_id: str
    record_hash: str
    """SHA-256 of the step record every signature binds."""
    details: dict[str, str | int | float | bool | None]
    """The step as it will be taken: custody details or the reason."""
    created_at: datetime
    expires_at: datetime
    state: Literal["pending", "completed", "withdrawn", "expired"]


class StepResult(Response):
    order: OrderView
    step: StepView | None
    custody: CustodyView | None
    pending: CosignatureView | None = None
    """Set (with ``step`` and ``custody`` null) when the step awaits co-signature."""


class CosignatureList(Response):
    awaiting_you: list[CosignatureView]
    """Steps you may co-sign: your role and tenant, not signed by you yet."""
    yours: list[CosignatureView]
    """Steps you signed first that still await co-signature (you may withdraw them)."""


class CosignResult(Response):
    request: CosignatureView
    result: StepResult | None
    """The step taken, when yours was the last signature it needed."""


class NewQcResult(Request):
    test: Name
    result: Text
    specification: Text
    passed: bool
    tested_at: EventTime


class QcResultView(Response):
    id: int
    order_id: str
    test: str
    result: str
    specification: str
    passed: bool
    tested_at: datetime
    recorded_by: str


class NewShipment(Request):
    direction: Literal["to_site", "to_center"]
    courier: Text
    tracking: Text


class ShipmentView(Response):
    id: str
    order_id: str
    direction: Literal["to_site", "to_center"]
    courier: str
    tracking: str
    low_c: float | None
    high_c: float | None
    created_at: datetime
    logs: int
    excursions: int


class ExcursionView(Response):
    side: str
    start: datetime
    end: datetime
    minutes: float
    limit_c: float
    extreme_c: float
    ongoing: bool


class EpisodeView(Response):
    """Excursions close together in time: one event to review, one exception."""

    start: datetime
    end: datetime
    minutes: float
    minutes_outside: float
    excursions: int
    side: str
    """The side of the peak: ``above`` or ``below``."""
    limit_c: float
    peak_c: float
    """The reading farthest beyond its limit."""
    ongoing: bool


class TemperatureLogResult(Response):
    shipment: ShipmentView
    readings: int
    excursions: list[ExcursionView]
    episodes: list[EpisodeView]
    exceptions_raised: int
    """One per episode, at most ``max_exceptions_per_log``; the last sums up the rest."""


class ExceptionView(Response):
    id: int
    order_id: str
    kind: str
    detail: str
    raised_at: datetime
    raised_by: str
    closed_at: datetime | None
    closed_by: str | None
    closure_reason: str | None


class CloseException(Request):
    reason_code: ReasonCode
    reason_text: LongText


class AuditEntryView(Response):
    sequence: int
    timestamp: datetime
    actor_id: str
    actor_name: str
    role: Role
    action: str
    entity_type: str
    entity_id: str
    changes: list[tuple[str, str | int | float | bool | None, str | int | float | bool | None]]
    reason_code: str | None
    reason_text: str | None
    hash: str


class CountRow(Response):
    key: str
    count: int


class Aggregates(Response):
    """Counts for planners: no order ids, no identities."""

    orders: int
    by_state: list[CountRow]
    by_site: list[CountRow]
    by_market: list[CountRow]
    open_exceptions: int


class CapacityDay(Response):
    day: date
    capacity: int
    booked: int


class SiteCapacity(Response):
    site: str
    site_name: str
    days: list[CapacityDay]
