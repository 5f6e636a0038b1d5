"""Map a prebuilt task over lists: an ArrayNode whose sub-tasks run the task type's executor in its image.

``map_task(sql_task)`` has flytekit's ``map_task`` signature (and hands anything that is not a prebuilt task to
flytekit's). Importing this package needs flytekit only; names load on first use (``kit.lazy``).
"""

from flytekitplugins.prebuilt.kit.lazy import lazy_exports

# name -> the module that defines it; every lazy package has such a table (kit.lazy), hence the same shape
_WHERE = {
    "MapTemplateResolver": "runtime",
    "PrebuiltMapTask": "task",
    "map_task": "task",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
