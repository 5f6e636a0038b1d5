"""An ArrayNode (a ``map_task``) as flytepropeller's array node handler runs it: one sub-task per index.

From flyteorg/flyte ``flytepropeller/pkg/controller/nodes/array/``:

- size (``handler.go``, phase None): the length of every input that is a collection and not bound; lengths that
  differ fail the node (``InvalidArrayLength``), as does no list at all unless every input is bound (size 1);
- each sub-node ``i`` (``buildArrayNodeContext``): data dir ``<node data>/<i>/<attempt>`` (where its
  ``{{.taskTemplatePath}}`` is written), output prefix ``<node output>/<i>/<attempt>``; ``{{.input}}`` is the
  ArrayNode's own ``inputs.pb`` (``staticInputReader``), ``{{.Inputs.x}}`` the element's value
  (``constructLiteralMap``); the template has each list output turned into its element type
  (``arrayTaskReader``); its environment adds ``BATCH_JOB_ARRAY_INDEX_VAR_NAME=FLYTE_K8S_ARRAY_INDEX`` and
  ``FLYTE_K8S_ARRAY_INDEX=<i>`` (``execution_context.go``); it is retried as the task's ``retries`` allow;
- at most ``parallelism`` sub-nodes run at once; unset or 0 is unlimited on a cluster, the default
  ``default-parallelism-behavior`` (``utils.go``, ``inferParallelism``): here, where every sub-node is a process on
  one machine, unset or 0 is this machine's CPU count (``local_parallelism``);
- success: ``min_successes``, else ``ceil(min_success_ratio * n)``, else all; once fewer can still succeed the
  node fails (no new sub-node starts; running ones end) with the sub-nodes' errors, one line per message with
  their indexes (``errorcollector``); otherwise each output is gathered in index order, the nil literal where a
  sub-node failed, into ``<node output>/outputs.pb``; a criterion more than the sub-nodes can meet
  (``min_successes`` above their count) fails the node before any starts (``ArrayNodeFailing``; flytepropeller says
  "Unknown reason", the emulator says why);
- bound inputs (a ``functools.partial``'s keywords) are inputs of the node, passed whole to every sub-node, as
  flytekit's ``ArrayNodeMapTask.__call__`` binds them in a workflow.

Each sub-task runs as ``Emulator.run`` runs a task: one pod (``pods.PodRunner``), a subprocess or the image in Docker.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections import OrderedDict
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from flyteidl.core import workflow_pb2
from flytekit.configuration import ImageConfig, SerializationSettings
from flytekit.core.array_node_map_task import ArrayNodeMapTask
from flytekit.core.context_manager import FlyteContextManager
from flytekit.core.node import Node
from flytekit.core.type_engine import TypeEngine
from flytekit.core.utils import write_proto_to_file
from flytekit.models import interface as interface_models
from flytekit.models import literals
from flytekit.models.task import TaskSpec, TaskTemplate
from flytekit.tools.translator import get_serializable
from flytekitplugins.prebuilt.emulator.inputs import input_literals
from flytekitplugins.prebuilt.emulator.outcomes import EmulatedRun, TaskFailed, open_up
from flytekitplugins.prebuilt.emulator.pods import InContainer, PodRunner
from flytekitplugins.prebuilt.emulator.rendering import Paths, render, uses_task_template
from flytekitplugins.prebuilt.emulator.resources import container_limits

# The ``Emulator`` (platform.py) that runs every element; not imported here, as platform.py imports this module.
Emulator = Any

INDEX_VAR_NAME = "BATCH_JOB_ARRAY_INDEX_VAR_NAME"
K8S_ARRAY_INDEX = "FLYTE_K8S_ARRAY_INDEX"
NIL = literals.Literal(scalar=literals.Scalar(none_type=literals.Void()))


@dataclass
class EmulatedArrayRun(EmulatedRun):
    """An ArrayNode's run: ``outputs`` are lists (None where an element failed); ``elements[i]`` is element i's
    ``EmulatedRun``, its ``TaskFailed``, or None if it never started; ``peak_running``: most sub-tasks at once."""

    elements: list[Union[EmulatedRun, TaskFailed, None]] = field(default_factory=list)
    peak_running: int = 0


class ArrayNodeFailed(TaskFailed):
    """Fewer elements succeeded than the node needs; ``elements`` as in ``EmulatedArrayRun``."""

    def __init__(self, message: str, origin: str, elements: list, logs: str):
        super().__init__("ArrayNodeFailing", message, "NON_RECOVERABLE", origin, attempts=1, logs=logs)
        self.elements = elements


def run_array_node(
    emulator: Emulator,
    task: ArrayNodeMapTask,
    inputs: Optional[dict[str, Any]] = None,
    *,
    image: Optional[str] = None,
    in_container: bool = False,
) -> EmulatedArrayRun:
    """Run ``task`` (a ``map_task``) with Python ``inputs`` (lists) as the backend runs its ArrayNode."""
    template, array = serialized_array_node(emulator, task)
    inputs = {**bound_values(task), **(inputs or {})}
    execution = f"emu{uuid.uuid4().hex[:12]}"
    data_dir = os.path.join(
        emulator.root, "metadata", "propeller", f"{emulator.project}-{emulator.domain}-{execution}", "n0", "data"
    )
    output_dir = os.path.join(data_dir, "0")
    os.makedirs(output_dir)
    input_map = input_literals(template.id.name, inputs or {}, task.python_interface.inputs, store=emulator.root)
    write_proto_to_file(input_map.to_flyte_idl(), os.path.join(data_dir, "inputs.pb"))
    open_up(emulator.root)
    size = array_size(input_map, set(array.bound_inputs))
    needed = _required(array, size)
    if needed > size:
        from flytekitplugins.prebuilt.map.task import cannot_succeed

        raise ArrayNodeFailed(cannot_succeed(needed, size), "USER", [None] * size, "")
    sub_template = array_task_template(template)
    node = _SubNodes(emulator, sub_template, input_map, set(array.bound_inputs), execution, data_dir, output_dir)
    parallelism = array.parallelism or local_parallelism()  # unset or 0: unlimited on a cluster
    elements: list[Union[EmulatedRun, TaskFailed, None]] = [None] * size
    failed, peak = [], 0
    with ThreadPoolExecutor(max_workers=max(1, min(parallelism, size))) as pool:
        running: dict[Future, int] = {}
        waiting = list(range(size))
        while waiting or running:
            while waiting and len(running) < parallelism and size - len(failed) >= needed:
                index = waiting.pop(0)
                running[pool.submit(node.run, index, image, in_container)] = index
            peak = max(peak, len(running))
            if not running:
                break  # failing: the rest never start
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                index = running.pop(future)
                elements[index] = future.result()
                if isinstance(elements[index], TaskFailed):
                    failed.append(index)
    logs = "".join(f"--- element {i} ({_state(e)})\n{e.logs if e is not None else ''}" for i, e in enumerate(elements))
    if size - len(failed) < needed:
        first = elements[min(failed)]
        raise ArrayNodeFailed(_summary({i: elements[i] for i in failed}), first.origin, elements, logs)
    gathered = {
        name: literals.Literal(
            collection=literals.LiteralCollection(
                [e.literals.literals[name] if isinstance(e, EmulatedRun) else NIL for e in elements]
            )
        )
        for name in template.interface.outputs
    }
    output_map = literals.LiteralMap(gathered)
    write_proto_to_file(output_map.to_flyte_idl(), os.path.join(output_dir, "outputs.pb"))
    ctx = FlyteContextManager.current_context()
    outputs = TypeEngine.literal_map_to_kwargs(ctx, output_map, task.python_interface.outputs) if gathered else {}
    return EmulatedArrayRun(
        outputs=outputs,
        literals=output_map,
        output_prefix=output_dir,
        attempts=1,
        logs=logs,
        files=sorted(os.listdir(output_dir)),
        elements=elements,
        peak_running=peak,
    )


def serialized_array_node(emulator: Emulator, task: ArrayNodeMapTask) -> tuple[TaskTemplate, workflow_pb2.ArrayNode]:
    """The sub-task's registered template (``Emulator.template``) and the ArrayNode in its wire form, as
    ``pyflyte register`` sends a workflow's node (flytekit ``tools/translator.py``; the template is not
    serialized twice: the translator takes it from its entity mapping)."""
    template = emulator.template(task)
    settings = SerializationSettings(
        project=emulator.project,
        domain=emulator.domain,
        version=template.id.version,
        image_config=ImageConfig.auto_default_image(),
    )
    entities: OrderedDict = OrderedDict({task: TaskSpec(template=template)})
    node = Node(id="n0", metadata=task.construct_node_metadata(), bindings=[], upstream_nodes=[], flyte_entity=task)
    return template, get_serializable(entities, settings, node).array_node.to_flyte_idl()


def bound_values(task: ArrayNodeMapTask) -> dict[str, Any]:
    """The values bound when the map task was made (a ``functools.partial``'s keywords), which
    ``ArrayNodeMapTask.__call__`` adds to a call's inputs; a run's own inputs win, as a call's do."""
    return dict(getattr(task, "bound_input_values", {}))


def local_parallelism() -> int:
    """How many sub-nodes of an ArrayNode without ``concurrency`` run at once here: the CPUs this process may use."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else os.cpu_count() or 1


def array_size(inputs: literals.LiteralMap, bound: set[str]) -> int:
    """How many sub-nodes: the length of the lists that are not bound (``handler.go``, phase None)."""
    size = -1
    for name, literal in inputs.literals.items():
        if name in bound or literal.collection is None:
            continue
        length = len(literal.collection.literals)
        if size not in (-1, length):
            raise TaskFailed(
                "InvalidArrayLength",
                f"input arrays have different lengths: expecting '{size}' found '{length}'",
                "NON_RECOVERABLE",
                "USER",
                0,
            )
        size = length
    if size == -1:
        if len(bound) == len(inputs.literals):
            return 1
        raise TaskFailed("InvalidArrayLength", "no input array provided", "NON_RECOVERABLE", "USER", 0)
    return size


def array_task_template(template: TaskTemplate) -> TaskTemplate:
    """The template a sub-node's pod reads (``arrayTaskReader``): each list output as its element type."""
    outputs = {
        name: interface_models.Variable(v.type.collection_type or v.type, v.description)
        for name, v in template.interface.outputs.items()
    }
    sub = template.to_flyte_idl()
    sub.interface.CopyFrom(interface_models.TypedInterface(template.interface.inputs, outputs).to_flyte_idl())
    return TaskTemplate.from_flyte_idl(sub)


def _required(array: workflow_pb2.ArrayNode, size: int) -> int:
    """As the handler reads the node's ``success_criteria`` (a oneof: ``min_successes`` or ``min_success_ratio``)."""
    from flytekitplugins.prebuilt.map.task import required_successes

    criterion = array.WhichOneof("success_criteria")
    if criterion == "min_successes":
        return required_successes(size, array.min_successes, None)
    return required_successes(size, None, array.min_success_ratio if criterion else None)


class _SubNodes:
    """The sub-nodes of one ArrayNode: element ``index``, each attempt a container plugin run."""

    def __init__(self, emulator, template, input_map, bound, execution, data_dir, output_dir):
        self.emulator, self.template, self.input_map, self.bound = emulator, template, input_map, bound
        self.execution, self.data_dir, self.output_dir = execution, data_dir, output_dir
        self.pods: PodRunner = emulator.pods
        self._lock = threading.Lock()

    def run(self, index: int, image: Optional[str], in_container: bool) -> Union[EmulatedRun, TaskFailed]:
        template = self.template
        container = template.container
        where = InContainer(image or container.image, container_limits(container.resources)) if in_container else None
        args = list(container.command) + list(container.args)
        element_inputs = literals.LiteralMap(
            {
                name: (v.collection.literals[index] if v.collection is not None and name not in self.bound else v)
                for name, v in self.input_map.literals.items()
            }
        )
        retries = template.metadata.retries.retries
        for attempt in range(retries + 1):
            sub_data = os.path.join(self.data_dir, str(index), str(attempt))
            paths = self._paths(index, attempt, sub_data)
            with self._lock:  # the folders are shared with the other sub-nodes' threads
                os.makedirs(sub_data, exist_ok=True)
                os.makedirs(paths.output_prefix, exist_ok=True)
                if uses_task_template(args):
                    write_proto_to_file(template.to_flyte_idl(), paths.task_template_path)
                open_up(os.path.join(self.data_dir, str(index)))
                open_up(os.path.join(self.output_dir, str(index)))
            env = {
                **self.pods.backend_env(template, self.execution, attempt),
                INDEX_VAR_NAME: K8S_ARRAY_INDEX,
                K8S_ARRAY_INDEX: str(index),
                **(container.env or {}),
            }
            ended = self.pods.run(render(args, paths, element_inputs), env, where, self.pods.attempt_limit(template))
            try:
                return self.pods.collect(template, paths, ended, attempt + 1, f"{self.execution}-n0-{index}-{attempt}")
            except TaskFailed as failure:
                if failure.recoverable and attempt < retries:
                    continue
                return failure
        raise AssertionError("unreachable")

    def _paths(self, index: int, attempt: int, sub_data: str) -> Paths:
        def unique(a: int) -> str:
            return hashlib.sha1(f"{self.execution}/n0/{index}/{a}".encode()).hexdigest()[:20]

        raw = os.path.join(self.emulator.root, "raw", unique(attempt)[:2], unique(attempt))
        previous = ""
        if attempt:
            previous = os.path.join(self.emulator.root, "raw", unique(attempt - 1)[:2], unique(attempt - 1))
            previous = os.path.join(previous, "_flytecheckpoints")
        return Paths(
            input_path=os.path.join(self.data_dir, "inputs.pb"),
            input_prefix=self.data_dir,
            output_prefix=os.path.join(self.output_dir, str(index), str(attempt)),
            raw_output_prefix=raw,
            task_template_path=os.path.join(sub_data, "task.pb"),
            per_retry_unique_key=f"a{unique(attempt)}",
            checkpoint_prefix=os.path.join(raw, "_flytecheckpoints"),
            previous_checkpoint_prefix=previous,
        )


def _state(element: Union[EmulatedRun, TaskFailed, None]) -> str:
    if element is None:
        return "not started"
    return "succeeded" if isinstance(element, EmulatedRun) else f"failed: {element.code}"


def _summary(failures: dict[int, TaskFailed]) -> str:
    """One line per distinct message, with its elements' indexes as ranges (``[0-2][5]: ...``), sorted by
    message, as flytepropeller's error collector sums sub-node errors up (flyteplugins ``errorcollector``)."""
    by_message: dict[str, list[int]] = {}
    for index, failure in failures.items():
        by_message.setdefault(f"{failure.code}: {failure.message}", []).append(index)
    return "".join(f"{_ranges(sorted(indexes))}: {message}\n" for message, indexes in sorted(by_message.items()))


def _ranges(indexes: list[int]) -> str:
    spans: list[list[int]] = []
    for i in indexes:
        if spans and spans[-1][1] == i - 1:
            spans[-1][1] = i
        else:
            spans.append([i, i])
    return "".join(f"[{a}]" if a == b else f"[{a}-{b}]" for a, b in spans)
