"""Benchmark environments that survive pods: a script task in a fresh container of the script image (a pod's empty
disk), its requirements pandas + scikit-learn, three ways, interleaved in one run, medians:

- cold: nothing stored, the environment is installed (uv, bytecode compiled, no uv cache: a fresh container) and
  then stored (packed and uploaded; its seconds are part of the run and shown apart);
- from the store: the archive the cold run stored is downloaded and unpacked (``executors/script/env_store.py``);
- on the pod's disk: the environment is already in the cache folder (what an image with the environment built in
  gives, ``docs/images.md``, not counting pulling that image's extra layer, about the archive's size unpacked).

Each run is ``Emulator.run(..., in_container=True)``: container start, executor, environment, command. The store is
a folder here (the emulator's object store), so the download is a local copy; on a cluster add the archive's size
over the node's bandwidth to the object store. The summary rewrites this benchmark's section of
``docs/benchmarks.md`` (``<!-- env-store-bench:start -->`` to ``<!-- env-store-bench:end -->``).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from doc_sections import write_section  # bench/ is on sys.path: this is run as a script

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
DOC = ROOT / "docs" / "benchmarks.md"
REQUIREMENTS = ("pandas==2.2.3", "scikit-learn==1.5.2")
COMMAND = "import json, os, pandas, sklearn; json.dump({'ok': 1}, open(os.environ['PREBUILT_OUTPUTS_FILE'], 'w'))"
STORED = re.compile(r"stored at \S+ \((\d+) MiB, ([\d.]+)s\)")
FETCHED = re.compile(r"fetched from \S+ in ([\d.]+)s")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/benchmarks.md")
    args = parser.parse_args()

    from flytekitplugins.prebuilt.emulator import Emulator
    from flytekitplugins.prebuilt.script import ScriptTask

    from build_tools.building import Builder

    subprocess.run(["bash", str(ROOT / "scripts/ensure-docker.sh")], check=True)
    image = Builder().build("script")
    scratch = Path(tempfile.mkdtemp(prefix="bench-env-store-"))
    project = scratch / "project"
    project.mkdir()
    (project / "requirements.txt").write_text("\n".join(REQUIREMENTS) + "\n")
    task = ScriptTask("bench_env", source=str(project), command=["python", "-c", COMMAND], outputs={"ok": int})
    base_env, mounts = {"FLYTE_SDK_LOGGING_LEVEL": "20"}, []
    if os.environ.get("PIP_CERT"):  # the package index is reached through a TLS-inspecting proxy here
        base_env["SSL_CERT_FILE"], mounts = os.environ["PIP_CERT"], [os.environ["PIP_CERT"]]

    def run(root: Path, env: dict, extra_mounts=()) -> tuple[float, str]:
        root.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        done = Emulator(str(root), env={**base_env, **env}, mounts=[*mounts, *extra_mounts]).run(
            task, {}, image=image, in_container=True
        )
        return time.perf_counter() - started, done.logs

    results: dict[str, list[float]] = {"cold": [], "store": [], "disk": [], "store_s": [], "fetch_s": []}
    size_mib = 0
    for round_ in range(1, args.rounds + 1):
        root = scratch / f"round{round_}"
        store = root / "prebuilt-envs"
        seconds, logs = run(root, {"PREBUILT_ENV_STORE": str(store)})
        stored = STORED.search(logs)
        assert stored and "installing" in logs, logs[-3000:]
        size_mib = int(stored.group(1))
        results["cold"].append(seconds)
        results["store_s"].append(float(stored.group(2)))
        log(f"[{round_}] cold install + store: {seconds:.1f}s (storing {stored.group(2)}s, {size_mib} MiB)")
        seconds, logs = run(root, {"PREBUILT_ENV_STORE": str(store), "UV_OFFLINE": "1"})
        fetched = FETCHED.search(logs)
        assert fetched and "installing" not in logs, logs[-3000:]
        results["store"].append(seconds)
        results["fetch_s"].append(float(fetched.group(1)))
        log(f"[{round_}] from the store: {seconds:.1f}s (download + unpack {fetched.group(1)}s)")
        (archive,) = store.glob("*/*.tar.gz")
        cache = root / "disk-cache"
        (cache / archive.name.removesuffix(".tar.gz")).mkdir(parents=True)
        subprocess.run(
            ["tar", "-xzf", str(archive), "-C", str(cache / archive.name.removesuffix(".tar.gz"))], check=True
        )
        subprocess.run(["chmod", "-R", "a+rwX", str(cache)], check=True)
        seconds, logs = run(
            root, {"PREBUILT_ENV_CACHE": str(cache), "PREBUILT_ENV_STORE": "off", "UV_OFFLINE": "1"}, [str(cache)]
        )
        assert "installing" not in logs, logs[-3000:]
        results["disk"].append(seconds)
        log(f"[{round_}] on the pod's disk: {seconds:.1f}s")
    subprocess.run(["rm", "-rf", str(scratch)], check=False)
    text = section(results, size_mib, args.rounds)
    print(text)
    if not args.no_doc:
        write_section(str(DOC), "env-store-bench", text)
        log(f"wrote the env-store-bench section of {DOC}")


def section(results: dict[str, list[float]], size_mib: int, rounds: int) -> str:
    def row(label: str, key: str) -> str:
        values = results[key]
        return f"| {label} | {statistics.median(values):.1f} | {', '.join(f'{v:.1f}' for v in values)} |"

    cold, warm = statistics.median(results["cold"]), statistics.median(results["store"])
    with open("/proc/cpuinfo") as f:
        cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    return f"""## Environments across pods

A script task whose requirements are `{" ".join(REQUIREMENTS)}`, run in a fresh container of the script image
each time (a pod's empty disk, no volume), through the emulator (`bench/env_store.py`): container start, executor,
environment, command. {rounds} rounds, the three ways interleaved; medians.

### Reproduce

```
.venv/bin/python bench/env_store.py --rounds {rounds}
```

Run on {datetime.datetime.now().strftime("%Y-%m-%d %H:%M")}: {os.cpu_count()} cores (nproc), {cpu};
{platform.platform()}. The package index is reached through this machine's proxy; the store is a local folder
(a download is a copy).

### Results

| run in a fresh container | median s | runs, s |
|---|---:|---|
{row("cold: install (no uv cache), then store the environment", "cold")}
{row("&nbsp;&nbsp;of which storing it (tar + gzip -1, upload)", "store_s")}
{row("**from the store**: download + unpack, install nothing", "store")}
{row("&nbsp;&nbsp;of which download + unpack", "fetch_s")}
{row("already on the pod's disk (an image with the environment built in)", "disk")}

- The stored archive is {size_mib} MiB. A fresh pod that finds it starts {cold / warm:.1f}x faster than one that
  installs ({warm:.1f} s against {cold:.1f} s); on a cluster add the download of {size_mib} MiB.
- An image with the environment built in starts fastest once pulled, but needs an image build and a registry for
  every change of the requirements, and its layer is pulled by every new node: the object store is the default
  (nothing to build, nothing to configure), the image the choice for the largest environments
  ([docs/images.md](images.md)).
"""


if __name__ == "__main__":
    main()
