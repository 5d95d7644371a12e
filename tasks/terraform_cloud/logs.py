"""Following a plan's or an apply's log while it runs.

The API hands out a log URL per phase; the log only grows, so each read prints what is
new since the last one. A line is printed only once its newline has arrived (or at the
end), so masking always sees whole lines."""

from __future__ import annotations

import json
from collections import deque

from agent.context import UnitLog
from tasks.terraform_cloud.api import TerraformCloudApi, TerraformCloudError

TAIL = 20


def readable(line: str) -> str:
    """The line as a person reads it: archived logs are framed by STX/ETX, and newer
    Terraform versions write structured JSON lines whose ``@message`` is the text."""
    line = line.replace("\x02", "").replace("\x03", "")
    if line.startswith("{") and '"@message"' in line:
        try:
            message = json.loads(line).get("@message")
        except ValueError:
            return line
        if isinstance(message, str):
            return message
    return line


class LogFollower:
    def __init__(self, api: TerraformCloudApi, phase_path: str, log: UnitLog,
                 phase: str) -> None:
        self._api = api
        self._path = phase_path
        self._log = log
        self._phase = phase
        self._offset = 0
        self._url: str | None = None
        self.tail: deque[str] = deque(maxlen=TAIL)

    async def _log_url(self) -> str | None:
        doc = await self._api.call("GET", self._path, what=f"reading the {self._phase}")
        url = ((doc.get("data") or {}).get("attributes") or {}).get("log-read-url")
        return url if isinstance(url, str) and url else None

    async def poll(self, *, final: bool = False) -> None:
        """Print the log's new lines (all of them, the last partial one included, when
        ``final``). A log that cannot be read yet is tried again on the next poll."""
        if self._url is None:
            self._url = await self._log_url()
            if self._url is None:
                return
        try:
            text = await self._api.text(self._url, what=f"reading the {self._phase} log")
        except TerraformCloudError:
            self._url = None  # the URL may have expired: ask for a new one next time
            return
        fresh = text[self._offset:]
        end = len(fresh) if final else fresh.rfind("\n") + 1
        for raw in fresh[:end].splitlines():
            line = readable(raw)
            if not line:
                continue
            self._log.info(line)
            self.tail.append(line)
        self._offset += end

    def tail_text(self) -> str:
        return (" Its last lines:\n" + "\n".join(self.tail)) if self.tail else ""
