"""The delegate: connects out to a manager, pulls tasks, runs each in its own coroutine.

Nothing in this package knows about ECS; task handlers live in ``tasks/`` and reach the
delegate only through :class:`agent.context.TaskContext` and the task registry.
"""

__version__ = "0.1.0"
