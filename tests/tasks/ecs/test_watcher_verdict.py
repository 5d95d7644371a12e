"""The steady-state verdict on crafted DescribeServices answers (shapes from
ecs-api-facts.md: PRIMARY first, circuit-breaker reasons, events newest first)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tasks.ecs.watcher import (
    Counts,
    Phase,
    Target,
    assess,
    describe_stopped_task,
    event_ids,
    human_duration,
    new_events,
    same_task_definition,
)

T0 = datetime(2022, 10, 6, 23, 3, 40, tzinfo=UTC)
TD_OLD = "arn:aws:ecs:us-west-2:123456789012:task-definition/fargate-task-definition:5"
TD_NEW = "arn:aws:ecs:us-west-2:123456789012:task-definition/fargate-task-definition:6"
NEW = "ecs-svc/9219274889298964351"
OLD = "ecs-svc/2991467373931924299"
TARGET = Target("myapp", NEW, TD_NEW)


def deployment(id_: str, td: str, status: str = "PRIMARY", running: int = 1,
               desired: int = 1, pending: int = 0, rollout: str | None = "COMPLETED",
               reason: str | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"id": id_, "status": status, "taskDefinition": td,
                         "runningCount": running, "desiredCount": desired,
                         "pendingCount": pending}
    if rollout is not None:
        d["rolloutState"] = rollout
    if reason is not None:
        d["rolloutStateReason"] = reason
    return d


def event(n: int, message: str, seconds: float) -> dict[str, Any]:
    return {"id": f"ev-{n}", "createdAt": T0 + timedelta(seconds=seconds), "message": message}


def service(*deployments: dict[str, Any], events: list[dict[str, Any]] | None = None,
            status: str = "ACTIVE") -> dict[str, Any]:
    return {"serviceName": "myapp", "status": status, "deployments": list(deployments),
            "events": events or [], "runningCount": 1, "desiredCount": 1}


def test_our_completed_only_deployment_with_all_running_succeeds() -> None:
    verdict = assess(service(deployment(NEW, TD_NEW)), TARGET)
    assert verdict.phase is Phase.SUCCEEDED
    assert verdict.counts == Counts(1, 1, 0)


def test_in_progress_while_old_deployment_drains_even_with_all_running() -> None:
    verdict = assess(service(deployment(NEW, TD_NEW, rollout="COMPLETED"),
                             deployment(OLD, TD_OLD, status="ACTIVE")), TARGET)
    assert verdict.phase is Phase.IN_PROGRESS
    assert "still draining" in verdict.summary


def test_in_progress_until_rollout_completed() -> None:
    verdict = assess(service(deployment(NEW, TD_NEW, running=0, pending=1,
                                        rollout="IN_PROGRESS")), TARGET)
    assert verdict.phase is Phase.IN_PROGRESS
    assert verdict.summary == f"deployment {NEW} has 0/1 running, 1 pending, rolloutState " \
                              "IN_PROGRESS"


def test_without_rollout_state_running_equals_desired_and_one_deployment_is_success() -> None:
    assert assess(service(deployment(NEW, TD_NEW, rollout=None)), TARGET).phase \
        is Phase.SUCCEEDED
    assert assess(service(deployment(NEW, TD_NEW, rollout=None, running=0)), TARGET).phase \
        is Phase.IN_PROGRESS


def test_circuit_breaker_rollback_in_progress_is_failure() -> None:
    answer = service(
        deployment(OLD, TD_OLD, rollout="IN_PROGRESS",
                   reason=f"ECS deployment circuit breaker: rolling back to deploymentId {OLD}."),
        deployment(NEW, TD_NEW, status="ACTIVE", running=0, rollout="FAILED",
                   reason="ECS deployment circuit breaker: tasks failed to start."))
    verdict = assess(answer, TARGET)
    assert verdict.phase is Phase.FAILED
    assert "tasks failed to start" in verdict.reason


def test_circuit_breaker_rollback_finished_and_stable_is_still_failure() -> None:
    # What botocore's services_stable calls success: one deployment, running == desired.
    answer = service(deployment(OLD, TD_OLD, reason=f"ECS deployment {OLD} completed."))
    verdict = assess(answer, TARGET)
    assert verdict.phase is Phase.FAILED
    assert "no longer PRIMARY" in verdict.reason


def test_failed_rollout_without_rollback_is_failure() -> None:
    answer = service(deployment(NEW, TD_NEW, running=0, rollout="FAILED",
                                reason="ECS deployment circuit breaker: tasks failed to start."),
                     deployment(OLD, TD_OLD, status="ACTIVE"))
    verdict = assess(answer, TARGET)
    assert verdict.phase is Phase.FAILED
    assert verdict.reason == (f"Deployment {NEW} of service myapp failed: ECS deployment "
                              "circuit breaker: tasks failed to start.")


def test_a_rollback_step_waiting_on_the_deployment_ecs_rolls_back_to_is_not_failed() -> None:
    answer = service(
        deployment(OLD, TD_OLD, rollout="IN_PROGRESS",
                   reason=f"ECS deployment circuit breaker: rolling back to deploymentId {OLD}."),
        deployment(NEW, TD_NEW, status="ACTIVE", running=0, rollout="FAILED"),
        events=[event(5, f"(service myapp) rolling back to deployment {OLD}.", 1)])
    verdict = assess(answer, Target("myapp", OLD, TD_OLD))
    assert verdict.phase is Phase.IN_PROGRESS


def test_superseded_by_another_deployment_is_failure() -> None:
    other = "ecs-svc/1111111111111111111"
    answer = service(deployment(other, TD_NEW, rollout="IN_PROGRESS"),
                     deployment(NEW, TD_NEW, status="ACTIVE"))
    verdict = assess(answer, TARGET)
    assert verdict.phase is Phase.FAILED
    assert other in verdict.reason


def test_primary_task_definition_differs_is_failure() -> None:
    verdict = assess(service(deployment(NEW, TD_OLD)), TARGET)
    assert verdict.phase is Phase.FAILED
    assert TD_OLD in verdict.reason


def test_task_definitions_compare_as_arn_or_family_revision() -> None:
    assert same_task_definition(TD_NEW, "fargate-task-definition:6")
    assert not same_task_definition(TD_NEW, "fargate-task-definition:5")
    assert not same_task_definition(None, TD_NEW)


def test_deployment_failed_event_after_start_is_failure() -> None:
    answer = service(deployment(NEW, TD_NEW, rollout="IN_PROGRESS", running=0),
                     events=[event(2, f"(service myapp) (deployment {NEW}) deployment failed: "
                                      "tasks failed to start.", 30)])
    verdict = assess(answer, TARGET, seen=(), not_before=T0)
    assert verdict.phase is Phase.FAILED
    assert "deployment failed" in verdict.reason


def test_failed_event_about_another_deployment_or_already_seen_is_ignored() -> None:
    answer = service(deployment(NEW, TD_NEW, rollout="IN_PROGRESS", running=0),
                     events=[event(2, f"(service myapp) (deployment {OLD}) deployment failed: "
                                      "tasks failed to start.", 30)])
    assert assess(answer, TARGET).phase is Phase.IN_PROGRESS
    answer["events"][0]["message"] = f"(service myapp) rolling back to deployment {OLD}."
    assert assess(answer, TARGET, seen={"ev-2"}).phase is Phase.IN_PROGRESS
    assert assess(answer, TARGET).phase is Phase.FAILED


def test_missing_draining_and_inactive_services_fail() -> None:
    assert "MISSING" in assess(None, TARGET).reason
    for status in ("DRAINING", "INACTIVE"):
        verdict = assess(service(deployment(NEW, TD_NEW), status=status), TARGET)
        assert verdict.phase is Phase.FAILED
        assert status in verdict.reason


def test_events_are_new_once_each_and_oldest_first() -> None:
    newest_first = [event(3, "(service myapp) has reached a steady state.", 80),
                    event(2, "(service myapp) has started 1 tasks: (task f025d07b).", 6),
                    event(1, "(service myapp) has started 1 tasks: (task 072854d4).", -3600)]
    answer = service(deployment(NEW, TD_NEW), events=newest_first)
    seeded = event_ids(service(events=[newest_first[2]]))
    first = assess(answer, TARGET, seen=seeded)
    assert [e.id for e in first.new_events] == ["ev-2", "ev-3"]
    again = assess(answer, TARGET, seen=seeded | {e.id for e in first.new_events})
    assert again.new_events == ()


def test_events_older_than_the_start_are_not_replayed_even_unseeded() -> None:
    newest_first = [event(2, "new", 5), event(1, "history", -600)]
    assert [e.message for e in new_events(service(events=newest_first), (),
                                          not_before=T0)] == ["new"]


def test_stopped_task_lines_name_reason_code_and_exit_codes() -> None:
    task = {"taskArn": "arn:aws:ecs:us-west-2:1:task/c/0123abcd", "stopCode": "TaskFailedToStart",
            "stoppedReason": "CannotPullContainerError: pull image manifest has been retried",
            "containers": [{"name": "web", "exitCode": 1, "reason": "boom"},
                           {"name": "sidecar"}]}
    assert describe_stopped_task(task) == [
        "- task 0123abcd: CannotPullContainerError: pull image manifest has been retried "
        "[TaskFailedToStart]",
        "    container web: exit code 1, boom",
    ]


def test_human_duration() -> None:
    assert human_duration(600) == "10m"
    assert human_duration(90) == "1m30s"
    assert human_duration(0.25) == "0.2s"
    assert human_duration(5) == "5s"
    assert human_duration(3660) == "1h1m"


def test_no_rollout_state_at_zero_of_zero_is_in_progress_while_the_service_wants_more() -> None:
    # DescribeServices behind a Classic Load Balancer: ECS omits rolloutState, and a new
    # deployment reads 0/0 before the scheduler sets its desired count.
    answer = service(deployment(NEW, TD_NEW, running=0, desired=0, rollout=None))
    answer.update(desiredCount=2, runningCount=0)
    assert assess(answer, TARGET).phase is Phase.IN_PROGRESS
    answer["deployments"] = [deployment(NEW, TD_NEW, running=2, desired=2, rollout=None)]
    answer["runningCount"] = 2
    assert assess(answer, TARGET).phase is Phase.SUCCEEDED
