"""The manifests package's one exception tree.

``ManifestError`` is one problem, located as precisely as we can: the file (a store path,
``s3://...``, ``git:...`` or ``inline serviceDefinition``), the line and column when the
text is available, and the field path inside the request. ``ManifestErrors`` carries
several problems found in one pass (validation reports every bad field, not the first).
"""

from __future__ import annotations

from collections.abc import Sequence


class ManifestError(Exception):
    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 column: int | None = None, path: str | None = None) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.path = path
        super().__init__(self._render())

    def location(self) -> str:
        where = self.file or ""
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return where

    def _render(self) -> str:
        parts = [p for p in (self.location(), self.path) if p]
        prefix = ": ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message


class ManifestErrors(ManifestError):
    """Several problems at once; ``str()`` lists them one per line."""

    def __init__(self, errors: Sequence[ManifestError]) -> None:
        self.errors = list(errors)
        first = self.errors[0] if self.errors else None
        super().__init__(
            "\n".join(str(e) for e in self.errors),
            file=first.file if first else None,
        )

    def _render(self) -> str:
        return self.message


def raise_all(errors: Sequence[ManifestError]) -> None:
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ManifestErrors(errors)
