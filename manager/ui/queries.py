"""What the console reads from the manager's database beyond the API's views: the
executions list filtered by service, a page of a task's log from its end, a search over
an execution's log lines, and the stopped tasks' reasons of a failed step."""

from __future__ import annotations

from typing import Any

from manager.db import loads
from manager.exec_views import execution_view
from manager.state import State

PAGE_LINES = 1000
SEARCH_LIMIT = 500


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def executions(st: State, status: str | None, service: str | None,
               limit: int = 100) -> list[dict[str, Any]]:
    # The service is the last part of service_key (manager.executions.service_key): a
    # LIKE on it is plain SQL, where a JSON path into the spec is each backend's own.
    pattern = None if service is None else "%|" + _like_escape(service)
    rows = st.db.all(
        "SELECT * FROM executions WHERE (? IS NULL OR status = ?) AND "
        "(? IS NULL OR service_key LIKE ? ESCAPE '\\') "
        "ORDER BY created_at DESC, execution_id DESC LIMIT ?",
        status, status, pattern, pattern, limit)
    out = []
    for row in rows:
        view = execution_view(row, st.store)
        if view is not None:
            view["environment"] = loads(row["spec"]).get("environment")
            out.append(view)
    return out


def services(st: State) -> list[str]:
    rows = st.db.all(f"SELECT DISTINCT {st.db.json_text('spec', 'service')} AS s "
                     "FROM executions ORDER BY s")
    return [str(r["s"]) for r in rows if r["s"]]


def planned_steps(st: State, execution_id: str) -> list[dict[str, Any]]:
    """Every step and rollback step the execution's file names, in order, with its phase."""
    row = st.db.one("SELECT spec FROM executions WHERE execution_id = ?", execution_id)
    if row is None:
        return []
    spec = loads(row["spec"])
    prov = spec.get("provisioner") or {}
    out = [{"step_id": s["id"], "type": s["type"], "phase": "steps"}
           for s in [*prov.get("steps", []), *spec.get("steps", [])]]
    out += [{"step_id": s["id"], "type": s["type"], "phase": "rollback"}
            for s in [*spec.get("rollbackSteps", []), *prov.get("rollbackSteps", [])]]
    return out


def _entry(row: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": row["id"], "seq": row["seq"], "kind": row["kind"]}
    if row["unit"] is not None:
        entry["unit"] = row["unit"]
    entry.update(loads(row["data"]))
    return entry


def log_page(st: State, task_id: str, before: int | None,
             limit: int = PAGE_LINES) -> dict[str, Any]:
    """The ``limit`` entries before entry ``before`` (the newest when None), oldest
    first, and whether earlier ones exist: a page opens on the end of a long log."""
    rows = st.db.all("SELECT id, seq, kind, unit, data FROM entries WHERE task_id = ? AND "
                     "id < ? AND kind != 'event' ORDER BY id DESC LIMIT ?",
                     task_id, before if before is not None else 2**62, limit + 1)
    more = len(rows) > limit
    entries = [_entry(r) for r in reversed(rows[:limit])]
    last = st.db.one("SELECT MAX(id) AS m FROM entries WHERE task_id = ?", task_id)
    return {"entries": entries, "more": more,
            "last_id": int(last["m"]) if last and last["m"] is not None else 0}


def search(st: State, task_ids: list[str], text: str,
           limit: int = SEARCH_LIMIT) -> list[dict[str, Any]]:
    """Log lines of these tasks that contain ``text`` (case-insensitive), in order."""
    if not task_ids or not text:
        return []
    marks = ",".join("?" * len(task_ids))
    pattern = "%" + _like_escape(text) + "%"
    text_of = st.db.json_text("data", "text")
    rows = st.db.all(
        f"SELECT id, seq, kind, unit, data, task_id FROM entries WHERE task_id IN ({marks}) "
        f"AND kind = 'log' AND lower({text_of}) LIKE lower(?) ESCAPE '\\' "
        "ORDER BY id LIMIT ?", *task_ids, pattern, limit)
    return [{**_entry(r), "task_id": r["task_id"]} for r in rows]


def raw_log(st: State, task_id: str) -> str:
    """A task's log lines as text, each with its unit, time and level."""
    lines = []
    for row in st.db.all("SELECT unit, data FROM entries WHERE task_id = ? AND kind = 'log' "
                         "ORDER BY id", task_id):
        data = loads(row["data"])
        lines.append(f"{data.get('ts', '')} [{row['unit'] or '-'}] "
                     f"{data.get('level', 'INFO')} {data.get('text', '')}")
    return "\n".join(lines) + ("\n" if lines else "")


def stopped_tasks(st: State, task_id: str) -> list[str]:
    """The lines the ECS watcher prints under 'Stopped tasks of deployment ...'."""
    text_of = st.db.json_text("data", "text")
    rows = st.db.all(
        f"SELECT {text_of} AS t FROM entries WHERE task_id = ? AND "
        f"kind = 'log' AND ({text_of} LIKE '- task %' OR "
        f"{text_of} LIKE '    container %') ORDER BY id LIMIT 40", task_id)
    return [str(r["t"]) for r in rows]
