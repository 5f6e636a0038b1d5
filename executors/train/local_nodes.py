"""Every node of a multi-node training job on this machine, for local runs (there is no training operator).

``python local_nodes.py '[[torchrun argv of node 0], [node 1], ...]'`` starts each node's torchrun, relays their
output (each is a child sharing this output), and exits with the first failure's exit code once all have ended.
When one node fails, the others are given a moment to notice (their collectives fail at once) and are then
stopped, as the training operator ends a PyTorchJob when one of its pods fails.

The executor runs this in a process group of its own and stops the whole group on its deadline or SIGTERM; the
nodes are in that group, so nothing more is needed here. It runs with the user's environment's python, which does
not have this package: it imports the standard library only.
"""

import json
import signal
import subprocess
import sys
import time

STOP_OTHERS_AFTER = 30.0  # seconds after the first failure


def main() -> int:
    nodes = [subprocess.Popen(argv) for argv in json.loads(sys.argv[1])]
    first_failure, failed_at = 0, None
    while any(node.poll() is None for node in nodes):
        for node in nodes:
            if node.returncode not in (None, 0) and not first_failure:
                first_failure, failed_at = node.returncode, time.monotonic()
        if failed_at is not None and time.monotonic() - failed_at > STOP_OTHERS_AFTER:
            for node in nodes:
                if node.poll() is None:
                    node.send_signal(signal.SIGTERM)
            failed_at = float("inf")
        time.sleep(0.2)
    codes = [node.returncode for node in nodes]
    return first_failure or next((code for code in codes if code), 0)


if __name__ == "__main__":
    sys.exit(main())
