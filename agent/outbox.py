"""Per-task sequenced messages, kept until the manager acks them and resent after a reconnect.

Every message a task produces gets the next ``seq`` of that task (1, 2, ...). Messages
stay here until the manager acks them (acks are cumulative). Memory is bounded: past
``memory_limit`` bytes, new messages of a task go to a spill file in ``spill_dir`` and
are read back, in order, as acks free memory. Sending is fair: each round takes a few
messages from every task that has unsent ones, so one task flooding its log does not
delay another task's result.

This module does no I/O with the manager; the session asks it what to send.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from wire.protocol import LogPayload, ResultPayload, TaskMessage, TaskPayload


@dataclass
class _TaskQueue:
    task_id: str
    next_seq: int = 1
    acked: int = 0
    sent: int = 0  # highest seq sent on the current connection
    # (seq, JSON text, log lines in it)
    memory: deque[tuple[int, str, int]] = field(default_factory=deque)
    spill: IO[str] | None = None
    spill_path: Path | None = None
    spill_read_pos: int = 0
    spilled: int = 0  # messages in the spill file not yet read back
    spilled_lines: int = 0
    finished: bool = False  # its result message has been produced

    @property
    def last_produced(self) -> int:
        return self.next_seq - 1


class Outbox:
    def __init__(self, *, memory_limit: int = 32 << 20, spill_dir: Path | None = None,
                 batch_per_task: int = 8) -> None:
        self._tasks: dict[str, _TaskQueue] = {}
        self._memory_limit = memory_limit
        self._memory_bytes = 0
        self._spill_dir = spill_dir
        self._batch = batch_per_task
        self._unsent = asyncio.Event()
        self._all_acked = asyncio.Event()
        self._all_acked.set()
        self.spilled_total = 0
        self.dropped = 0
        # Log lines: confirmed by the manager, and given up (the manager no longer wanted
        # them). Buffered lines are counted from the queues on demand.
        self.lines_acked = 0
        self.lines_dropped = 0

    # ------------------------------------------------------------------ producing

    def open(self, task_id: str, *, acked: int = 0) -> None:
        if task_id not in self._tasks:
            self._tasks[task_id] = _TaskQueue(task_id, next_seq=acked + 1, acked=acked,
                                              sent=acked)

    def add(self, task_id: str, payload: TaskPayload) -> int:
        q = self._tasks.get(task_id)
        if q is None:
            self.open(task_id)
            q = self._tasks[task_id]
        seq = q.next_seq
        q.next_seq += 1
        if isinstance(payload, ResultPayload):
            q.finished = True
        text = TaskMessage(task_id=task_id, seq=seq, payload=payload).model_dump_json()
        lines = len(payload.lines) if isinstance(payload, LogPayload) else 0
        if q.spilled or self._memory_bytes + len(text) > self._memory_limit:
            self._spill(q, seq, text, lines)
        else:
            q.memory.append((seq, text, lines))
            self._memory_bytes += len(text)
        self._all_acked.clear()
        self._unsent.set()
        return seq

    def _spill(self, q: _TaskQueue, seq: int, text: str, lines: int) -> None:
        if q.spill is None:
            directory = self._spill_dir or Path(tempfile.gettempdir())
            directory.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f"outbox-{q.task_id[:16]}-", suffix=".jsonl",
                                        dir=directory)
            os.close(fd)
            q.spill_path = Path(name)
            q.spill = q.spill_path.open("a+", encoding="utf-8")
        q.spill.write(f"{seq} {lines} {text}\n")
        q.spilled += 1
        q.spilled_lines += lines
        self.spilled_total += 1

    def _refill(self, q: _TaskQueue) -> None:
        if not q.spilled or q.spill is None:
            return
        q.spill.flush()
        q.spill.seek(q.spill_read_pos)
        while q.spilled and self._memory_bytes < self._memory_limit:
            line = q.spill.readline()
            if not line:
                break
            seq_text, count_text, text = line.rstrip("\n").split(" ", 2)
            seq, count = int(seq_text), int(count_text)
            q.spilled -= 1
            q.spilled_lines -= count
            if seq <= q.acked:  # acked while still on disk
                self.lines_acked += count
                continue
            q.memory.append((seq, text, count))
            self._memory_bytes += len(text)
        q.spill_read_pos = q.spill.tell()
        q.spill.seek(0, os.SEEK_END)
        if not q.spilled:
            self._close_spill(q)

    @staticmethod
    def _close_spill(q: _TaskQueue) -> None:
        if q.spill is not None:
            q.spill.close()
            q.spill = None
        if q.spill_path is not None:
            q.spill_path.unlink(missing_ok=True)
            q.spill_path = None
        q.spill_read_pos = 0

    # ------------------------------------------------------------------ sending

    def take_unsent(self) -> list[str]:
        """One fair round of unsent messages (JSON text), marked as sent."""
        out: list[str] = []
        for q in self._tasks.values():
            if q.spilled and self._memory_bytes < self._memory_limit:
                self._refill(q)
            taken = 0
            for seq, text, _lines in q.memory:
                if seq <= q.sent:
                    continue
                out.append(text)
                q.sent = seq
                taken += 1
                if taken >= self._batch:
                    break
        if not out:
            self._unsent.clear()
        return out

    async def wait_unsent(self) -> None:
        await self._unsent.wait()

    def has_unsent(self) -> bool:
        return any(q.memory and q.memory[-1][0] > q.sent for q in self._tasks.values())

    def ack(self, task_id: str, seq: int) -> None:
        q = self._tasks.get(task_id)
        if q is None or seq <= q.acked:
            return
        q.acked = min(seq, q.last_produced)
        while q.memory and q.memory[0][0] <= q.acked:
            _, text, lines = q.memory.popleft()
            self._memory_bytes -= len(text)
            self.lines_acked += lines
        if q.sent < q.acked:
            q.sent = q.acked
        for other in self._tasks.values():
            if other.spilled:
                self._refill(other)
        if q.finished and q.acked == q.last_produced:
            self._close_spill(q)
            del self._tasks[task_id]
        if not self._tasks:
            self._all_acked.set()
        if self.has_unsent():
            self._unsent.set()

    def rewind(self, acked: dict[str, int]) -> None:
        """After a reconnect: the manager holds ``acked[task]`` for each task; everything
        after it is sent again. Tasks the manager did not mention restart from their last
        ack (the manager drops what it already has)."""
        for task_id, q in self._tasks.items():
            if task_id in acked:
                self.ack(task_id, acked[task_id])
            q.sent = q.acked
        if self.has_unsent():
            self._unsent.set()

    def rewind_task(self, task_id: str, after_seq: int | None = None) -> bool:
        """On a live connection: the manager holds ``task_id`` up to ``after_seq`` (its
        last ack when None) and wants the rest again. False if the task is not here."""
        q = self._tasks.get(task_id)
        if q is None:
            return False
        if after_seq is not None:
            self.ack(task_id, after_seq)
            if task_id not in self._tasks:  # that ack was its last message
                return True
        q.sent = q.acked
        self._unsent.set()  # take_unsent clears it again if nothing is left to send
        return True

    def drop(self, task_id: str) -> None:
        """Forget a task the manager no longer wants messages for (finished or lost)."""
        q = self._tasks.pop(task_id, None)
        if q is None:
            return
        self._memory_bytes -= sum(len(t) for _, t, _n in q.memory)
        self.dropped += len(q.memory) + q.spilled
        self.lines_dropped += sum(n for _, _t, n in q.memory) + q.spilled_lines
        self._close_spill(q)
        if not self._tasks:
            self._all_acked.set()

    async def wait_all_acked(self) -> None:
        await self._all_acked.wait()

    # ------------------------------------------------------------------ inspection

    def task_ids(self) -> Iterator[str]:
        return iter(list(self._tasks))

    def last_acked(self, task_id: str) -> int:
        q = self._tasks.get(task_id)
        return q.acked if q else 0

    @property
    def buffered(self) -> int:
        return sum(len(q.memory) + q.spilled for q in self._tasks.values())

    @property
    def lines_buffered(self) -> int:
        return sum(sum(n for _, _t, n in q.memory) + q.spilled_lines
                   for q in self._tasks.values())
