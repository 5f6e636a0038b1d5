"""The pod's CPU and memory limits from a template's resources, as flytepropeller sets them."""

import pytest
from flytekit.models.task import Resources
from flytekitplugins.prebuilt.emulator.resources import ContainerLimits, container_limits

R = Resources.ResourceName


def resources(requests=(), limits=()):
    return Resources(
        [Resources.ResourceEntry(n, v) for n, v in requests], [Resources.ResourceEntry(n, v) for n, v in limits]
    )


@pytest.mark.parametrize(
    "given, expected",
    [
        (None, ContainerLimits()),
        (resources(limits=[(R.MEMORY, "64Mi"), (R.CPU, "500m")]), ContainerLimits(64 * 2**20, 0.5)),
        (resources(requests=[(R.MEMORY, "1Gi"), (R.CPU, "2")]), ContainerLimits(2**30, 2.0)),  # limit := request
        (resources(requests=[(R.MEMORY, "1Gi")], limits=[(R.MEMORY, "2G")]), ContainerLimits(2 * 10**9, None)),
        (resources(limits=[(R.GPU, "1"), (R.EPHEMERAL_STORAGE, "10Gi")]), ContainerLimits(gpus=1)),  # no storage
        (resources(requests=[(R.GPU, "2")]), ContainerLimits(gpus=2)),
    ],
)
def test_limits_else_requests(given, expected):
    assert container_limits(given) == expected


def test_docker_arguments_forbid_swap_beyond_the_limit():
    assert ContainerLimits(64 * 2**20, 0.25).docker_arguments() == {
        "mem_limit": 64 * 2**20,
        "memswap_limit": 64 * 2**20,
        "nano_cpus": 250_000_000,
    }
    assert ContainerLimits().docker_arguments() == {}


def test_requested_gpus_reach_the_container_as_docker_run_gpus_gives_them():
    (request,) = ContainerLimits(gpus=2).docker_arguments()["device_requests"]
    assert request["Count"] == 2 and request["Capabilities"] == [["gpu"]]
