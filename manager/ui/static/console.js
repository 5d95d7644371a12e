// The console's live updates. No framework, no build: list pages re-fetch their rows,
// an execution page follows the API's long poll and each running step's log stream.
// Text from the manager goes into the page with textContent only; HTML comes only from
// the console's own autoescaped templates.
"use strict";

const MAX_LINES = 5000; // lines kept in one log pane while following; older ones page in

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function fromHtml(html) {
  const t = document.createElement("template");
  t.innerHTML = html;
  return t.content;
}

// ---------------------------------------------------------------- list pages

function liveRows(tbody) {
  let last = tbody.innerHTML;
  async function refresh() {
    try {
      const r = await fetch(tbody.dataset.live, {cache: "no-store"});
      if (r.status === 401) { location.reload(); return; }
      if (r.ok) {
        const html = await r.text();
        if (html !== last) {
          const focused = document.activeElement && tbody.contains(document.activeElement)
            ? document.activeElement.getAttribute("href") : null;
          tbody.innerHTML = html;
          last = tbody.innerHTML;
          if (focused) {
            const again = tbody.querySelector(`a[href="${CSS.escape(focused)}"]`);
            if (again) again.focus();
          }
        }
      }
    } catch (e) { /* the manager restarting: try again on the next tick */ }
    setTimeout(refresh, 2000);
  }
  setTimeout(refresh, 2000);
}

// j / k move between the rows of a list, / goes to the search or filter box.
function keys(event) {
  const target = event.target;
  if (event.altKey || event.ctrlKey || event.metaKey) return;
  if (target.closest && target.closest("input, select, textarea")) return;
  if (event.key === "/") {
    const box = document.querySelector("#q, .filters select");
    if (box) { event.preventDefault(); box.focus(); }
    return;
  }
  if (event.key !== "j" && event.key !== "k") return;
  const links = [...document.querySelectorAll("table[data-keys] tbody tr td:first-child a")];
  if (!links.length) return;
  event.preventDefault();
  const at = links.indexOf(document.activeElement);
  const next = event.key === "j" ? Math.min(at + 1, links.length - 1) : Math.max(at - 1, 0);
  links[at < 0 ? 0 : next].focus();
}

// ---------------------------------------------------------------- log panes

function lineNode(e) {
  if (e.kind === "log") {
    const text = e.text || "";
    let cls = "l lv-" + (e.level || "INFO");
    if (text.startsWith("# AWS Event:")) cls += " aws-event";
    const li = el("li", cls);
    li.dataset.id = e.id;
    li.append(el("span", "ts", (e.ts || "").slice(11, 19)), el("span", "t", text));
    return li;
  }
  if (e.kind === "unit") {
    const text = e.status === "RUNNING" ? e.unit : `${e.unit}: ${e.status}`;
    const li = el("li", "u", text);
    li.dataset.id = e.id;
    return li;
  }
  if (e.kind === "waiting") return el("li", "w", "waiting: " + (e.waiting_reason || ""));
  return null;
}

function atBottom(pane) {
  return pane.scrollHeight - pane.scrollTop - pane.clientHeight < 40;
}

function append(pane, entries) {
  const list = pane.querySelector("ol.lines");
  const stick = atBottom(pane);
  const frag = document.createDocumentFragment();
  for (const e of entries) {
    const node = lineNode(e);
    if (node) frag.append(node);
  }
  list.append(frag);
  let extra = list.children.length - MAX_LINES;
  if (extra > 0) {
    while (extra-- > 0) list.firstElementChild.remove();
    pane.dataset.before = list.firstElementChild.dataset.id || pane.dataset.before;
    earlierButton(pane);
  }
  if (stick) pane.scrollTop = pane.scrollHeight;
}

function earlierButton(pane) {
  let button = pane.querySelector("button.earlier");
  if (!button) {
    button = el("button", "earlier", "Show earlier lines");
    button.type = "button";
    pane.prepend(button);
  }
  return button;
}

async function earlier(pane, button) {
  const r = await fetch(`/ui/tasks/${pane.dataset.task}/page?before=${pane.dataset.before}`);
  if (!r.ok) return;
  const page = await r.json();
  const list = pane.querySelector("ol.lines");
  const frag = document.createDocumentFragment();
  for (const e of page.entries) {
    const node = lineNode(e);
    if (node) frag.append(node);
  }
  const height = pane.scrollHeight;
  list.prepend(frag);
  pane.scrollTop += pane.scrollHeight - height; // keep the line in view where it was
  if (page.entries.length) pane.dataset.before = page.entries[0].id;
  if (!page.more) button.remove();
}

// Follow the API's acked stream from the last entry the page holds: what came before is
// on the page already, and nothing is missed or shown twice (ids are the cursor).
async function follow(pane, onChange) {
  if (pane.dataset.following) return;
  pane.dataset.following = "1";
  while (pane.isConnected) {
    let ended = false;
    try {
      const r = await fetch(`/ui/tasks/${pane.dataset.task}/logs?follow=true&after=${pane.dataset.last}`);
      if (r.status === 401) { location.reload(); return; }
      const reader = r.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const {value, done} = await reader.read();
        if (done) { ended = r.ok; break; }
        buffer += decoder.decode(value, {stream: true});
        const cut = buffer.lastIndexOf("\n");
        if (cut < 0) continue;
        const entries = buffer.slice(0, cut).split("\n").filter(Boolean).map(JSON.parse);
        buffer = buffer.slice(cut + 1);
        const kept = entries.filter((e) => e.id === undefined || e.id > Number(pane.dataset.last));
        for (const e of kept) if (e.id !== undefined) pane.dataset.last = e.id;
        append(pane, kept);
        if (kept.some((e) => e.kind === "unit" || e.kind === "result")) onChange();
      }
    } catch (e) { /* dropped: start again from the last entry held */ }
    if (ended) { onChange(); return; }
    await new Promise((done) => setTimeout(done, 1000));
  }
}

// ---------------------------------------------------------------- execution page

function startPanes(root, onChange) {
  for (const pane of root.querySelectorAll(".log[data-task]")) {
    pane.scrollTop = pane.scrollHeight;
    if (pane.dataset.follow === "yes") follow(pane, onChange);
  }
}

function applyLive(exec, data, onChange) {
  exec.dataset.version = data.version;
  document.getElementById("exec-head").replaceChildren(fromHtml(data.head));
  const steps = document.getElementById("steps");
  for (const s of data.steps) {
    const fresh = fromHtml(s.html).firstElementChild;
    const old = document.getElementById("step-" + s.key);
    if (!old) {
      steps.append(fresh);
      startPanes(fresh, onChange);
    } else if ((old.dataset.task || "") !== (s.task_id || "")) {
      old.replaceWith(fresh);
      startPanes(fresh, onChange);
    } else {
      old.dataset.status = s.status;
      const open = old.querySelector("details.outputs")?.open;
      old.querySelector(".summary").replaceWith(fresh.querySelector(".summary"));
      const details = old.querySelector("details.outputs");
      if (details && open !== undefined) details.open = open;
    }
  }
}

function executionPage(exec) {
  let pending = null;
  let busy = false;
  async function poll(wait) {
    if (busy) return;
    busy = true;
    try {
      const url = `/ui/executions/${exec.dataset.execution}/live?known=${exec.dataset.version}&wait=${wait}`;
      const r = await fetch(url, {cache: "no-store"});
      if (r.status === 401) { location.reload(); return; }
      if (r.ok) applyLive(exec, await r.json(), soon);
    } catch (e) { /* try again below */ }
    busy = false;
    if (!["SUCCESS", "FAILED", "ABORTED", "ROLLED_BACK"].includes(
        document.getElementById("exec-status")?.textContent)) {
      setTimeout(() => poll(20), 50);
    }
  }
  // A unit or result seen on a log stream: redraw the step cards now, not at the next
  // change of the execution's version (a unit changing status does not change it).
  function soon() {
    clearTimeout(pending);
    pending = setTimeout(async () => {
      try {
        const r = await fetch(`/ui/executions/${exec.dataset.execution}/live?wait=0`,
                              {cache: "no-store"});
        if (r.ok) applyLive(exec, await r.json(), soon);
      } catch (e) { /* the long poll catches up */ }
    }, 100);
  }
  startPanes(exec, soon);
  poll(20);
}

document.addEventListener("click", (event) => {
  const button = event.target.closest && event.target.closest("button.earlier");
  if (button) earlier(button.closest(".log"), button);
});
document.addEventListener("keydown", keys);
document.addEventListener("DOMContentLoaded", () => {
  for (const tbody of document.querySelectorAll("tbody[data-live]")) liveRows(tbody);
  const exec = document.getElementById("exec");
  if (exec) executionPage(exec);
  else {
    const single = document.querySelector("#steps .log[data-task]");
    if (single) startPanes(document, () => {});
  }
});
