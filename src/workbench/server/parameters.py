"""The parameters every Watson v3 route shares: `version`, the caller, `X-Watson-Metadata`, `Accept-Language`.

Each is an `Annotated` type a route names in its signature, so FastAPI checks it (a bad one is
Watson's 400) and documents it in `/openapi.json` the same way on every path.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated
from urllib.parse import unquote

from fastapi import Depends, Header, Query
from pydantic import AfterValidator

from ..core.errors import InvalidRequest
from ..service.workbench import Workbench
from .auth import caller

VERSION_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
CUSTOMER_ID_PATTERN = re.compile(r"^\w+$")  # Watson: letters, digits and _ (any script)


def calendar_date(version: str) -> str:
    """A `version` that is a real date (2018-03-19), not only shaped like one (9999-99-99): else a 400."""
    date.fromisoformat(version)
    return version


def customer_id(metadata: str | None) -> str | None:
    """`customer_id` from an `X-Watson-Metadata: customer_id=...` header (URL-encoded), checked."""
    for item in (metadata or "").split(";"):
        name, sep, value = item.strip().partition("=")
        if sep and name.strip() == "customer_id":
            value = unquote(value.strip())
            if not CUSTOMER_ID_PATTERN.match(value):
                raise InvalidRequest("customer_id may hold only letters, digits and underscores")
            return value
    return None


Version = Annotated[
    str,
    Query(pattern=VERSION_PATTERN, description="API version date, YYYY-MM-DD (e.g. 2018-03-19)"),
    AfterValidator(calendar_date),
]
Caller = Annotated[Workbench, Depends(caller)]
Metadata = Annotated[str | None, Header(alias="X-Watson-Metadata", description="customer_id={id}")]
AcceptLanguage = Annotated[
    str | None,
    Header(
        alias="Accept-Language",
        description="Language of the built-in classes' names: en (default), ar, de, es, fr, it, ja, ko, pt-br, zh-cn, "
        "zh-tw, or an HTTP language list (ja-JP, zh-Hant, fr-CH, fr;q=0.9), mapped to the nearest; another "
        "language is a 400. Custom class names are never translated.",
    ),
]
