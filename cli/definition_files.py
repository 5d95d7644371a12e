"""Reading definition documents (services, environments, infrastructure definitions,
overrides) from a file or a folder: YAML with ``---`` between documents, or JSON.

Shared by ``delegate apply/diff`` (which send them to the manager) and ``delegate
validate --definitions DIR`` (which computes the effective inputs offline)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from cli.exitcodes import InputError

SUFFIXES = (".yaml", ".yml", ".json")


def files_of(target: Path) -> list[Path]:
    if target.is_dir():
        found = sorted(p for p in target.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
        if not found:
            raise InputError(f"{target}: no .yaml, .yml or .json file in it")
        return found
    if not target.is_file():
        raise InputError(f"{target}: no such file or folder")
    return [target]


def read_documents(target: Path) -> list[tuple[str, Any]]:
    """(where, document) for every document under ``target``, in file order; empty
    documents (a trailing ``---``) are skipped."""
    out: list[tuple[str, Any]] = []
    for path in files_of(target):
        try:
            docs = list(yaml.safe_load_all(path.read_text()))
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: cannot read it: "
                             f"{getattr(exc, 'strerror', None) or exc}") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark else str(path)
            raise InputError(f"{where}: not valid YAML or JSON: "
                             f"{getattr(exc, 'problem', exc)}") from None
        numbered = [d for d in docs if d is not None]
        for i, doc in enumerate(numbered):
            out.append((f"{path}" + (f" (document {i + 1})" if len(numbered) > 1 else ""),
                        doc))
    if not out:
        raise InputError(f"{target}: holds no document (kind, name, spec)")
    return out
