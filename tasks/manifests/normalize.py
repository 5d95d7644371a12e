"""From what users write to the request AWS takes.

Users paste what the console or the AWS CLI shows them: documents full of ``null``,
describe outputs wrapped in ``{"services": [...]}`` with ARNs, counts and events, and
autoscaling objects in the lowerCamel form of the product document while the API is
PascalCase. Each ``normalize_*`` function returns the request and the warnings to show.
"""

from __future__ import annotations

from typing import Any

from botocore.model import Shape

from tasks.manifests.errors import ManifestError
from tasks.manifests.model import (
    CREATE_SERVICE,
    PUT_SCALING_POLICY,
    REGISTER_SCALABLE_TARGET,
    REGISTER_TASK_DEFINITION,
    Operation,
    describe_only_fields,
    input_shape,
)

ECS_NAMESPACE = "ecs"
ECS_DIMENSION = "ecs:service:DesiredCount"


def drop_nulls(value: Any) -> Any:
    """Remove keys whose value is null, at any depth. 0, false, "" and [] are values."""
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


def canonical_keys(value: Any, shape: Shape) -> Any:
    """Rename keys to the model's spelling when they differ only in case
    (``targetTrackingScalingPolicyConfiguration`` -> ``TargetTrackingScalingPolicyConfiguration``,
    ``roleArn`` -> ``RoleARN``). Unknown keys are kept for the validator to report."""
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        by_lower = {m.lower(): m for m in shape.members}
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = by_lower.get(str(key).lower(), str(key))
            member = shape.members.get(name)
            out[name] = canonical_keys(item, member) if member is not None else item
        return out
    if kind == "list" and isinstance(value, list):
        return [canonical_keys(v, shape.member) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: canonical_keys(v, shape.value)
                for k, v in value.items()}
    return value


def _require_mapping(doc: Any, file: str, what: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise ManifestError(
            f"expected one {what} as a mapping of fields, found a {type(doc).__name__}",
            file=file,
        )
    return doc


def _drop_describe_only(request: dict[str, Any], op: Operation,
                        warnings: list[str], file: str) -> dict[str, Any]:
    extra = describe_only_fields(op)
    dropped = sorted(k for k in request if k in extra)
    if dropped:
        warnings.append(
            f"{file}: ignored fields that only describe output has (not accepted by "
            f"{op.name}): {', '.join(dropped)}"
        )
    return {k: v for k, v in request.items() if k not in extra}


def _only_keys(doc: dict[str, Any], wrapper: str, allowed: set[str]) -> bool:
    return wrapper in doc and set(doc) <= {wrapper, *allowed}


def normalize_task_definition(doc: Any, file: str) -> tuple[dict[str, Any], list[str]]:
    warnings: list[str] = []
    doc = _require_mapping(drop_nulls(doc), file, "task definition")
    # describe-task-definition prints {"taskDefinition": {...}, "tags": [...]}.
    if _only_keys(doc, "taskDefinition", {"tags"}) and isinstance(doc["taskDefinition"], dict):
        inner = dict(doc["taskDefinition"])
        if doc.get("tags"):
            inner.setdefault("tags", doc["tags"])
        warnings.append(f"{file}: unwrapped the describe-task-definition output "
                        "(its taskDefinition object is used)")
        doc = inner
    return _drop_describe_only(doc, REGISTER_TASK_DEFINITION, warnings, file), warnings


def _drop_step_owned(request: dict[str, Any], file: str, what: str, cluster: str | None,
                     warnings: list[str]) -> dict[str, Any]:
    request = dict(request)
    if "taskDefinition" in request:
        request.pop("taskDefinition")
        warnings.append(f"{file}: taskDefinition in the {what} is ignored; the step's own "
                        "task definition is used")
    given = request.pop("cluster", None)
    if given is not None and cluster is not None and given != cluster:
        warnings.append(f"{file}: cluster {given!r} in the {what} is ignored; the step "
                        f"deploys to cluster {cluster!r}")
    return request


def normalize_service_definition(doc: Any, file: str, *, cluster: str | None = None,
                                 ) -> tuple[dict[str, Any], list[str]]:
    """A CreateService request without ``cluster`` and ``taskDefinition``: the step sets
    both."""
    warnings: list[str] = []
    doc = drop_nulls(doc)
    if isinstance(doc, dict) and _only_keys(doc, "services", {"failures"}):
        services = doc["services"]
        if not isinstance(services, list) or len(services) != 1:
            count = len(services) if isinstance(services, list) else "no"
            raise ManifestError(
                f"the describe-services output holds {count} services; a service "
                "definition is one service: keep one object of the services list",
                file=file, path="services",
            )
        warnings.append(f"{file}: unwrapped the describe-services output "
                        "(its one service is used)")
        doc = services[0]
    elif isinstance(doc, dict) and _only_keys(doc, "service", set()):
        warnings.append(f"{file}: unwrapped the {{\"service\": ...}} wrapper")
        doc = doc["service"]
    doc = _require_mapping(doc, file, "service definition")
    doc = _drop_describe_only(doc, CREATE_SERVICE, warnings, file)
    return _drop_step_owned(doc, file, "service definition", cluster, warnings), warnings


def normalize_run_task_request(doc: Any, file: str, *, cluster: str | None = None,
                               ) -> tuple[dict[str, Any], list[str]]:
    warnings: list[str] = []
    doc = _require_mapping(drop_nulls(doc), file, "run task request")
    return _drop_step_owned(doc, file, "run task request", cluster, warnings), warnings


def resource_id(cluster: str, service_name: str) -> str:
    return f"service/{cluster}/{service_name}"


def _autoscaling_items(doc: Any, wrapper: str, file: str) -> tuple[list[Any], bool]:
    """The items, and whether they came out of a describe output's wrapper."""
    if isinstance(doc, dict):
        by_lower = {str(k).lower(): k for k in doc}
        key = by_lower.get(wrapper.lower())
        if key is not None and set(by_lower) <= {wrapper.lower(), "nexttoken"}:
            items = doc[key]
            if not isinstance(items, list):
                raise ManifestError(f"{key} must be a list", file=file, path=str(key))
            return items, True
        return [doc], False
    if isinstance(doc, list):
        return doc, False
    raise ManifestError(f"expected a mapping of fields, found a {type(doc).__name__}",
                        file=file)


def _normalize_autoscaling(doc: Any, file: str, op: Operation, wrapper: str,
                           cluster: str | None, service_name: str | None,
                           ) -> tuple[list[dict[str, Any]], list[str]]:
    warnings: list[str] = []
    shape = input_shape(op)
    requests: list[dict[str, Any]] = []
    items, unwrapped = _autoscaling_items(drop_nulls(doc), wrapper, file)
    if unwrapped:
        warnings.append(f"{file}: unwrapped the {wrapper} list of a describe output "
                        f"({len(items)} item(s))")
    for index, item in enumerate(items):
        where = f"{file} [{index}]" if len(items) > 1 else file
        item = _require_mapping(item, where, op.name + " request")
        request = _drop_describe_only(canonical_keys(item, shape), op, warnings, where)
        request.setdefault("ServiceNamespace", ECS_NAMESPACE)
        request.setdefault("ScalableDimension", ECS_DIMENSION)
        if cluster and service_name:
            wanted = resource_id(cluster, service_name)
            given = request.get("ResourceId")
            if given is not None and given != wanted:
                warnings.append(f"{where}: ResourceId {given!r} replaced by {wanted!r}, "
                                "the service this step deploys")
            request["ResourceId"] = wanted
        requests.append(request)
    return requests, warnings


def normalize_scalable_targets(doc: Any, file: str, *, cluster: str | None,
                               service_name: str | None,
                               ) -> tuple[list[dict[str, Any]], list[str]]:
    """RegisterScalableTarget requests (PascalCase) from one file, which may hold one
    target or a describe-scalable-targets output."""
    return _normalize_autoscaling(doc, file, REGISTER_SCALABLE_TARGET, "ScalableTargets",
                                  cluster, service_name)


def normalize_scaling_policies(doc: Any, file: str, *, cluster: str | None,
                               service_name: str | None,
                               ) -> tuple[list[dict[str, Any]], list[str]]:
    return _normalize_autoscaling(doc, file, PUT_SCALING_POLICY, "ScalingPolicies",
                                  cluster, service_name)


def retarget(requests: list[dict[str, Any]], cluster: str,
             service_name: str) -> list[dict[str, Any]]:
    """The same autoscaling requests for another service (a canary or a blue/green stage
    service)."""
    return [{**r, "ResourceId": resource_id(cluster, service_name)} for r in requests]
