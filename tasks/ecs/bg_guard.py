"""What a blue/green deployment left on its two services, as the rollback guard
(tasks/ecs/rollback_guard) judges them: task definition, desired count, autoscaling.

Pure: the create step's ``output.blueGreen`` (and whether production was swapped) in,
``LeftBehind`` out; ``bluegreen`` reads the services and their autoscaling and checks.
"""

from __future__ import annotations

from tasks.ecs.bg_params import BlueGreenData
from tasks.ecs.rollback_guard import LeftBehind, scaling_bounds


def new_service(data: BlueGreenData, *, swapped: bool) -> LeftBehind | None:
    """The new (stage) service as the create step (and swap) left it; None when the
    create step did not get as far as deploying it."""
    if data.task_definition_arn is None:
        return None
    # 0 too: a rollback that stopped after downsizing it (after a swap) can run again.
    counts = () if data.new_desired_count is None else tuple(
        dict.fromkeys((data.new_desired_count, 0)))
    if data.auto_scaling_in_swap_step and swapped:
        targets = data.scalable_targets  # the swap step attaches them at its end
    else:
        targets = data.new_scalable_targets or []
    # Taken off by the swap's or rollback's later steps, or never attached by a step
    # that stopped first: no autoscaling is ours too; other bounds are someone else's.
    return LeftBehind(data.new_service_name, (data.task_definition_arn,),
                      desired_counts=counts, scaling=scaling_bounds(targets),
                      scaling_optional=True)


def checks_new_scaling(data: BlueGreenData) -> bool:
    """Whether the create step recorded the new service's autoscaling (an older delegate
    did not, and then only its task definition can be judged)."""
    return data.new_scalable_targets is not None


def old_service(data: BlueGreenData) -> LeftBehind | None:
    """The old (blue) service: its task definition, its count or 0 (the swap downsizes
    it), and its autoscaling, which the create (one target group) or swap step takes off."""
    if not data.old_service_name or not data.old_task_definition_arn:
        return None
    counts = tuple(dict.fromkeys((data.old_desired_count or 0, 0)))
    return LeftBehind(data.old_service_name, (data.old_task_definition_arn,),
                      desired_counts=counts,
                      scaling=scaling_bounds(data.old_scalable_targets),
                      scaling_optional=True)
