"""The run's ``report.md``: a summary table, the evaluation of every model side by side, one
section per step (what went in, what came out, counts, drops, metrics, time) and PNG plots
(training curves per SFT stage and DPO round, pair counts, evaluation) when matplotlib is
installed."""

from __future__ import annotations

import json
from pathlib import Path

from plamo_fast.recipe import record as rec
from plamo_fast.recipe.spec import Recipe

REPORT = "report.md"


def records(recipe: Recipe) -> list[dict | None]:
    return [rec.read_json(s.folder / rec.RECORD) for s in recipe.steps]


def _model_of(recipe: Recipe, path: str) -> str:
    """The step whose output ``path`` is (or the path itself)."""
    for step in recipe.steps:
        if Path(path) == step.output():
            return step.name
    return path


def eval_rows(recipe: Recipe) -> list[tuple[str, str, dict]]:
    """(eval step, model, metrics) of every finished evaluation."""
    rows = []
    for step, record in zip(recipe.steps, records(recipe), strict=True):
        if record and step.kind.name.startswith("eval"):
            model = _model_of(recipe, getattr(step.params, "model", ""))
            rows.append((step.name, model, record.get("metrics") or {}))
    return rows


def summary_table(recipe: Recipe) -> str:
    lines = ["| step | kind | state | seconds | result |", "| --- | --- | --- | ---: | --- |"]
    for step, record in zip(recipe.steps, records(recipe), strict=True):
        state = "done" if record else "not run"
        seconds = f"{record['seconds']:.1f}" if record else ""
        lines.append(
            f"| {step.name} | {step.kind.name} | {state} | {seconds} | {_headline(record)} |"
        )
    return "\n".join(lines)


def _headline(record: dict | None) -> str:
    if not record:
        return ""
    m = record.get("metrics") or {}
    kind = record.get("kind")
    if kind == "eval_math":
        return f"accuracy {m.get('correct')}/{m.get('problems')} = {m.get('accuracy', 0):.1%}"
    if kind in ("sft", "dpo") and "loss" in m:
        text = f"loss {m.get('first_loss', 0):.3f} -> {m['loss']:.3f} in {m.get('step')} steps"
        if "rewards/accuracy" in m:
            text += f", reward accuracy {m['rewards/accuracy']:.2f}"
        return text
    outs = record.get("outputs") or {}
    counts = [f"{k}: {v['records']}" for k, v in outs.items() if v.get("records") is not None]
    dropped = m.get("dropped")
    if isinstance(dropped, dict) and dropped:
        counts.append("dropped " + ", ".join(f"{k} {v}" for k, v in dropped.items()))
    return "; ".join(counts)


def eval_table(recipe: Recipe) -> str:
    rows = eval_rows(recipe)
    if not rows:
        return ""
    lines = ["| model | evaluation | result |", "| --- | --- | --- |"]
    for name, model, m in rows:
        lines.append(f"| {model} | {name} | {_eval_result(m)} |")
    return "\n".join(lines)


def _eval_result(m: dict) -> str:
    """One evaluation's headline: accuracy (verified answers), the judge's mean rating with
    the judgements that failed, or the metrics as they are."""
    if isinstance(m.get("accuracy"), float):
        return f"{m.get('correct')}/{m.get('problems')} correct = {m['accuracy']:.1%}"
    if "average" in m and "failed" in m:
        average = m["average"]
        shown = f"{average:.2f}" if average is not None else "n/a"
        counts = f"{m.get('judgements')} judged, {m['failed']} failed"
        return f"judge's mean rating {shown} / 10 ({counts})"
    return json.dumps(m)[:80]


def write_report(recipe: Recipe) -> Path:
    """Writes ``RUN/report.md`` (and ``RUN/plots/*.png``); returns its path."""
    run_dir = recipe.run_dir
    plots = _plots(recipe, run_dir / "plots")
    parts = [
        f"# Recipe {recipe.name}",
        "",
        recipe.description.strip(),
        "",
        f"Recipe file: `{recipe.path}`. Run folder: `{run_dir}`.",
        "",
        "## Summary",
        "",
        summary_table(recipe),
        "",
    ]
    table = eval_table(recipe)
    if table:
        parts += ["## Evaluation", "", table, ""]
    if plots:
        parts += ["## Plots", ""] + [f"![{p.stem}](plots/{p.name})" for p in plots] + [""]
    for step, record in zip(recipe.steps, records(recipe), strict=True):
        parts += _section(step, record, run_dir)
    path = run_dir / REPORT
    tmp = path.with_name(f".{REPORT}.tmp")
    tmp.write_text("\n".join(parts) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def _section(step, record: dict | None, run_dir: Path) -> list[str]:
    lines = [f"## {step.name} ({step.kind.name})", ""]
    if record is None:
        return lines + ["Not run.", ""]
    lines += [
        f"Ran {record['started']} to {record['finished']} ({record['seconds']:.1f} s), "
        f"plamo-fast {record['plamo_fast_version']}, fingerprint `{record['fingerprint'][:12]}`.",
        "",
        "Parameters:",
        "",
        "```json",
        json.dumps(record.get("settings"), indent=2, ensure_ascii=False),
        "```",
        "",
        "Inputs:",
        "",
    ]
    lines += [f"- `{_short(p, run_dir)}` (`{d[:12]}`)" for p, d in record["inputs"].items()]
    lines += ["", "Outputs:", ""]
    for name, out in record["outputs"].items():
        count = f", {out['records']} records" if out.get("records") is not None else ""
        lines.append(f"- {name}: `{step.name}/{out['path']}` (`{out['digest'][:12]}`{count})")
    curves = step.folder / "model" / "training_curves.png"
    if curves.is_file():
        lines += ["", f"![training curves]({step.name}/model/training_curves.png)"]
    lines += ["", "Metrics:", "", "```json",
              json.dumps(record.get("metrics"), indent=2, ensure_ascii=False, default=str),
              "```", ""]  # fmt: skip
    return lines


def _short(path: str, run_dir: Path) -> str:
    try:
        return str(Path(path).relative_to(run_dir))
    except ValueError:
        return path


def _plots(recipe: Recipe, folder: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for kind, keys in (("sft", ("loss",)), ("dpo", ("loss", "rewards/margin", "rewards/accuracy"))):
        curves = _curves(recipe, kind)
        if not curves:
            continue
        fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.5), squeeze=False)
        for ax, key in zip(axes[0], keys, strict=True):
            for name, rows in curves.items():
                points = [(r["step"], r[key]) for r in rows if key in r and "step" in r]
                if points:
                    ax.plot(*zip(*points, strict=True), label=name)
            ax.set_title(f"{kind} {key}")
            ax.set_xlabel("step")
            ax.legend(fontsize=7)
        fig.tight_layout()
        made.append(_save(fig, folder / f"{kind}_curves.png", plt))
    rows = eval_rows(recipe)
    if rows and all(isinstance(m.get("accuracy"), float) for _, _, m in rows):
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.bar([model for _, model, _ in rows], [m["accuracy"] for _, _, m in rows])
        ax.set_ylabel("held-out math accuracy")
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
        fig.tight_layout()
        made.append(_save(fig, folder / "eval_accuracy.png", plt))
    pairs = [(s.name, r) for s, r in zip(recipe.steps, records(recipe), strict=True)
             if r and s.kind.name == "pairs"]  # fmt: skip
    if pairs:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.bar([n for n, _ in pairs], [r["outputs"]["output"]["records"] or 0 for _, r in pairs])
        ax.set_ylabel("pairs")
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
        fig.tight_layout()
        made.append(_save(fig, folder / "pairs.png", plt))
    return made


def _save(fig, path: Path, plt) -> Path:
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _curves(recipe: Recipe, kind: str) -> dict[str, list[dict]]:
    out = {}
    for step in recipe.steps:
        metrics = step.folder / "model" / "metrics.jsonl"
        if step.kind.name == kind and (step.folder / rec.RECORD).is_file() and metrics.is_file():
            rows = [
                json.loads(x) for x in metrics.read_text(encoding="utf-8").splitlines() if x.strip()
            ]
            out[step.name] = rows
    return out
