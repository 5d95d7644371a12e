"""The web console with big logs and live lines (issue 15):

* open time: an execution whose step logged 100,000 lines, from navigation start to its
  log pane showing the last line (the page draws the log's last page; earlier pages
  load on request), and the time to load one earlier page;
* live latency: a delegate's log line, from the handler logging it to the line being on
  the page (delegate batching, manager store, the acked stream, the browser's drawing,
  and the CDP round trip of noticing it), p50/p99/max over N lines on loopback.

Run: ``python bench/ui.py [--lines 100000] [--live 100]``. Needs Debian's chromium.
Figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playwright.async_api import Page, async_playwright

from agent.context import TaskContext, TaskType
from testkit.browser import CHROMIUM_ARGS, MISSING, chromium
from testkit.stack import (
    ADMIN_TOKEN,
    DelegateRunner,
    ManagerApi,
    running_manager,
    test_registry,
    wait_for,
)

QUEUE: asyncio.Queue[int] = asyncio.Queue()
SENT: dict[int, float] = {}


async def _live(ctx: TaskContext) -> dict[str, Any]:
    """Logs ``mark i`` whenever the bench asks, until it sends -1."""
    async with ctx.log.unit("Live") as log:
        log.info("ready")
        while (i := await QUEUE.get()) >= 0:
            SENT[i] = time.perf_counter()
            log.info(f"mark {i}")
    return {}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def _execution(api: ManagerApi, step: dict[str, Any]) -> tuple[str, str]:
    r = await api.client.post("/api/executions", json={
        "name": "bench", "service": f"bench-{step['id']}", "selectors": ["b"],
        "steps": [step]})
    r.raise_for_status()
    execution_id = r.json()["execution_id"]

    async def task_id() -> str | None:
        view = (await api.client.get(f"/api/executions/{execution_id}")).json()
        return view["runs"][0]["task_id"] if view["runs"] else None

    return execution_id, await wait_for(task_id, what="the step's task")


async def _sign_in(page: Page, url: str) -> None:
    await page.goto(url + "/ui/signin")
    await page.fill("#token", ADMIN_TOKEN)
    await page.press("#token", "Enter")
    await page.wait_for_url("**/ui/executions")


async def open_time(page: Page, url: str, api: ManagerApi, lines: int) -> dict[str, float]:
    execution_id, task_id = await _execution(api, {
        "id": "flood", "type": "test.flood", "params": {"lines": lines, "pause_every": 0}})
    await api.wait_finished(task_id, timeout=600)
    samples = []
    for _ in range(5):
        t0 = time.perf_counter()
        await page.goto(f"{url}/ui/executions/{execution_id}")
        await page.locator("#step-steps-flood li.l .t").last.wait_for()
        last = await page.locator("#step-steps-flood li.l .t").last.text_content()
        samples.append(time.perf_counter() - t0)
        assert last == f"line {lines - 1:06d}", last
    t0 = time.perf_counter()
    before = await page.locator("#step-steps-flood li.l").count()
    await page.click("#step-steps-flood button.earlier")
    await wait_for(lambda: _more(page, before), what="an earlier page")
    earlier = time.perf_counter() - t0
    return {"open_median_s": statistics.median(samples), "open_max_s": max(samples),
            "earlier_page_s": earlier}


async def _more(page: Page, before: int) -> bool:
    return await page.locator("#step-steps-flood li.l").count() > before


async def live_latency(page: Page, url: str, api: ManagerApi, n: int) -> dict[str, float]:
    execution_id, task_id = await _execution(api, {"id": "live", "type": "bench.live"})
    await page.goto(f"{url}/ui/executions/{execution_id}")
    await page.locator("#step-steps-live li.l .t", has_text="ready").wait_for()
    samples = []
    for i in range(n):
        await QUEUE.put(i)
        await page.locator(f"#step-steps-live li.l .t:text-is('mark {i}')").wait_for()
        samples.append(time.perf_counter() - SENT[i])
        await asyncio.sleep(0.02)  # a line at a time: the latency of each, not a burst
    await QUEUE.put(-1)
    await api.wait_finished(task_id)
    ms = [s * 1000 for s in samples]
    return {"live_p50_ms": pct(ms, 50), "live_p99_ms": pct(ms, 99), "live_max_ms": max(ms)}


async def main(lines: int, live: int) -> None:
    path = chromium()
    if path is None:
        raise SystemExit(MISSING)
    registry = test_registry()
    registry.register(TaskType(name="bench.live", handler=_live, summary="bench"))
    with tempfile.TemporaryDirectory() as tmp:
        async with running_manager(Path(tmp), extra_args=("--max-log-bytes", "50000000")
                                   ) as m, m.api() as client:
            api = ManagerApi(client)
            token = await api.create_token("acme")
            async with DelegateRunner(m.url, token, tags=("b",), registry=registry) as d, \
                    async_playwright() as pw:
                await d.registered()
                browser = await pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
                page = await browser.new_page()
                await _sign_in(page, m.url)
                figures = {**await open_time(page, m.url, api, lines),
                           **await live_latency(page, m.url, api, live)}
                await browser.close()
    print(f"{lines} lines: open {figures['open_median_s'] * 1000:.0f} ms median "
          f"(max {figures['open_max_s'] * 1000:.0f} ms of 5), one earlier page "
          f"{figures['earlier_page_s'] * 1000:.0f} ms")
    print(f"live line, delegate -> page: p50 {figures['live_p50_ms']:.1f} ms, "
          f"p99 {figures['live_p99_ms']:.1f} ms, max {figures['live_max_ms']:.1f} ms "
          f"over {live}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--live", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(main(args.lines, args.live))
