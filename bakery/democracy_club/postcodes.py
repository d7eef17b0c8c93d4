"""UK postcodes as Democracy Club's lookup reads them."""

from __future__ import annotations

import re


def normalise_postcode(text: str) -> str:
    """'sw1a1aa' / ' SW1A  1AA ' -> 'SW1A 1AA' (upper case, one space before the inward code)."""
    squashed = "".join(text.split()).upper()
    if len(squashed) < 5:
        return squashed
    return f"{squashed[:-3]} {squashed[-3:]}"


POSTCODE = re.compile(r"[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}")


def is_postcode(normal: str) -> bool:
    """A normalised full UK postcode: `CB1 9FN`, `SW1A 1AA`, `M1 1AE` (ASCII only)."""
    return normal.isascii() and POSTCODE.fullmatch(normal) is not None
