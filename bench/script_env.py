"""Benchmark the script task type's dependency environments, on this machine, medians of several runs.

a. Cold install, uv vs pip: the same requirements into a fresh venv with nothing cached, per run. uv with an
   empty ``UV_CACHE_DIR``, plain and with ``--compile-bytecode`` (what the executor runs; pip compiles
   bytecode too); pip with ``--no-cache-dir``. Methods are interleaved, their order rotated each round, so
   that a busy machine or a slow proxy falls on every method alike.
b. Warm start of a ``ScriptTask`` (``bench/script_task.py``, its own process): the quickstart's
   ``train(epochs=1)`` with its environment cached, against the same command run directly in that
   environment; the difference is what the task adds (bundle verify + extract, environment lookup, output
   collection). The first call with an empty environment cache is timed for contrast.

Raw runs go to ``bench/results/`` (git-ignored); the summary rewrites this benchmark's section of
``docs/benchmarks.md`` (``<!-- script-bench:start -->`` to ``<!-- script-bench:end -->``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from doc_sections import write_section  # bench/ is on sys.path: this is run as a script

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
DOC = os.path.join(ROOT, "docs", "benchmarks.md")

REQUIREMENTS = ("pandas==2.2.3", "scikit-learn==1.5.2", "requests==2.32.3")
METHODS = ("uv", "uv --compile-bytecode", "pip")
TARGET_OVERHEAD_S = 1.0
UV = shutil.which("uv", path=os.path.dirname(sys.executable)) or shutil.which("uv") or "uv"

# Installers compile bytecode themselves: keep PYTHONDONTWRITEBYTECODE and a pycache prefix out of their way.
BASE_ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
# pip here reads a config with extra local file indexes and a wheel folder, which uv does not read:
# without them both installers fetch from the same index (PyPI, through the machine's proxy).
PIP_ENV = {**{k: v for k, v in BASE_ENV.items() if k != "PIP_FIND_LINKS"}, "PIP_CONFIG_FILE": os.devnull}
# Task children cache bytecode (under bench/results/) as an installed image would, like bench/run.py's.
TASK_ENV = {**BASE_ENV, "PYTHONPYCACHEPREFIX": os.path.join(RESULTS, "pycache")}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(command: list[str], env: dict, output: str) -> tuple[float, float]:
    """Run ``command`` (output appended to the file ``output``); its wall and CPU seconds (children included)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(output, "a") as out:
        done = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        with open(output) as out:
            sys.exit(f"{command[:4]} failed ({done.returncode}); see {output}:\n" + out.read()[-3000:])
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def install_once(method: str, requirements: str, output: str) -> dict:
    """One cold install into a fresh venv in a fresh temporary directory; venv creation and install timed apart."""
    tmp = tempfile.mkdtemp(prefix="bench-install-")
    venv = os.path.join(tmp, "venv")
    python = os.path.join(venv, "bin", "python")
    try:
        if method.startswith("uv"):
            env = {**BASE_ENV, "UV_CACHE_DIR": os.path.join(tmp, "uv-cache")}
            create = [UV, "venv", "--no-project", "--quiet", "--python", sys.executable, venv]
            compile_ = ["--compile-bytecode"] if "compile" in method else []
            install = [UV, "pip", "install", "--python", python, *compile_, "-r", requirements]
        else:
            env = PIP_ENV
            create = [sys.executable, "-m", "venv", venv]
            install = [
                python,
                "-m",
                "pip",
                "install",
                "--no-cache-dir",
                "--disable-pip-version-check",
                "-q",
                "-r",
                requirements,
            ]
        venv_s, venv_cpu = run(create, env, output)
        install_s, install_cpu = run(install, env, output)
        freeze = subprocess.run([UV, "pip", "freeze", "--python", python], capture_output=True, text=True, check=True)
        pip = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, text=True)
        return {
            "method": method,
            "venv_s": round(venv_s, 3),
            "install_s": round(install_s, 3),
            "total_s": round(venv_s + install_s, 3),
            "cpu_s": round(venv_cpu + install_cpu, 3),
            "packages": [p for p in freeze.stdout.split() if p.split("==")[0] not in ("pip", "setuptools", "wheel")],
            "pip": pip.stdout.split()[1] if pip.returncode == 0 else None,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def task_child(mode: str, env: dict, out_dir: str, name: str, repeats: int = 5) -> dict:
    out = os.path.join(out_dir, f"{name}.json")
    command = [sys.executable, os.path.join(HERE, "script_task.py"), mode, "--repeats", str(repeats), "--out", out]
    run(command, env, os.path.join(out_dir, f"{name}.log"))
    with open(out) as f:
        return json.load(f)


def median(values) -> float:
    return statistics.median(values)


def runs_text(values, digits: int = 2) -> str:
    return ", ".join(f"{v:.{digits}f}" for v in values)


def machine(pip_version: str) -> list[str]:
    with open("/proc/cpuinfo") as f:
        cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    with open("/proc/meminfo") as f:
        mem = next((int(line.split()[1]) // 1024**2 for line in f if line.startswith("MemTotal")), 0)
    uv = subprocess.run([UV, "--version"], capture_output=True, text=True).stdout.strip()
    return [
        f"- CPU: {os.cpu_count()} cores (nproc), {cpu}; memory {mem} GiB; {platform.platform()}",
        f"- Python {platform.python_version()}; {uv}; pip {pip_version} (the one `python -m venv` installs)",
    ]


def section(installs: list[dict], task: dict, args, started: str, raw: str) -> str:
    """This benchmark's part of docs/benchmarks.md."""
    pip_total = median(r["total_s"] for r in installs if r["method"] == "pip")
    install_rows = []
    for method in METHODS:
        group = [r for r in installs if r["method"] == method]
        total = median(r["total_s"] for r in group)
        install_rows.append(
            f"| {method} | {median(r['venv_s'] for r in group):.2f} | {median(r['install_s'] for r in group):.2f} "
            f"| {total:.2f} | {median(r['cpu_s'] for r in group):.2f} | {pip_total / total:.1f}x "
            f"| {runs_text(r['total_s'] for r in group)} |"
        )
    same = len({tuple(sorted(r["packages"])) for r in installs}) == 1
    pip_version = next(r["pip"] for r in installs if r["method"] == "pip")
    overhead = median(task["task_s"]) - median(task["direct_s"])
    task_rows = [
        ("warm task call `train(epochs=1)`", task["task_s"]),
        ("same command run directly in the built env", task["direct_s"]),
        ("environment lookup alone (`detect` + `ensure_environment`, cache hit)", task["lookup_s"]),
        ("cold task call: env cache and uv cache empty (a fresh machine)", task["cold_fresh_s"]),
        ("cold task call: env cache empty, uv cache warm", task["cold_uv_warm_s"]),
    ]
    lines = [
        f"| {what} | {len(values)} | {median(values):.3f} | {runs_text(values, 3)} |" for what, values in task_rows
    ]
    lines.insert(2, f"| **overhead the task adds** (difference of the medians) | | **{overhead:.3f}** | |")
    met = "MET" if overhead <= TARGET_OVERHEAD_S else "NOT MET"
    versions_note = (
        "the same versions in every run of every method" if same else "versions DIFFERED between runs: see the raw runs"
    )
    return f"""## Script task environments

What the `script` task type's environments cost (`bench/script_env.py`).

**a. Cold install, uv vs pip.** `{" ".join(REQUIREMENTS)}` ({len(installs[0]["packages"])} packages with
the unpinned transitive ones; {versions_note})
into a fresh venv in a new temporary directory, nothing cached: uv with an empty `UV_CACHE_DIR` (`uv venv` +
`uv pip install -r`), also with `--compile-bytecode` as the executor runs it (pip compiles bytecode by
default, so that is the like-for-like row); pip `python -m venv` + `pip install --no-cache-dir -r` (its
machine config, which adds local file indexes, is ignored so that both fetch from PyPI through the same
proxy). {args.rounds} rounds, methods interleaved and their order rotated each round; medians. *CPU* is user +
system time of the commands and their children.

**b. Warm start of a `ScriptTask`.** The quickstart's `train(epochs=1)` (`examples/script_quickstart.py`,
project `examples/script_project`, requirement `six`) called in-process with its environment already in
`$PREBUILT_ENV_CACHE`, against `<venv>/bin/python train.py --epochs 1` run directly in a copy of the project
(with `PREBUILT_OUTPUTS_FILE` set): {args.repeats} interleaved rounds in one process after one warm-up each.
Their difference is what the task adds: bundle verify + extract, environment lookup, output collection. The
first call with an empty environment cache is timed in a fresh process per run ({args.rounds} runs), for
contrast: with only `six` to install it is cheap; heavy requirements cost what table a shows.

### Reproduce

```
.venv/bin/python bench/script_env.py --rounds {args.rounds} --repeats {args.repeats}   # part of `make bench`
```

Raw runs: `{os.path.relpath(raw, ROOT)}` (git-ignored). Run on {started}:

{chr(10).join(machine(pip_version))}

### Results

a. Cold install (seconds):

| method | venv s | install s | total s | CPU s | pip total / this total | runs, total s |
|---|---:|---:|---:|---:|---:|---|
{chr(10).join(install_rows)}

b. `ScriptTask` start (seconds):

| measurement | runs | median s | runs, s |
|---|---:|---:|---|
{chr(10).join(lines)}

### Targets

- Warm start adds <= {TARGET_OVERHEAD_S:g} s over running the command directly: {met} ({overhead:.3f} s; the
  whole warm task call takes {median(task["task_s"]):.3f} s)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="cold installs per method, cold task calls")
    parser.add_argument("--repeats", type=int, default=5, help="warm task calls (and direct runs)")
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/benchmarks.md")
    parser.add_argument("--doc", default=DOC, help="the markdown file whose script-bench section is rewritten")
    args = parser.parse_args()

    started = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    logs = os.path.join(RESULTS, f"script-env-logs-{stamp}")
    os.makedirs(logs, exist_ok=True)
    raw = os.path.join(RESULTS, f"script-env-runs-{stamp}.jsonl")
    requirements = os.path.join(logs, "requirements.txt")
    with open(requirements, "w") as f:
        f.write("\n".join(REQUIREMENTS) + "\n")
    scratch = tempfile.mkdtemp(prefix="bench-script-env-")

    with open(raw, "w") as out:

        def record(entry: dict) -> None:
            out.write(json.dumps(entry) + "\n")
            out.flush()

        installs = []
        for round_ in range(1, args.rounds + 1):
            shift = (round_ - 1) % len(METHODS)
            for method in METHODS[shift:] + METHODS[:shift]:
                log(f"[install {round_}/{args.rounds}] {method} ...")
                entry = install_once(
                    method, requirements, os.path.join(logs, f"install-{round_}-{method.split()[-1]}.log")
                )
                installs.append({**entry, "round": round_})
                record(installs[-1])
                log(
                    f"  venv {entry['venv_s']:.2f}s  install {entry['install_s']:.2f}s  total {entry['total_s']:.2f}s"
                    f"  CPU {entry['cpu_s']:.2f}s  {len(entry['packages'])} packages"
                )

        def fresh(name: str) -> str:
            return tempfile.mkdtemp(prefix=f"{name}-", dir=scratch)

        task_env = {**TASK_ENV, "TMPDIR": scratch}  # the executor keeps its work directories: ours go away
        uv_warm = fresh("uv-cache")
        log("[task warm-up] cold call, uncounted (fills the uv and bytecode caches)")
        task_child("cold", {**task_env, "PREBUILT_ENV_CACHE": fresh("envs"), "UV_CACHE_DIR": uv_warm}, logs, "warmup")
        task = {"cold_fresh_s": [], "cold_uv_warm_s": []}
        for round_ in range(1, args.rounds + 1):
            for kind, uv_cache in (("cold_fresh_s", fresh("uv-cache")), ("cold_uv_warm_s", uv_warm)):
                envs = fresh("envs")
                env = {**task_env, "PREBUILT_ENV_CACHE": envs, "UV_CACHE_DIR": uv_cache}
                seconds = task_child("cold", env, logs, f"{kind}-{round_}")["cold_task_s"]
                task[kind].append(seconds)
                record({"measure": kind, "round": round_, "seconds": seconds})
                log(f"[task cold {round_}/{args.rounds}] {kind}: {seconds:.3f}s")
        log(f"[task warm] {args.repeats} rounds of task call / direct command / env lookup ...")
        warm = task_child("warm", env, logs, "warm", args.repeats)  # env: the last cold run's, now populated
        task.update(warm)
        record({"measure": "warm", **warm})
        shutil.rmtree(scratch, ignore_errors=True)

    overhead = median(task["task_s"]) - median(task["direct_s"])
    log(
        f"  task {median(task['task_s']):.3f}s  direct {median(task['direct_s']):.3f}s  overhead {overhead:.3f}s "
        f"(target <= {TARGET_OVERHEAD_S:g}s: {'MET' if overhead <= TARGET_OVERHEAD_S else 'NOT MET'})"
    )
    text = section(installs, task, args, started, raw)
    with open(raw.replace("-runs-", "-summary-").replace(".jsonl", ".md"), "w") as f:
        f.write(text)
    if not args.no_doc:
        write_section(args.doc, "script-bench", text)
        log(f"wrote the script-bench section of {args.doc}")


if __name__ == "__main__":
    main()
