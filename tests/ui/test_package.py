"""The console works from `pip install` alone: the wheel holds its templates and static
files (nothing is fetched from a CDN; the pages reference only /ui/static/)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UI = ROOT / "manager" / "ui"


def test_the_wheel_holds_every_template_and_static_file(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "agent", "tasks", "manager", "sandbox",
                 "wire", "cli"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                    "--wheel-dir", str(tmp_path / "dist"), str(src)],
                   check=True, capture_output=True, timeout=110)
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {f"manager/ui/{p.relative_to(UI).as_posix()}"
              for folder in ("static", "templates") for p in (UI / folder).iterdir()}
    assert wanted and wanted <= names, sorted(wanted - names)


def test_pages_load_scripts_and_styles_only_from_the_console_itself() -> None:
    for template in (UI / "templates").glob("*.html"):
        text = template.read_text()
        for url in re.findall(r'(?:src|href)="([^"]+)"', text):
            assert not re.match(r"(https?:)?//", url), f"{template.name}: {url}"
        assert "<script>" not in text and " style=" not in text, template.name
