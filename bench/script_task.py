"""Child process of ``bench/script_env.py``: times calls of the quickstart's ``train`` ScriptTask.

Its own process so that a cold call starts from a fresh interpreter; ``PREBUILT_ENV_CACHE`` (and
``UV_CACHE_DIR``) come from the parent. Writes its timings as JSON to ``--out``.

- ``cold``: the first ``train(epochs=1)`` call (environment built if the cache is empty).
- ``warm``: with the environment already cached, after one warm-up each, ``--repeats`` interleaved rounds of
  the task call, the same command run directly in that environment (``<venv>/bin/python train.py --epochs 1``
  in a copy of the project), and the environment lookup alone (``detect`` + ``ensure_environment``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "examples" / "script_project"
sys.path.insert(0, str(ROOT / "examples"))


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return round(time.perf_counter() - start, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["cold", "warm"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    from flytekitplugins.prebuilt.executors.script import environments as script_env
    from flytekitplugins.prebuilt.executors.script import locks
    from script_quickstart import train  # the example's own task definition

    cache = os.environ["PREBUILT_ENV_CACHE"]
    if args.mode == "cold":
        assert not os.listdir(cache), f"{cache} is not empty"
        result = {"cold_task_s": timed(lambda: train(epochs=1))}
    else:
        assert list(Path(cache).glob(f"*/{locks.MARKER}")), f"no complete environment in {cache}"
        venv = script_env.ensure_environment(locks.detect(PROJECT, "requirements"), cache)
        work = Path(tempfile.mkdtemp(prefix="bench-direct-"))
        shutil.copytree(PROJECT, work / "src")
        argv = [str(script_env.venv_python(venv)), "train.py", "--epochs", "1"]
        env = {**os.environ, "PREBUILT_OUTPUTS_FILE": str(work / "outputs.json")}
        calls = {
            "task_s": lambda: train(epochs=1),
            "direct_s": lambda: subprocess.run(argv, cwd=work / "src", env=env, check=True, stdout=subprocess.PIPE),
            "lookup_s": lambda: script_env.ensure_environment(locks.detect(PROJECT, "requirements"), cache),
        }
        for call in calls.values():  # warm-up
            call()
        result = {name: [] for name in calls}
        for _ in range(args.repeats):
            for name, call in calls.items():
                result[name].append(timed(call))
        shutil.rmtree(work)
    with open(args.out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
