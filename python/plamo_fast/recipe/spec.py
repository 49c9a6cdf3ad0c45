"""A recipe file: YAML with a launcher and a list of steps, read into typed step configs in
dependency order. Every problem (unknown kind, reference to a missing step or output, a cycle,
parameters that do not type-check) is listed at once, before anything runs.

```yaml
name: my-recipe
launcher: {executor: local, processes: 1}     # accelerate launch when processes > 1
                                              # (executor slurm: see plamo_fast.recipe.slurm)
steps:
  - name: math
    kind: synth_math
    params: {n: 1000, holdout: 0.1}
  - name: sft
    kind: sft
    params: {model: base, data: {raw: ["${steps.math.output}"], tokenizer: base}}
  - repeat: round              # steps round1_sample, round1_dpo, round2_sample, ...
    times: 2
    start: ${steps.sft.output} # ${round.start}: this in round 1, the `carry` step's output later
    carry: dpo
    steps:
      - name: sample
        kind: sample
        params: {model: "${round.start}", prompts: "${steps.math.output}"}
      - ...                    # ${steps.sample.output} is this round's sample step
```

References: ``${steps.NAME.output}`` (or another output of the step's kind, e.g. ``test`` of
``synth_math``), ``${recipe_dir}`` (the recipe file's folder), ``${run_dir}``; inside a repeat
block ``${round.index}`` and ``${round.start}``.

Variables: ``vars: {judge: "", rounds: 2}`` declares names with defaults, used as
``${vars.NAME}`` anywhere in the steps (a value that is only the reference keeps the default's
type); ``recipe run --set NAME=VALUE`` changes one for a run folder, which remembers it
(:data:`VARS_FILE`) for later ``run``, ``plan`` and ``status`` there. A step (or a repeat
block's step) with ``if: ${vars.NAME}`` is left out when that is empty, false, no, off or 0;
a step that refers to a step left out is refused, naming it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from plamo_fast.errors import UsageError
from plamo_fast.recipe.steps import KINDS, Kind, build_params, params_dict
from plamo_fast.train.config import _build, key

REF = re.compile(r"\$\{([^}]*)\}")
NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
EXECUTORS = ("local", "slurm")
TOP_KEYS = ("name", "description", "vars", "launcher", "steps")
VAR_REF = re.compile(r"\$\{vars\.([^}]*)\}")
VARS_FILE = "recipe.vars.json"  # in the run folder: the --set values of its runs
FALSE = ("", "0", "false", "no", "off")


class RecipeError(UsageError):
    """A recipe that cannot run; the message lists every problem found."""


@dataclass
class Launcher:
    executor: str = key(
        "local", "local (this machine) or slurm (one sbatch job per step); the recipe's only."
    )
    processes: int = key(1, "Processes per machine of a training step (accelerate launch > 1).")
    machines: int = key(1, "Machines of a training step (its Slurm job's nodes).")
    accelerate_config: str | None = key(None, "accelerate config file of the training steps.")
    gpus_per_node: int = key(0, "GPUs a step's Slurm job asks for per node (0: none asked).")
    slurm: list[str] = key([], "Extra sbatch options (executor slurm; a step's replace these).")


@dataclass
class Step:
    name: str
    kind: Kind
    # Every parameter (defaults filled in), with the run and recipe folders written as
    # ${run_dir} and ${recipe_dir}: what the fingerprint is made of (a moved run keeps it).
    settings: dict
    params: object  # typed, references replaced by paths
    folder: Path
    launcher: Launcher
    deps: list[str] = field(default_factory=list)
    places: dict = field(default_factory=dict)  # recipe_dir and run_dir

    def relocatable(self, path: str) -> str:
        """``path`` written from ``${run_dir}`` or ``${recipe_dir}`` when it lies there."""
        return _relocatable(self.places)(path)

    def output(self, name: str = "output") -> Path:
        return self.folder / self.kind.outputs[name]


@dataclass
class Recipe:
    name: str
    description: str
    path: Path
    run_dir: Path
    launcher: Launcher
    steps: list[Step]  # in dependency order
    variables: dict = field(default_factory=dict)  # every var's value in this run
    off: list[str] = field(default_factory=list)  # steps left out by their `if`

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)

    def downstream(self, name: str) -> list[str]:
        """Every step that depends on ``name``, directly or not."""
        found: set[str] = {name}
        for step in self.steps:
            if any(d in found for d in step.deps):
                found.add(step.name)
        return [s.name for s in self.steps if s.name in found and s.name != name]


def load_recipe(
    path: str | Path, run_dir: str | Path, settings: dict[str, str] | None = None
) -> Recipe:
    """Reads and checks ``path``; step folders are ``run_dir/NAME``. ``settings``: ``--set``
    values, over those the run folder remembers (:func:`stored_settings`)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: malformed YAML: {exc}") from None
    return parse_recipe(raw, path, Path(run_dir), stored_settings(run_dir) | (settings or {}))


def stored_settings(run_dir: str | Path) -> dict[str, str]:
    """The ``--set`` values a run folder remembers (none for a new one)."""
    file = Path(run_dir) / VARS_FILE
    if not file.is_file():
        return {}
    try:
        values = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RecipeError(f"{file}: malformed JSON ({exc}); remove it or fix it") from None
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        raise RecipeError(f"{file}: expected an object of strings")
    return values


def remember_settings(recipe: Recipe, settings: dict[str, str]) -> None:
    """Keeps ``settings`` (with those remembered before) in the run folder, atomically."""
    from plamo_fast.recipe.runner import check_run_dir

    values = stored_settings(recipe.run_dir) | settings
    if not values:
        return
    check_run_dir(recipe.run_dir)  # never into a folder of something else
    file = recipe.run_dir / VARS_FILE
    tmp = file.with_name(f".{VARS_FILE}.tmp")
    tmp.write_text(json.dumps(values, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(file)


def parse_settings(items: list[str] | None) -> dict[str, str]:
    """``["judge=/models/j", "rounds=3"]`` as a mapping (``--set``)."""
    settings = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not NAME.match(name.strip()):
            raise RecipeError(f"--set {item!r}: expected NAME=VALUE")
        settings[name.strip()] = value
    return settings


def parse_recipe(raw, path: Path, run_dir: Path, settings: dict[str, str] | None = None) -> Recipe:
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: expected a mapping with `steps` at the top level")
    for name in raw:
        if name not in TOP_KEYS:
            problems.append(f"{name}: unknown key (known: {', '.join(TOP_KEYS)})")
    launcher = _launcher(raw.get("launcher") or {}, "launcher", problems)
    items = raw.get("steps")
    if not isinstance(items, list) or not items:
        problems.append("steps: a list of steps is needed")
        items = []
    variables = _variables(raw.get("vars"), settings or {}, problems)
    items = _map_strings(items, _var_substitution(variables, problems))
    written = _expand(items, problems)
    off = [w["name"] for w in written if not _on(w["if"])]
    written = [w for w in written if w["name"] not in off]
    names = [w["name"] for w in written]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"steps: two steps are named {name!r}")
    kinds = {w["name"]: KINDS.get(w["kind"]) for w in written}
    run_dir = run_dir.absolute()
    fixed = {"recipe_dir": str(path.parent.resolve()), "run_dir": str(run_dir)}
    steps = []
    for w in written:
        where = f"steps.{w['name']}"
        kind = KINDS.get(w["kind"])
        if kind is None:
            problems.append(
                f"{where}.kind: unknown step kind {w['kind']!r} (known: {', '.join(KINDS)})"
            )
        deps = _references(w, kinds, problems, off)
        resolved = _substitute(w["params"], _resolver(fixed, kinds, run_dir))
        step_launcher = _launcher({**_asdict(launcher), **w["launcher"]}, f"{where}.launcher",
                                  problems)  # fmt: skip
        if step_launcher.executor != launcher.executor:
            problems.append(f"{where}.launcher.executor: the executor is the recipe's "
                            "(launcher.executor), not a step's")  # fmt: skip
        if kind is None:
            continue
        folder = run_dir / w["name"]
        params = build_params(kind, resolved, f"{where}.params", folder / "model", problems)
        settings = json.loads(json.dumps(params_dict(params)))  # tuples as lists, like a record
        settings = _map_strings(settings, _relocatable(fixed))
        steps.append(Step(w["name"], kind, settings, params, folder, step_launcher, deps, fixed))
    ordered = _order(steps, problems)
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise RecipeError(f"{path}: {len(problems)} problem(s) in the recipe:\n{listing}")
    return Recipe(
        str(raw.get("name") or path.stem), str(raw.get("description") or ""), path, run_dir,
        launcher, ordered, variables, off,
    )  # fmt: skip


def _variables(raw, settings: dict[str, str], problems: list[str]) -> dict:
    """The declared vars with ``settings`` applied (read as the default's type)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        problems.append("vars: expected a mapping of names to default values")
        raw = {}
    values = {}
    for name, default in raw.items():
        if not isinstance(name, str) or not NAME.match(name):
            problems.append(f"vars.{name}: a name of letters, digits, _ . -")
        elif default is not None and not isinstance(default, str | int | float | bool):
            problems.append(f"vars.{name}: the default is a string, number or boolean")
        else:
            values[name] = "" if default is None else default
    for name, text in settings.items():
        if name not in values:
            known = ", ".join(values) or "none"
            problems.append(f"--set {name}: the recipe declares no such var (vars: {known})")
            continue
        values[name] = _typed(name, text, values[name], problems)
    return values


def _typed(name: str, text: str, default, problems: list[str]):
    try:
        if isinstance(default, bool):
            if text.strip().lower() not in ("true", "yes", "on", "1", *FALSE):
                raise ValueError(text)
            return text.strip().lower() not in FALSE
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
    except ValueError:
        wanted = {bool: "true or false", int: "an integer", float: "a number"}[type(default)]
        problems.append(f"--set {name}={text}: expected {wanted}")
        return default
    return text


def _var_substitution(variables: dict, problems: list[str]):
    def unknown(name: str) -> None:
        known = ", ".join(variables) or "none"
        problems.append(f"steps: ${{vars.{name}}} is not declared (vars: {known})")

    def substitute(text: str):
        whole = VAR_REF.fullmatch(text)
        if whole:
            if whole.group(1) not in variables:
                unknown(whole.group(1))
                return ""
            return variables[whole.group(1)]

        def one(m: re.Match) -> str:
            if m.group(1) not in variables:
                unknown(m.group(1))
                return ""
            return str(variables[m.group(1)])

        return VAR_REF.sub(one, text)

    return substitute


def _on(condition) -> bool:
    """Whether a step's ``if`` lets it run."""
    if isinstance(condition, str):
        return condition.strip().lower() not in FALSE
    return bool(condition)


def _relocatable(fixed: dict):
    """A path that starts with the run (or recipe) folder, written from ``${run_dir}``; the
    longer folder first (the run folder may lie in the recipe's)."""
    longest_first = sorted(fixed.items(), key=lambda item: -len(item[1]))

    def replace(text: str) -> str:
        for name, value in longest_first:
            if text == value or text.startswith(value.rstrip("/") + "/"):
                return "${" + name + "}" + text[len(value) :]
        return text

    return replace


def _asdict(launcher: Launcher) -> dict:
    import dataclasses

    return dataclasses.asdict(launcher)


def _launcher(raw, where: str, problems: list[str]) -> Launcher:
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected a mapping")
        return Launcher()
    launcher = _build(Launcher, raw, where + ".", problems)
    if launcher.executor not in EXECUTORS:
        problems.append(f"{where}.executor: {launcher.executor!r} is not one of local, slurm")
    if launcher.processes < 1 or launcher.machines < 1:
        problems.append(f"{where}: processes and machines must be at least 1")
    if launcher.gpus_per_node < 0:
        problems.append(f"{where}.gpus_per_node: must be at least 0")
    return launcher


def _expand(items: list, problems: list[str]) -> list[dict]:
    """Steps as dicts (name, kind, params, launcher, after), repeat blocks unrolled."""
    out: list[dict] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            problems.append(f"steps.{i}: expected a mapping (a step or a repeat block)")
        elif "repeat" in item:
            out += _unroll(item, i, problems)
        else:
            step = _step_dict(item, f"steps.{i}", problems)
            if step:
                out.append(step)
    return out


STEP_KEYS = ("name", "kind", "params", "launcher", "after", "if")
REPEAT_KEYS = ("repeat", "times", "start", "carry", "steps")


def _step_dict(item: dict, where: str, problems: list[str]) -> dict | None:
    unknown = [k for k in item if k not in STEP_KEYS]
    for k in unknown:
        problems.append(f"{where}.{k}: unknown key (known: {', '.join(STEP_KEYS)})")
    name, kind = item.get("name"), item.get("kind")
    if not isinstance(name, str) or not NAME.match(name):
        problems.append(f"{where}.name: a step needs a name of letters, digits, _ . -")
        return None
    if not isinstance(kind, str):
        problems.append(f"steps.{name}.kind: needed")
        kind = ""
    params = item.get("params") or {}
    if not isinstance(params, dict):
        problems.append(f"steps.{name}.params: expected a mapping")
        params = {}
    after = item.get("after") or []
    if not isinstance(after, list) or not all(isinstance(a, str) for a in after):
        problems.append(f"steps.{name}.after: expected a list of step names")
        after = []
    launcher = item.get("launcher") or {}
    return {"name": name, "kind": kind, "params": params, "launcher": launcher, "after": after,
            "if": item.get("if", True)}  # fmt: skip


def _unroll(item: dict, i: int, problems: list[str]) -> list[dict]:
    where = f"steps.{i} (repeat)"
    for k in item:
        if k not in REPEAT_KEYS:
            problems.append(f"{where}.{k}: unknown key (known: {', '.join(REPEAT_KEYS)})")
    prefix, times = item.get("repeat"), item.get("times")
    if not isinstance(prefix, str) or not NAME.match(prefix):
        problems.append(f"{where}.repeat: the block's name (its steps are NAME1_STEP, ...)")
        return []
    if not isinstance(times, int) or isinstance(times, bool) or times < 1:
        problems.append(f"{where}.times: a positive number of rounds")
        return []
    inner = [_step_dict(s, f"{where}.steps.{j}", problems) if isinstance(s, dict) else None
             for j, s in enumerate(item.get("steps") or [])]  # fmt: skip
    inner = [s for s in inner if s]
    if not inner:
        problems.append(f"{where}.steps: the steps of one round are needed")
        return []
    local = {s["name"] for s in inner}
    carry = item.get("carry")
    if carry is not None and carry not in local:
        problems.append(f"{where}.carry: {carry!r} is not a step of the block")
    uses_start = any("${round.start}" in yaml.safe_dump(s["params"]) for s in inner)
    if uses_start and (item.get("start") is None or carry is None):
        problems.append(f"{where}: ${{round.start}} needs `start` (round 1) and `carry`")
    out = []
    for r in range(1, times + 1):
        start = item.get("start") if r == 1 else f"${{steps.{prefix}{r - 1}_{carry}.output}}"

        def rewrite(text: str, r=r, start=start):
            if text == "${round.index}":
                return r  # a number where the whole value is the round's

            def one(m: re.Match) -> str:
                ref = m.group(1)
                if ref == "round.index":
                    return str(r)
                if ref == "round.start":
                    return str(start)
                parts = ref.split(".")
                if len(parts) == 3 and parts[0] == "steps" and parts[1] in local:
                    return f"${{steps.{prefix}{r}_{parts[1]}.{parts[2]}}}"
                return m.group(0)

            return REF.sub(one, text)

        for s in inner:
            out.append(
                {
                    **s,
                    "name": f"{prefix}{r}_{s['name']}",
                    "params": _map_strings(s["params"], rewrite),
                    "after": [f"{prefix}{r}_{a}" if a in local else a for a in s["after"]],
                }
            )
    return out


def _map_strings(value, fn):
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, list):
        return [_map_strings(v, fn) for v in value]
    if isinstance(value, dict):
        return {k: _map_strings(v, fn) for k, v in value.items()}
    return value


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)


def _references(w: dict, kinds: dict, problems: list[str], off: list[str]) -> list[str]:
    """The steps ``w`` depends on (its references and ``after``); bad references are
    problems (``off``: steps left out by their ``if``)."""
    where = f"steps.{w['name']}"
    deps: list[str] = []
    for text in _strings(w["params"]):
        for m in REF.finditer(text):
            ref = m.group(1)
            if ref in ("recipe_dir", "run_dir"):
                continue
            parts = ref.split(".")
            if len(parts) != 3 or parts[0] != "steps":
                problems.append(f"{where}.params: unknown reference ${{{ref}}}")
                continue
            _, name, output = parts
            if name in off:
                problems.append(f"{where}.params: ${{{ref}}}: step {name} is left out (its `if`)")
                continue
            if name not in kinds:
                problems.append(f"{where}.params: ${{{ref}}} names no step")
                continue
            kind = kinds[name]
            if kind is not None and output not in kind.outputs:
                problems.append(
                    f"{where}.params: ${{{ref}}}: a {kind.name} step has no output {output!r} "
                    f"(it has: {', '.join(kind.outputs)})"
                )
            if name == w["name"]:
                problems.append(f"{where}.params: ${{{ref}}} refers to the step itself")
            elif name not in deps:
                deps.append(name)
    for name in w["after"]:
        if name in off:
            problems.append(f"{where}.after: step {name} is left out (its `if`)")
        elif name not in kinds:
            problems.append(f"{where}.after: {name!r} names no step")
        elif name not in deps:
            deps.append(name)
    return deps


def _resolver(fixed: dict, kinds: dict, run_dir: Path):
    def resolve(m: re.Match) -> str:
        ref = m.group(1)
        if ref in fixed:
            return fixed[ref]
        parts = ref.split(".")
        if len(parts) == 3 and kinds.get(parts[1]) and parts[2] in kinds[parts[1]].outputs:
            return str(run_dir / parts[1] / kinds[parts[1]].outputs[parts[2]])
        return m.group(0)  # reported by _references

    return resolve


def _substitute(value, resolve):
    return _map_strings(value, lambda text: REF.sub(resolve, text))


def _order(steps: list[Step], problems: list[str]) -> list[Step]:
    """Steps in dependency order (file order among independent steps); a cycle is a problem."""
    placed: list[Step] = []
    done: set[str] = set()
    known = {s.name for s in steps}
    pending = list(steps)
    while pending:
        ready = next((s for s in pending if all(d in done or d not in known for d in s.deps)), None)
        if ready is None:
            problems.append(f"steps: a cycle: {' -> '.join(_cycle(pending))}")
            return placed + pending
        placed.append(ready)
        done.add(ready.name)
        pending.remove(ready)
    return placed


def _cycle(pending: list[Step]) -> list[str]:
    by_name = {s.name: s for s in pending}
    path: list[str] = []
    name = pending[0].name
    while name not in path:
        path.append(name)
        name = next(d for d in by_name[name].deps if d in by_name)
    return path[path.index(name) :] + [name]
