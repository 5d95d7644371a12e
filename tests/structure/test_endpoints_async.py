"""Every HTTP endpoint of the manager is ``async def``: FastAPI runs a plain ``def``
endpoint in its thread pool, beside the event loop's transactions on the one SQLite
connection (manager/db.py) — the interleaved BEGINs of issue 16. A sync endpoint fails
here with its file and line."""

from __future__ import annotations

import ast
from pathlib import Path

MANAGER = Path(__file__).resolve().parents[2] / "manager"


def _is_route(decorator: ast.expr) -> bool:
    call = decorator.func if isinstance(decorator, ast.Call) else decorator
    return (isinstance(call, ast.Attribute) and isinstance(call.value, ast.Name)
            and call.value.id in {"router", "app"}
            and call.attr in {"get", "post", "put", "delete", "patch", "websocket",
                              "api_route"})


def test_every_endpoint_is_async() -> None:
    sync = []
    for path in sorted(MANAGER.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and any(map(_is_route, node.decorator_list)):
                sync.append(f"{path.name}:{node.lineno} {node.name}")
    assert not sync, f"sync endpoints (make them async def): {', '.join(sync)}"


def test_the_check_sees_routes() -> None:
    routes = [node for path in MANAGER.glob("*.py")
              for node in ast.walk(ast.parse(path.read_text()))
              if isinstance(node, ast.AsyncFunctionDef) and any(map(_is_route,
                                                                    node.decorator_list))]
    assert len(routes) > 10
