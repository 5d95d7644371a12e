"""Choosing the tag to deploy: pure, tags in, one tag (or a helpful error) out.

A fixed tag must exist; when it does not, the error names the existing tags nearest to
it. ``tagRegex`` takes the newest matching tag: by push time when the registry says
(ECR), else by semantic version when the tags are versions (``1.27.3``, ``v2.0``), else
the last in name order."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

SHOWN = 10


class NoSuchTag(ValueError):
    pass


@dataclass(frozen=True)
class Tag:
    name: str
    digest: str | None = None
    pushed_at: float | None = None  # epoch seconds, when the registry records it


def _version(name: str) -> Version | None:
    try:
        return Version(name)
    except InvalidVersion:
        return None


def nearby(tags: list[str], wanted: str) -> list[str]:
    """The tags closest to ``wanted``: similar spellings first, then its neighbours in
    version (or name) order."""
    close = difflib.get_close_matches(wanted, tags, n=5, cutoff=0.3)
    ordered = by_version(tags)
    key = _version(wanted)
    if key is not None:
        versions = [t for t in ordered if _version(t) is not None]
        below = [t for t in versions if _version(t) < key]  # type: ignore[operator]
        above = [t for t in versions if _version(t) > key]  # type: ignore[operator]
        close += below[-3:] + above[:3]
    out: list[str] = []
    for t in close + ordered:
        if t not in out:
            out.append(t)
    return out[:SHOWN]


def by_version(tags: list[str]) -> list[str]:
    """Oldest first: versions in version order, then the other tags by name."""
    versions = sorted((t for t in tags if _version(t) is not None),
                      key=lambda t: (_version(t), t))
    return versions + sorted(t for t in tags if _version(t) is None)


def fixed(tags: list[Tag], wanted: str, repository: str) -> Tag:
    for tag in tags:
        if tag.name == wanted:
            return tag
    names = [t.name for t in tags]
    if not names:
        raise NoSuchTag(f"{repository}: tag {wanted!r} does not exist: the repository has "
                        "no tags (push the image first)")
    raise NoSuchTag(f"{repository}: tag {wanted!r} does not exist; tags nearby: "
                    f"{', '.join(nearby(names, wanted))} ({len(names)} tag(s) in all)")


def newest(tags: list[Tag], pattern: str, repository: str) -> Tag:
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise NoSuchTag(f"tagRegex {pattern!r} is not a regular expression: {exc}") from None
    matching = [t for t in tags if regex.fullmatch(t.name)]
    if not matching:
        shown = ", ".join(by_version([t.name for t in tags])[-SHOWN:]) or "none"
        raise NoSuchTag(f"{repository}: no tag matches tagRegex {pattern!r}; newest tags: "
                        f"{shown}")
    if all(t.pushed_at is not None for t in matching):
        return max(matching, key=lambda t: (t.pushed_at or 0.0, t.name))
    last = by_version([t.name for t in matching])[-1]
    return next(t for t in matching if t.name == last)
