"""The image and environment conventions, without a server."""

from __future__ import annotations

from sandbox.behaviour import SLOW_START_TICKS, behaviour_for, seconds_to_ticks


def test_images_choose_failures() -> None:
    plain = behaviour_for([{"name": "a", "image": "nginx"}])
    assert (plain.fail_image, plain.crash_container, plain.slow_start) == (None, None, False)
    assert plain.containers[0].run_seconds is None  # a service task runs until stopped
    mixed = behaviour_for([
        {"name": "a", "image": "x:slow-start"},
        {"name": "b", "image": "y:crash"},
        {"name": "c", "image": "z-fail-to-start"},
    ])
    assert mixed.fail_image == "z-fail-to-start"
    assert mixed.crash_container == "b"
    assert mixed.pending_ticks == SLOW_START_TICKS


def test_overrides_win_over_the_definition() -> None:
    definition = {"name": "a", "image": "i", "environment": [
        {"name": "SANDBOX_EXIT_CODE", "value": "3"}]}
    overrides = {"containerOverrides": [{"name": "a", "environment": [
        {"name": "SANDBOX_EXIT_CODE", "value": "4"}, {"name": "SANDBOX_RUN_SECONDS",
                                                       "value": "2.5"}]}]}
    [plan] = behaviour_for([definition], overrides, one_off=True).containers
    assert (plan.exit_code, plan.run_seconds) == (4, 2.5)
    [default] = behaviour_for([{"name": "a", "image": "i"}], one_off=True).containers
    assert (default.exit_code, default.run_seconds) == (0, 1.0)
    assert seconds_to_ticks(1.0, 0.2) == 5
