"""21 CFR Part 11 electronic signatures, bound to the record they sign.

A signed record must show the signer's printed name, the date and time and the meaning
of the signature (11.50), and the signature must be linked to its record so that it
cannot be copied to another one or survive an edit of it (11.70). An
:class:`ElectronicSignature` therefore stores the SHA-256 of the signed record's
canonical content (:mod:`cartnet.ledger.canonical`) and a *signature hash* over that
record hash, the signer, the meaning, the time, the record type and id: change any of
them, or present the signature with another record, and :func:`verify_signature` fails.

The signature hash is the SHA-256 of the canonical JSON of::

    {"format": "cartnet.e-signature/1", "meaning": ..., "printed_name": ...,
     "record_hash": ..., "record_id": ..., "record_type": ..., "signed_at":
     "YYYY-MM-DDTHH:MM:SS.ffffffZ", "signer_id": ...}

or, when the service passes a secret ``key``, its HMAC-SHA256 under that key: then a
person who can write to the database but does not hold the key cannot make a signature
that verifies. Checking the password is the service's job (:class:`PasswordCheck`);
:func:`sign` only accepts a passed, fresh :class:`Reauthentication` of the signer.

Some countries want several independent verifications at a custody step: a
:class:`SignaturePolicy` says per step and country how many signatures it needs and
who may co-sign (:class:`SignatureRule`: roles, and whether from another tenant), and
:func:`verification_problems` checks that they come from that many different people.

>>> from datetime import UTC, datetime
>>> from cartnet.ledger.roles import Actor, Role
>>> at = datetime(2026, 3, 2, 14, 5, 9, tzinfo=UTC)
>>> qa = Actor("u-017", "Jane Doe", Role.QA)
>>> batch = {"record_id": "B-0042", "coi": "CHG123426A1B2C3", "result": "pass"}
>>> sig = sign(Reauthentication("u-017", at, passed=True), qa, SignatureMeaning.APPROVAL,
...            "batch_release", "B-0042", batch, signed_at=at)
>>> sig.manifestation()
'Jane Doe (u-017), approval, 2026-03-02 14:05:09 UTC'
>>> verify_signature(sig, batch), verify_signature(sig, {**batch, "result": "fail"})
(True, False)
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from cartnet.ledger.canonical import canonical_json, is_hex_hash, sha256_hex
from cartnet.ledger.roles import Actor, Role

SIGNATURE_FORMAT = "cartnet.e-signature/1"
"""Tag hashed with every signature manifest, so a later layout can be told apart."""
REAUTHENTICATION_WINDOW = timedelta(minutes=5)
"""How long a password re-entry may precede the signature it authorises (our choice)."""
ANY_COUNTRY = "*"


class SignatureMeaning(StrEnum):
    """What the signer declares by signing (21 CFR 11.50(a)(3))."""

    REVIEW = "review"
    APPROVAL = "approval"
    RESPONSIBILITY = "responsibility"
    AUTHORSHIP = "authorship"


class SignatureRefusedError(ValueError):
    """A signature that may not be made: failed, stale or foreign re-authentication."""


@dataclass(frozen=True, slots=True)
class Reauthentication:
    """The result of a password re-entry, made by the service's :class:`PasswordCheck`."""

    user_id: str
    at: datetime
    passed: bool


class PasswordCheck(Protocol):
    """Checks a signer's password again at signing time (21 CFR 11.200(a)); the service's.

    Implementations compare against the stored password hash (argon2) and return a
    :class:`Reauthentication` with the time of the check; they never raise on a wrong
    password, they return ``passed=False``.
    """

    def reauthenticate(self, user_id: str, password: str) -> Reauthentication:
        """Whether ``password`` is ``user_id``'s password, now."""
        ...


@dataclass(frozen=True, slots=True)
class ElectronicSignature:
    """One signature: who (id and printed name), when (UTC), what it means, on which record.

    Build it with :func:`sign`; check it with :func:`verify_signature`.
    """

    signer_id: str
    printed_name: str
    signed_at: datetime
    meaning: SignatureMeaning
    record_type: str
    record_id: str
    record_hash: str
    signature_hash: str

    def __post_init__(self) -> None:
        for name in ("signer_id", "printed_name", "record_type", "record_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"signature: {name} must be non-empty text")
        if self.signed_at.tzinfo is None or self.signed_at.utcoffset() != timedelta(0):
            raise ValueError("signature: signed_at must be an aware datetime in UTC")
        if not isinstance(self.meaning, SignatureMeaning):
            raise ValueError(f"signature: meaning must be a SignatureMeaning, got {self.meaning!r}")
        for name in ("record_hash", "signature_hash"):
            if not is_hex_hash(getattr(self, name)):
                raise ValueError(f"signature: {name} must be 64 lower-case hex characters")

    def manifest(self) -> dict[str, object]:
        """What the signature hash covers: everything but the signature hash itself."""
        return {
            "format": SIGNATURE_FORMAT,
            "signer_id": self.signer_id,
            "printed_name": self.printed_name,
            "signed_at": self.signed_at,
            "meaning": self.meaning,
            "record_type": self.record_type,
            "record_id": self.record_id,
            "record_hash": self.record_hash,
        }

    def manifestation(self) -> str:
        """The human-readable line a signed record shows (21 CFR 11.50(b))."""
        when = self.signed_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"{self.printed_name} ({self.signer_id}), {self.meaning}, {when}"


def record_hash(record_content: Mapping[str, object]) -> str:
    """SHA-256 of a record's canonical content: what a signature binds to.

    Put the record's own id in its content: two records with the same content would
    otherwise share a hash.
    """
    return sha256_hex(record_content)


def _seal(manifest: Mapping[str, object], key: bytes | None) -> str:
    data = canonical_json(manifest)
    if key is None:
        return hashlib.sha256(data).hexdigest()
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def sign(
    reauthentication: Reauthentication,
    signer: Actor,
    meaning: SignatureMeaning,
    record_type: str,
    record_id: str,
    record_content: Mapping[str, object],
    *,
    signed_at: datetime | None = None,
    key: bytes | None = None,
    window: timedelta = REAUTHENTICATION_WINDOW,
) -> ElectronicSignature:
    """Sign a record for ``signer``, who has just re-entered the password.

    Refused (:class:`SignatureRefusedError`) unless ``reauthentication`` passed, is the
    signer's own, and was made at most ``window`` before ``signed_at`` (default: now,
    UTC) and not after it.
    """
    return sign_record_hash(
        reauthentication,
        signer,
        meaning,
        record_type,
        record_id,
        record_hash(record_content),
        signed_at=signed_at,
        key=key,
        window=window,
    )


def sign_record_hash(
    reauthentication: Reauthentication,
    signer: Actor,
    meaning: SignatureMeaning,
    record_type: str,
    record_id: str,
    content_hash: str,
    *,
    signed_at: datetime | None = None,
    key: bytes | None = None,
    window: timedelta = REAUTHENTICATION_WINDOW,
) -> ElectronicSignature:
    """:func:`sign` for a record known by its :func:`record_hash`: a co-signature of a
    step that is not written yet, whose content the first signature fixed."""
    moment = datetime.now(UTC) if signed_at is None else signed_at
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"signed_at {moment.isoformat()} has no time zone")
    moment = moment.astimezone(UTC)
    if not reauthentication.passed:
        raise SignatureRefusedError(f"{signer.name} ({signer.id}): password re-entry failed")
    if reauthentication.user_id != signer.id:
        raise SignatureRefusedError(
            f"the password was re-entered by {reauthentication.user_id!r}, not by the signer "
            f"{signer.id!r}; each person signs with their own password"
        )
    age = moment - reauthentication.at
    if age < timedelta(0):
        raise SignatureRefusedError("the password re-entry is dated after the signature")
    if age > window:
        raise SignatureRefusedError(
            f"the password was re-entered {age} before signing, more than {window}; enter it again"
        )
    draft = ElectronicSignature(
        signer_id=signer.id,
        printed_name=signer.name,
        signed_at=moment,
        meaning=meaning,
        record_type=record_type,
        record_id=record_id,
        record_hash=content_hash,
        signature_hash="0" * 64,
    )
    return dataclasses.replace(draft, signature_hash=_seal(draft.manifest(), key))


def verify_signature(
    sig: ElectronicSignature,
    record_content: Mapping[str, object],
    *,
    record_type: str | None = None,
    record_id: str | None = None,
    key: bytes | None = None,
) -> bool:
    """Whether ``sig`` was made on exactly this record content and is itself unaltered.

    False for another record's content, for any edited field of the record or of the
    signature, and (when given) for another record type or id. Pass the ``key`` the
    signature was made with.
    """
    if record_type is not None and sig.record_type != record_type:
        return False
    if record_id is not None and sig.record_id != record_id:
        return False
    if not hmac.compare_digest(sig.record_hash, record_hash(record_content)):
        return False
    return hmac.compare_digest(sig.signature_hash, _seal(sig.manifest(), key))


def seal_intact(sig: ElectronicSignature, *, key: bytes | None = None) -> bool:
    """Whether the signature itself is unaltered (signer, time, meaning, record, hash).

    Unlike :func:`verify_signature` this needs no record content, so a stored signature
    can be checked on its own; that it belongs to the record is a separate check of
    ``record_hash``.
    """
    return hmac.compare_digest(sig.signature_hash, _seal(sig.manifest(), key))


_COUNTRY = re.compile(r"[A-Z]{2}")

CENTER_STEPS = frozenset({"collect_apheresis", "ship_to_site", "receive_at_center", "infuse"})
"""Steps that happen at the order's treatment center; every other signed step happens at
its manufacturing site. A co-signer belongs to that tenant unless the rule says otherwise."""


def step_tenant(step: str) -> str:
    """Where ``step`` happens: ``"center"`` (the order's treatment center) or ``"site"``."""
    return "center" if step in CENTER_STEPS else "site"


@dataclass(frozen=True)
class SignatureRule:
    """What a signed step needs in one country: how many people, and who may co-sign.

    ``count``: independent signatures from different people. ``roles``: the roles a
    co-signer may hold; ``None`` means the roles that may take the step (the lifecycle
    table). ``other_tenants``: whether a co-signer may work for another tenant that can
    see the order (a courier, the manufacturing site); by default a co-signer works for
    the center or site where the step happens (:func:`step_tenant`).
    """

    count: int = 1
    roles: frozenset[Role] | None = None
    other_tenants: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise ValueError("count must be a whole number of at least 1")
        if self.roles is not None:
            if not self.roles:
                raise ValueError("roles must name at least one role (or be left out)")
            if Role.ADMIN in self.roles:
                raise ValueError("admin may not co-sign: administrators take no order steps")

    def cosigner_roles(self, step_roles: frozenset[Role]) -> frozenset[Role]:
        """The roles a co-signer may hold, given the roles that may take the step."""
        return step_roles if self.roles is None else self.roles


DEFAULT_RULE = SignatureRule()
"""One signature; were more configured without roles: the step's roles, same tenant."""


def _rule(value: object, where: str) -> SignatureRule:
    """A rule from a count or ``{count, roles, other_tenants}`` (the configuration shape)."""
    if isinstance(value, SignatureRule):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        data: Mapping[str, object] = {"count": value}
    elif isinstance(value, Mapping):
        data = value
    else:
        raise ValueError(f"{where}: give a count or {{count, roles, other_tenants}}")
    unknown = sorted(set(data) - {"count", "roles", "other_tenants"})
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r}; keys: count, roles, other_tenants")
    roles_given = data.get("roles")
    roles: frozenset[Role] | None = None
    if roles_given is not None:
        if isinstance(roles_given, str) or not isinstance(roles_given, Sequence | frozenset | set):
            raise ValueError(f"{where}: roles must be a list of roles")
        try:
            roles = frozenset(Role(str(r)) for r in roles_given)
        except ValueError:
            names = ", ".join(r.value for r in Role if r is not Role.ADMIN)
            raise ValueError(
                f"{where}: unknown role in {list(roles_given)!r}; roles: {names}"
            ) from None
    other = data.get("other_tenants", False)
    if not isinstance(other, bool):
        raise ValueError(f"{where}: other_tenants must be true or false")
    try:
        return SignatureRule(data.get("count", 1), roles, other)  # type: ignore[arg-type]
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None


@dataclass(frozen=True)
class SignaturePolicy:
    """Who must sign a step, per country (configuration): count, co-signer roles, tenancy.

    ``rules`` maps ``(step, country)`` to a :class:`SignatureRule` (or a plain count);
    ``country`` is an ISO 3166-1 alpha-2 code or ``"*"`` for every country. A step's own
    country rule wins over its ``"*"`` rule, which wins over ``default``. Steps are the
    text values of order events (``receive_at_site``, ``release``).

    >>> policy = SignaturePolicy.from_mapping({"receive_at_site": {"DE": 2}})
    >>> policy.required("receive_at_site", "de"), policy.required("receive_at_site", "FR")
    (2, 1)
    >>> policy = SignaturePolicy.from_mapping(
    ...     {"infuse": {"DE": {"count": 2, "roles": ["center_coordinator"]}}})
    >>> sorted(policy.rule("infuse", "DE").roles), policy.rule("infuse", "DE").other_tenants
    ([<Role.CENTER_COORDINATOR: 'center_coordinator'>], False)
    """

    rules: Mapping[tuple[str, str], SignatureRule | int] = field(default_factory=dict)
    default: int = 1

    def __post_init__(self) -> None:
        if self.default < 1:
            raise ValueError(f"default signature count must be at least 1, got {self.default}")
        checked: dict[tuple[str, str], SignatureRule] = {}
        for (step, country), value in self.rules.items():
            where = f"signature policy, step {step!r}, country {country!r}"
            if not step.strip():
                raise ValueError(f"{where}: step must not be empty")
            if country != ANY_COUNTRY and not _COUNTRY.fullmatch(country):
                raise ValueError(f"{where}: use an ISO 3166-1 alpha-2 code such as 'DE', or '*'")
            checked[(step, country)] = _rule(value, where)
        object.__setattr__(self, "rules", checked)

    @classmethod
    def from_mapping(
        cls, steps: Mapping[str, Mapping[str, object]], *, default: int = 1
    ) -> SignaturePolicy:
        """A policy from ``{step: {country or "*": count or {count, roles, other_tenants}}}``,
        the shape of the configuration file's ``signature_rules``."""
        rules = {
            (step, country.upper() if country != ANY_COUNTRY else country): value
            for step, countries in steps.items()
            for country, value in countries.items()
        }
        return cls(rules, default=default)  # type: ignore[arg-type]

    def rule(self, step: str, country: str) -> SignatureRule:
        """The rule of ``step`` in ``country`` (case-insensitive code)."""
        code = country.upper()
        found = self.rules.get((step, code)) or self.rules.get((step, ANY_COUNTRY))
        if found is None:
            return SignatureRule(self.default)
        return found  # type: ignore[return-value]

    def required(self, step: str, country: str) -> int:
        """Signatures ``step`` needs in ``country`` (case-insensitive code)."""
        return self.rule(step, country).count


DEFAULT_SIGNATURE_POLICY = SignaturePolicy()
"""One signature per signed step everywhere; countries that want more are configured."""


def required_signatures(
    step: str, country: str, policy: SignaturePolicy = DEFAULT_SIGNATURE_POLICY
) -> int:
    """Independent signatures ``step`` needs in ``country`` under ``policy``."""
    return policy.required(step, country)


def distinct_signers(signatures: Sequence[ElectronicSignature]) -> int:
    """How many different people signed: one person signing twice counts once."""
    return len({sig.signer_id for sig in signatures})


def verification_problems(
    signatures: Sequence[ElectronicSignature],
    record_content: Mapping[str, object],
    *,
    required: int,
    key: bytes | None = None,
) -> list[str]:
    """What keeps ``signatures`` from being ``required`` independent verifications.

    Each signature must verify against ``record_content``; the valid ones must come
    from ``required`` different people. Empty when the step is sufficiently signed.
    """
    problems = [
        f"signature of {sig.manifestation()} does not match this record"
        for sig in signatures
        if not verify_signature(sig, record_content, key=key)
    ]
    valid = [sig for sig in signatures if verify_signature(sig, record_content, key=key)]
    people = distinct_signers(valid)
    if people < required:
        counts = Counter(sig.printed_name + f" ({sig.signer_id})" for sig in valid)
        twice = [f"{name} signed {n} times" for name, n in sorted(counts.items()) if n > 1]
        note = f" ({'; '.join(twice)}; one person counts once)" if twice else ""
        problems.append(
            f"needs {required} independent signature{'s' if required != 1 else ''} from "
            f"different people, has {people}{note}"
        )
    return problems
