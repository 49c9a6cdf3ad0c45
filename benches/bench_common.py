"""Helpers shared by the benchmarks: the machine and package facts printed with each result."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from pathlib import Path


def machine_info() -> dict:
    """nproc, architecture, CPU model, memory, kernel, date."""
    cpu, mem_kib = "unknown", 0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "arch": platform.machine(),
        "cpu": cpu,
        "mem_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }


def package_version(python: str | Path, package: str) -> str:
    """Version of ``package`` as installed for ``python``."""
    code = f"import importlib.metadata as m; print(m.version({package!r}))"
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else "?"


def git_commit(repo: Path) -> str:
    """Short commit of the checkout, with ``+dirty`` when tracked files changed."""

    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else "?"

    dirty = git("status", "--porcelain", "--untracked-files=no")
    return git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else "")


def print_header(command: str, machine: dict, versions: dict) -> None:
    """The command, machine, date and versions lines every bench prints first."""
    print(f"command: {command}")
    print(
        f"machine: {machine['nproc']} CPUs ({machine['cpu']}), {machine['arch']}, "
        f"{machine['mem_gib']} GiB RAM, Linux {machine['kernel']}, Python {machine['python']}"
    )
    print(f"date:    {machine['date']}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
