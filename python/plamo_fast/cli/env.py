"""``plamo-fast env``: what a bug report needs to know of this installation (as ``trl env``):
versions of plamo-fast, Python, the platform and the packages it works with, CUDA and the GPUs,
and which generation backends and extras are usable. Packages are looked up without being
imported (``importlib.util.find_spec``, ``importlib.metadata``), but for torch, imported when
installed to ask for CUDA and the GPUs; vLLM and DeepSpeed are never imported."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import sys

import typer

# (label, module, distribution), in the order of the report.
PACKAGES = [
    ("PyTorch", "torch", "torch"),
    ("transformers", "transformers", "transformers"),
    ("accelerate", "accelerate", "accelerate"),
    ("DeepSpeed", "deepspeed", "deepspeed"),
    ("vLLM", "vllm", "vllm"),
    ("polars", "polars", "polars"),
    ("datasets", "datasets", "datasets"),
    ("pyarrow", "pyarrow", "pyarrow"),
    ("numpy", "numpy", "numpy"),
]
NOT_INSTALLED = "not installed"


def find_spec(module: str):
    """``importlib.util.find_spec``, None for a module that cannot be found (or whose spec a
    test replaced)."""
    try:
        return importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None


def package_version(module: str, distribution: str) -> str | None:
    """The installed version, "installed" when the package has no metadata, None when the
    module cannot be found."""
    if find_spec(module) is None:
        return None
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "installed"


def torch_report() -> dict | None:
    """CUDA as torch sees it (torch is imported: slow, but the only way to ask), None without
    torch."""
    if find_spec("torch") is None:
        return None
    try:
        import torch
    except Exception as exc:  # installed but broken: that is what the report is for
        return {"error": f"import torch failed: {type(exc).__name__}: {exc}"}
    available = torch.cuda.is_available()
    gpus = []
    for i in range(torch.cuda.device_count() if available else 0):
        props = torch.cuda.get_device_properties(i)
        gpus.append({"name": props.name, "memory_gib": round(props.total_memory / 2**30, 1)})
    mps = getattr(torch.backends, "mps", None)
    return {
        "cuda": torch.version.cuda,
        "cuda_available": available,
        "gpus": gpus,
        "mps_available": bool(mps and mps.is_available()),
    }


def backends_report(packages: dict, torch_info: dict | None) -> dict:
    """Each generation backend: "usable" or why not."""
    missing_hf = [m for m in ("torch", "transformers") if packages[m] is None]
    cuda = bool(torch_info and torch_info.get("cuda_available"))
    if packages["vllm"] is None:
        vllm = "not installed (pip install 'plamo-fast[vllm]')"
    else:
        vllm = "usable" if cuda else "installed, but no CUDA GPU"
    return {
        "openai": "usable",  # the standard library is enough
        "hf": f"needs {', '.join(missing_hf)} (pip install 'plamo-fast[train]')"
        if missing_hf
        else "usable",
        "vllm": vllm,
        "auto without --base-url": "vllm" if vllm == "usable" else "hf",
    }


def extras_report() -> dict:
    """Each extra of plamo-fast: "usable" when every package it names is installed, else the
    missing ones."""
    try:
        requires = importlib.metadata.requires("plamo-fast") or []
    except importlib.metadata.PackageNotFoundError:
        return {}
    needs: dict[str, list[str]] = {}
    for requirement in requires:
        extra = re.search(r"""extra\s*==\s*['"]([^'"]+)['"]""", requirement)
        name = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
        if extra and name:
            needs.setdefault(extra.group(1), []).append(name.group(0))
    report = {}
    for extra, names in needs.items():
        missing = [n for n in names if not _installed(n)]
        report[extra] = f"missing {', '.join(missing)}" if missing else "usable"
    return report


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def collect() -> dict:
    """Everything the report shows, as JSON-ready values (None: not installed)."""
    from plamo_fast import __version__, _native

    packages = {module: package_version(module, dist) for _, module, dist in PACKAGES}
    torch_info = torch_report() if packages["torch"] is not None else None
    libc, libc_version = platform.libc_ver()
    return {
        "plamo_fast": {"version": __version__, "native_extension": _native.__file__},
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "platform": {
            "system": platform.platform(),
            "machine": platform.machine(),
            "libc": f"{libc} {libc_version}" if libc else None,
            "cpus": os.cpu_count(),
        },
        "packages": packages,
        "torch": torch_info,
        "backends": backends_report(packages, torch_info),
        "extras": extras_report(),
        "environment": {
            name: os.environ[name]
            for name in ("CUDA_VISIBLE_DEVICES", "HF_HUB_OFFLINE")
            if name in os.environ
        },
    }


def as_text(info: dict) -> str:
    """The report as lines to paste into an issue."""
    plamo, py, plat = info["plamo_fast"], info["python"], info["platform"]
    machine = ", ".join(x for x in (plat["machine"], plat["libc"]) if x)
    lines = [
        f"plamo-fast: {plamo['version']} ({plamo['native_extension']})",
        f"Python: {py['version']} {py['implementation']} ({py['executable']})",
        f"Platform: {plat['system']} ({machine}, {plat['cpus']} CPUs)",
    ]
    labels = {module: label for label, module, _ in PACKAGES}
    for module, version in info["packages"].items():
        lines.append(f"{labels[module]}: {version or NOT_INSTALLED}")
        if module == "torch":
            lines.extend(_cuda_lines(info["torch"]))
    lines.append("Backends: " + "; ".join(f"{k}: {v}" for k, v in info["backends"].items()))
    lines.append("Extras: " + ("; ".join(f"{k}: {v}" for k, v in info["extras"].items()) or "-"))
    lines.extend(f"{name}={value}" for name, value in info["environment"].items())
    head = "Copy-paste the following information when reporting an issue:\n\n"
    return head + "\n".join(f"- {line}" for line in lines)


def _cuda_lines(torch_info: dict | None) -> list[str]:
    if torch_info is None or "error" in torch_info:
        why = torch_info["error"] if torch_info else "no torch"
        return [f"CUDA: unknown ({why})", f"GPUs: unknown ({why})"]
    build = torch_info["cuda"] or "none (a CPU build of torch)"
    available = "yes" if torch_info["cuda_available"] else "no"
    gpus = ", ".join(f"{g['name']} ({g['memory_gib']} GiB)" for g in torch_info["gpus"])
    mps = "; MPS available" if torch_info["mps_available"] else ""
    return [f"CUDA: {build}, available: {available}{mps}", f"GPUs: {gpus or 'none'}"]


def env(
    as_json: bool = typer.Option(False, "--json", help="One JSON object instead of text."),
) -> None:
    """Versions, GPUs, and the usable backends and extras, for bug reports."""
    info = collect()
    typer.echo(json.dumps(info, ensure_ascii=False, indent=2) if as_json else as_text(info))
