"""The provisioner section's pure parts: flattening, merged outputs, and resolving the
infrastructure from them (manager/provisioning.py)."""

from __future__ import annotations

import pytest

from manager.provisioning import (
    IDS_KEY,
    ProvisionerError,
    flatten,
    outputs_of,
    resolve_infrastructure,
)


def _body() -> dict[str, object]:
    return {"steps": [{"id": "deploy"}], "rollbackSteps": [{"id": "undo"}],
            "provisioner": {"steps": [{"id": "a"}, {"id": "b"}],
                            "rollbackSteps": [{"id": "undo-a"}]}}


def test_provisioner_steps_run_first_and_their_rollbacks_last() -> None:
    body = flatten(_body())
    assert [s["id"] for s in body["steps"]] == ["a", "b", "deploy"]  # type: ignore[union-attr,index]
    assert [s["id"] for s in body["rollbackSteps"]] == ["undo-a", "undo"]  # type: ignore[union-attr,index]
    assert body[IDS_KEY] == ["a", "b"] and "provisioner" not in body


def test_outputs_are_known_only_once_every_provisioner_step_succeeded() -> None:
    spec = flatten(_body())
    outputs = {"a": {"cluster_name": "one", "x": 1}, "b": {"cluster_name": "two"}}
    assert outputs_of(spec, outputs, {"a"}) is None
    assert outputs_of(spec, outputs, {"a", "b"}) == {"cluster_name": "two", "x": 1}


def test_infrastructure_resolves_whole_and_embedded_expressions() -> None:
    infra = {"region": "<+provisioner.region_name>", "cluster": "app-<+provisioner.env>",
             "credentials": {"type": "inherit"}}
    done = resolve_infrastructure(infra, {"region_name": "eu-west-1", "env": "prod"})
    assert done == {"region": "eu-west-1", "cluster": "app-prod",
                    "credentials": {"type": "inherit"}}
    # Before the provisioner is done, only fields without an expression are given.
    assert resolve_infrastructure(infra, None) == {"credentials": {"type": "inherit"}}


def test_a_missing_output_names_what_there_is() -> None:
    with pytest.raises(ProvisionerError, match=r"no provisioner step produced output "
                       r"'cluster'.*cluster_name"):
        resolve_infrastructure({"cluster": "<+provisioner.cluster>"},
                               {"cluster_name": "x", "rollbackData": {}})
