"""Configuration of the service: database, network, identifiers, keys and limits.

Read from ``CARTNET_*`` environment variables (:meth:`ServiceSettings.from_env`) or
given in code. Keys are secrets: the patient-identity key opens every patient's
identity, so it lives in configuration (an environment variable or a file with mode
0600), never in the database it protects.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cartnet.fielderrors import field_message, field_path
from cartnet.identity import FacilityId, TissueEstablishmentCode
from cartnet.identity.sec import check_isbt_product_code
from cartnet.ledger.lifecycle import TRANSITIONS
from cartnet.ledger.signatures import SignaturePolicy
from cartnet.yamlfile import (
    FileProblem,
    InputFileError,
    line_of,
    load_mapping,
    node_tree,
    read_text,
)

PREFIX = "CARTNET_"


def new_key() -> str:
    """A fresh 32-byte key in URL-safe base64 (the Fernet key format)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


class ServiceSettings(BaseModel):
    """Everything the service needs to run; defaults suit one machine and SQLite."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    database_url: str | None = None
    """``None``: ``$CARTNET_DATABASE_URL`` or the SQLite file in the user data directory."""
    network: str = "kymriah-2020"
    """A packaged network name or a network file."""
    scenario: str | None = None
    """A scenario of the network to apply (kymriah-2020 without one is the network after
    the July 2020 EMA approvals)."""
    fin: str = "W9999"
    """ISBT 128 Facility Identification Number of the issuing organisation (CoI, DIN)."""
    patient_key: str
    """Fernet key (URL-safe base64, 32 bytes) that encrypts patient identity at rest."""
    signing_key: str
    """Key of the HMAC that seals e-signatures."""
    token_hours: Annotated[float, Field(gt=0, le=24 * 30)] = 12.0
    max_upload_bytes: Annotated[int, Field(ge=1024)] = 2_000_000
    signature_rules: Mapping[str, Mapping[str, int | Mapping[str, object]]] = {}
    """Who signs each step, per country: a count (``{"release": {"DE": 2}}``) or
    ``{count, roles, other_tenants}`` naming the roles a co-signer may hold and whether
    they may work for another tenant; unset: one signature; co-signers (when a count
    asks for them) hold a role that may take the step and work where it happens."""
    cosignature_hours: Annotated[float, Field(gt=0, le=24 * 7)] = 4.0
    """A step awaiting co-signature is refused this long after its first signature."""
    product_codes: Mapping[str, str] = {}
    """ISBT 128 product code (8 characters) per product id, for the Single European Code."""
    default_product_code: str = "S9999V00"
    """Used for products without a configured code (a placeholder, not an ICCBBA code)."""
    tissue_establishments: Mapping[str, str] = {}
    """EU tissue establishment code (8 characters) per manufacturing site id, for the SEC."""
    shelf_life_days: Annotated[int, Field(ge=1)] = 270
    """Expiry on the label: days after QA release (assumption: Kymriah's 9 months)."""
    session_idle_minutes: Annotated[float, Field(gt=0, le=24 * 60)] = 30.0
    """A portal session ends after this long without a request (log in again)."""
    session_hours: Annotated[float, Field(gt=0, le=24 * 7)] = 12.0
    """A portal session ends this long after login, however active."""
    secure_cookies: bool | None = None
    """Mark the session cookie ``Secure``; ``None``: when the request came over HTTPS."""
    job_slots: Annotated[int, Field(ge=0, le=16)] = 1
    """Planning jobs each server process runs at a time (0: this process runs none)."""
    job_workers: Annotated[int, Field(ge=1, le=256)] | None = None
    """Processes for a job's twin replications; ``None``: one per core."""
    scheduler: str | None = None
    """A Dask scheduler (``tcp://host:8786``) to run the jobs' replications on instead."""
    tower_qa_read: bool = False
    """Let QA users open the control tower (the whole network, read-only: they still act
    only on their own site's exceptions). Off: planners and logistics only."""
    tower_slot_wait_days: Annotated[int, Field(ge=0, le=365)] = 7
    """An enrolled order waiting longer than this for a manufacturing slot is at risk."""
    tower_late_days: Annotated[int, Field(ge=0, le=60)] = 1
    """An order this many days behind a planned date of its chain is late against plan."""
    tower_shipment_grace_hours: Annotated[float, Field(ge=0, le=24 * 14)] = 12.0
    """A shipment is overdue this long after its lane's mean transit time has passed."""
    tower_stability_warning_hours: Annotated[float, Field(ge=0, le=24 * 30)] = 12.0
    """Fresh starting material this close to the end of its stability window is at risk."""
    tower_expiry_warning_days: Annotated[int, Field(ge=0, le=365)] = 14
    """A released product this close to its expiry, not yet infused, is at risk."""
    # --- accounts: logins, throttling, password policy (docs/background/orchestration.md)
    hashing_slots: Annotated[int, Field(ge=1, le=256)] | None = None
    """Password hashes checked at once per process; ``None``: one per core. A login past
    them is refused with 429 and ``Retry-After`` instead of queueing (argon2 needs
    memory and a core for tens of milliseconds each)."""
    login_backoff_after: Annotated[int, Field(ge=1)] = 3
    """Failed logins of one account before each further try must wait (exponential)."""
    login_backoff_seconds: Annotated[float, Field(gt=0, le=3600)] = 1.0
    """The first wait; it doubles with every further failure, up to the lockout."""
    login_lockout_after: Annotated[int, Field(ge=1, le=100)] = 10
    """Failed logins (or signature passwords) of one account that lock it
    (NIST SP 800-63B allows at most 100)."""
    login_lockout_minutes: Annotated[float, Field(gt=0, le=24 * 60)] = 15.0
    """How long a lockout lasts unless an administrator lifts it sooner."""
    address_backoff_after: Annotated[int, Field(ge=1)] = 10
    """Failed logins from one client address before its tries must wait (exponential)."""
    address_lockout_after: Annotated[int, Field(ge=1)] = 50
    """Failed logins from one client address that lock it out for the lockout time."""
    password_min_length: Annotated[int, Field(ge=8, le=64)] = 15
    """NIST SP 800-63B-4 3.1.1.2: at least 15 characters for a password used alone."""
    password_max_age_days: Annotated[float, Field(gt=0)] | None = None
    """Expire passwords this many days after they were set; ``None``: never (NIST SP
    800-63B advises against periodic changes; some sites' procedures require them)."""
    enrolment_hours: Annotated[float, Field(gt=0, le=24 * 30)] = 72.0
    """How long a new account's (or a reset's) one-time enrolment token stays valid."""
    role_grant_approval: bool = True
    """Granting a GxP role (QA, site operator, center coordinator) needs a second
    administrator's approval before the account can log in with it."""
    clock_skew_minutes: Annotated[float, Field(ge=0, le=24 * 60)] = 10.0
    """How far ahead of the server clock an event time may be (the bench clock's error)."""
    excursion_episode_gap_minutes: Annotated[float, Field(ge=0, le=7 * 24 * 60)] = 60.0
    """Excursions of one temperature log less than this far apart are one episode, and
    raise one exception: a logger flickering across a limit is one event to review."""
    max_exceptions_per_log: Annotated[int, Field(ge=1, le=1000)] = 10
    """At most this many exceptions from one temperature log; the last one sums up the
    episodes beyond it."""
    refused_scans_per_order: Annotated[int, Field(ge=1, le=10_000)] = 5
    """Refused CoI scans recorded per order within ``refused_scan_window_minutes``; more
    are answered ``429`` and not recorded again."""
    refused_scans_per_user: Annotated[int, Field(ge=1, le=10_000)] = 20
    """Refused CoI scans recorded per user within ``refused_scan_window_minutes``."""
    refused_scan_window_minutes: Annotated[float, Field(gt=0, le=7 * 24 * 60)] = 60.0

    @field_validator("fin")
    @classmethod
    def _fin(cls, value: str) -> str:
        FacilityId.parse(value)
        return value.strip()

    @field_validator("patient_key")
    @classmethod
    def _fernet_key(cls, value: str) -> str:
        try:
            raw = base64.urlsafe_b64decode(value.encode())
        except ValueError:
            raise ValueError(
                "must be 32 random bytes in URL-safe base64, as "
                "cryptography.fernet.Fernet.generate_key() makes them"
            ) from None
        if len(raw) != 32:
            raise ValueError(f"must encode 32 bytes, got {len(raw)}")
        return value

    @field_validator("signature_rules")
    @classmethod
    def _signature_rules(
        cls, value: Mapping[str, Mapping[str, int | Mapping[str, object]]]
    ) -> Mapping[str, Mapping[str, int | Mapping[str, object]]]:
        signed = sorted({t.event.value for t in TRANSITIONS if t.needs_signature})
        for step in value:
            if step not in signed:
                raise ValueError(
                    f"{step!r} is not a signed step; signed steps: {', '.join(signed)}"
                )
        SignaturePolicy.from_mapping(value)
        return value

    @field_validator("tissue_establishments")
    @classmethod
    def _tissue_establishments(cls, value: Mapping[str, str]) -> Mapping[str, str]:
        for site, code in value.items():
            try:
                TissueEstablishmentCode.parse(code)
            except ValueError as err:
                raise ValueError(f"site {site!r}: {err}") from None
        return value

    @field_validator("product_codes")
    @classmethod
    def _product_codes(cls, value: Mapping[str, str]) -> Mapping[str, str]:
        for product, code in value.items():
            try:
                check_isbt_product_code(code)
            except ValueError as err:
                raise ValueError(f"product {product!r}: {err}") from None
        return value

    @field_validator("default_product_code")
    @classmethod
    def _default_product_code(cls, value: str) -> str:
        check_isbt_product_code(value)
        return value

    @property
    def facility(self) -> FacilityId:
        return FacilityId.parse(self.fin)

    @property
    def token_lifetime(self) -> timedelta:
        return timedelta(hours=self.token_hours)

    @property
    def session_idle(self) -> timedelta:
        return timedelta(minutes=self.session_idle_minutes)

    @property
    def session_lifetime(self) -> timedelta:
        return timedelta(hours=self.session_hours)

    @property
    def cosignature_lifetime(self) -> timedelta:
        return timedelta(hours=self.cosignature_hours)

    @property
    def lockout(self) -> timedelta:
        return timedelta(minutes=self.login_lockout_minutes)

    @property
    def enrolment_lifetime(self) -> timedelta:
        return timedelta(hours=self.enrolment_hours)

    @property
    def clock_skew(self) -> timedelta:
        return timedelta(minutes=self.clock_skew_minutes)

    @property
    def refused_scan_window(self) -> timedelta:
        return timedelta(minutes=self.refused_scan_window_minutes)

    @property
    def signature_policy(self) -> SignaturePolicy:
        return SignaturePolicy.from_mapping(self.signature_rules)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        key_dir: Path | None = None,
        config: Path | None = None,
        **given: object,
    ) -> ServiceSettings:
        """Settings from ``CARTNET_*`` variables, overridden by ``given``.

        A ``config`` file (or ``$CARTNET_CONFIG``) comes first, the environment overrides
        it, ``given`` overrides both. Without ``CARTNET_PATIENT_KEY`` /
        ``CARTNET_SIGNING_KEY`` the keys are read from files in ``key_dir`` (the user data
        directory), made on first start with mode 0600: a single-machine installation
        works with nothing to configure, and its
        keys survive restarts.
        """
        env = os.environ if environ is None else environ
        path = config or (Path(env[PREFIX + "CONFIG"]) if env.get(PREFIX + "CONFIG") else None)
        values: dict[str, object] = {} if path is None else read_config(path)
        for name in ("database_url", "network", "scenario", "fin", "token_hours"):
            text = env.get(PREFIX + name.upper())
            if text:
                values[name] = text
        for name in ("patient_key", "signing_key"):
            text = env.get(PREFIX + name.upper())
            if text:
                values[name] = text
            elif key_dir is not None and name not in given:
                values[name] = _key_file(key_dir / f"{name.replace('_', '-')}.txt")
        values.update({k: v for k, v in given.items() if v is not None})
        return cls.model_validate(values)


def existing_key(name: str, key_dir: Path, environ: Mapping[str, str] | None = None) -> str | None:
    """A key from ``CARTNET_<NAME>`` or its file, if either exists; never makes one."""
    env = os.environ if environ is None else environ
    text = env.get(PREFIX + name.upper())
    if text:
        return text
    path = key_dir / f"{name.replace('_', '-')}.txt"
    return path.read_text().strip() if path.exists() else None


def _key_file(path: Path) -> str:
    """The key kept in ``path``; a new one is written (mode 0600) if there is none."""
    if path.exists():
        return path.read_text().strip()
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.parent.chmod(0o700)  # the user data directory: the owner's only
    key = new_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


class ConfigFileError(InputFileError):
    """A service configuration file that cannot be used; every problem with its line."""


CONFIG_FIELDS = frozenset(ServiceSettings.model_fields) - {"patient_key", "signing_key"}
"""What a configuration file may set: everything but the keys, which are secrets."""


def read_config(path: Path) -> dict[str, object]:
    """The settings in a YAML file, checked; :class:`ConfigFileError` names file and line."""
    name = str(path)
    text = read_text(path, ConfigFileError)
    data = load_mapping(text, name, "service configuration", ConfigFileError)
    root = node_tree(text)
    problems = [
        FileProblem(
            name,
            line_of(root, key),
            key,
            "keys belong in CARTNET_PATIENT_KEY / CARTNET_SIGNING_KEY or the key "
            "files, not in a configuration file"
            if key in ("patient_key", "signing_key")
            else "unknown setting",
        )
        for key in data
        if key not in CONFIG_FIELDS
    ]
    if not problems:
        dummy = {"patient_key": new_key(), "signing_key": new_key()}
        try:
            ServiceSettings.model_validate({**data, **dummy})
        except ValidationError as err:
            for e in err.errors():
                where = field_path(e["loc"])
                problems.append(FileProblem(name, line_of(root, where), where, field_message(e)))
    if problems:
        raise ConfigFileError(problems)
    return data
