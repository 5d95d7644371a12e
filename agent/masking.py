"""Replacing secret values in task logs before they leave the process.

Each secret is expanded into the forms it can take in output: itself, each line of a
multi-line secret, its JSON-escaped form, and standard and URL-safe base64 with and
without padding. Log text is masked line by line after a stream has joined partial
writes (see :class:`agent.logs.UnitLog`), so a secret split across two calls is caught.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable

MASK = "**************"
# Shorter values would mask half the log ("a", "1", "true"): never treat them as secrets.
MIN_SECRET_LENGTH = 4


def secret_forms(secret: str) -> set[str]:
    forms: set[str] = set()
    if len(secret) < MIN_SECRET_LENGTH:
        return forms
    candidates = {secret, secret.strip()}
    lines = [ln.strip() for ln in secret.splitlines()]
    candidates.update(ln for ln in lines if ln)
    for value in list(candidates):
        raw = value.encode()
        std = base64.b64encode(raw).decode()
        url = base64.urlsafe_b64encode(raw).decode()
        forms.update({value, json.dumps(value)[1:-1], std, std.rstrip("="), url,
                      url.rstrip("=")})
    # JSON-escaped whole secret (a multi-line value becomes one line with \n in it).
    forms.add(json.dumps(secret)[1:-1])
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


class Masker:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        for s in secrets:
            if s:
                self._forms |= secret_forms(s)
        # Longest first, so a form that contains another is replaced whole.
        ordered = sorted(self._forms, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)

    @property
    def longest(self) -> int:
        return max((len(f) for f in self._forms), default=0)
