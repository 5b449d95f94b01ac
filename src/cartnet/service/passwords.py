"""What a new password must be, after NIST SP 800-63B-4 (3.1.1.2, password verifiers).

Length counts (at least ``password_min_length``, 15 by default, up to 200); there are
no composition rules and no hints. A password is refused when it is on a list of
commonly used passwords, contains the user's own username or a part of their printed
name, or has a control character (which the login form refuses too, so such a
password could never be used).

The list (``cartnet/data/common-passwords.txt.gz``) holds the 20,000 most common
passwords compiled by Royce Williams from breach corpora, lowercased, as Django ships
it (``django/contrib/auth/common-passwords.txt.gz``, BSD licence; the source is
https://gist.github.com/roycewilliams/226886fd01572964e1431ac8afc999ce).
"""

from __future__ import annotations

import gzip
import unicodedata
from functools import cache
from importlib.resources import files

from cartnet.service.errors import Invalid

MAX_LENGTH = 200
NAME_PART = 4
"""Parts of a printed name at least this long may not appear in the password."""


@cache
def common_passwords() -> frozenset[str]:
    data = files("cartnet.data").joinpath("common-passwords.txt.gz").read_bytes()
    return frozenset(gzip.decompress(data).decode().split())


def has_control_character(text: str) -> bool:
    return any(unicodedata.category(c) == "Cc" for c in text)


def check_password(
    password: str, *, username: str, printed_name: str, min_length: int, field: str = "password"
) -> None:
    """Refuse (:class:`Invalid`, naming ``field``) a password that breaks the policy."""
    if has_control_character(password):
        raise Invalid("a password may not contain control characters", field=field)
    if len(password) < min_length:
        raise Invalid(
            f"a password needs at least {min_length} characters (got {len(password)}); "
            "a few unrelated words make a long one that is easy to remember",
            field=field,
        )
    if len(password) > MAX_LENGTH:
        raise Invalid(f"a password has at most {MAX_LENGTH} characters", field=field)
    folded = password.casefold()
    if folded in common_passwords() or folded.strip() in common_passwords():
        raise Invalid("this password is on a list of commonly used passwords", field=field)
    if username.casefold() in folded:
        raise Invalid("a password may not contain the username", field=field)
    for part in printed_name.casefold().replace("-", " ").split():
        if len(part) >= NAME_PART and part in folded:
            raise Invalid("a password may not contain the person's name", field=field)
