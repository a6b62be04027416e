"""`momentum-jax reproduce`: the paper's figures (`momentum_jax.paper`), computed or loaded from
the results cache, drawn and summarised."""

from __future__ import annotations

import json
from pathlib import Path

from momentum_jax import paper

from ._arguments import UsageError
from ._values import whole


def run(args) -> int:
    """Check the arguments, then run each figure named (all of them if none is)."""
    try:
        names = paper.resolve(args.figures)
    except (ValueError, FileNotFoundError) as e:
        raise UsageError(str(e)) from None
    if args.mnist_dir is not None:
        if not Path(args.mnist_dir).is_dir():
            raise UsageError(f"--mnist-dir {args.mnist_dir!r} is not a folder")
        if args.dataset not in (None, "auto"):
            raise UsageError(f"--mnist-dir runs the MNIST IDX files; drop --dataset {args.dataset}")
    epochs = None if args.epochs is None else whole("epochs", args.epochs, 1)
    seeds = None if args.seeds is None else seed_list(args.seeds)
    modules = {name: paper.load_module(name) for name in names}
    settings = config_settings(args.set, modules)
    seeded = [name for name, module in modules.items() if takes_seeds(module)]
    if seeds is not None and not seeded:
        every = [name for name in paper.available() if takes_seeds(paper.load_module(name))]
        raise UsageError(
            f"--seeds applies to the figures with seeds ({', '.join(every)}), not to "
            f"{', '.join(names)}"
        )
    for name, module in modules.items():
        if seeds is not None and name not in seeded:
            paper.log(f"{name}: --seeds does not apply (the figure has no seeds)")
        own = {k: v for k, v in settings.items() if k in module.CONFIG}
        for key in sorted(set(settings) - set(own)):
            paper.log(f"{name}: --set {key} does not apply (not a key of the figure)")
        summary = paper.run_experiment(
            module,
            quick=args.quick,
            out=args.out,
            cache_dir=args.cache,
            progress=not args.no_progress,
            options={"mnist_dir": args.mnist_dir},
            **(overrides(module, args, epochs, seeds) | own),
        )
        print(f"{name}: {args.out}/{name}.png  {summary['summary'].get('headline', '')}".rstrip())
    return 0


OWN_OPTIONS = {"seeds": "--seeds", "epochs": "--epochs", "dataset": "--dataset"}
"""Configuration keys that have an option of their own instead of `--set`."""


def config_settings(texts, modules) -> dict:
    """The `--set KEY=VALUE` pairs as `{key: value}`: the value read as JSON, the key one of
    the configuration keys of the figures named (`modules`) with the same default in each that
    has it (a key two figures use differently, as Fig 2's `[lo, hi]` range and Fig 14's, needs
    one figure named), given once, the value of the same kind as the default (a number for a
    number, a list for a list, ...); a `UsageError` otherwise. Only the kind is checked here: a
    value outside a figure's range fails in that figure."""
    defaults: dict = {}
    for name, m in modules.items():
        for k, v in m.CONFIG.items():
            defaults.setdefault(k, {})[name] = v
    out = {}
    for text in texts or []:
        key, sep, raw = (part.strip() for part in text.partition("="))
        if not sep or not key:
            raise UsageError(f"--set expects KEY=VALUE, got {text!r}")
        if key in OWN_OPTIONS:
            raise UsageError(f"--set {key}: use {OWN_OPTIONS[key]}")
        if key in out:
            raise UsageError(f"--set {key} is given twice; give each key once")
        if key not in defaults:
            keys = sorted(set(defaults) - set(OWN_OPTIONS))
            raise UsageError(
                f"--set {key}: not a configuration key of {', '.join(modules)}; "
                f"the keys: {', '.join(keys)}"
            )
        values = list(defaults[key].values())
        if any(v != values[0] for v in values):
            uses = "; ".join(f"{n}: {json.dumps(v)}" for n, v in defaults[key].items())
            raise UsageError(
                f"--set {key}: the figures use it differently ({uses}); name one of them"
            )
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            raise UsageError(
                f'--set {key}: the value {raw!r} is not JSON (e.g. 3, 0.5, [2, 10], "tanh")'
            ) from None
        default = values[0]
        if default is not None and _kind(value) != _kind(default):
            raise UsageError(
                f"--set {key}: expects {_kind(default)} like {json.dumps(default)}, got {raw}"
            )
        out[key] = value
    return out


def _kind(value) -> str:
    """The JSON kind of a configuration value: `a number` (int or float), `true or false`,
    `a string`, `a list`, `an object`."""
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    return "an object"


def seed_list(texts) -> list[int]:
    """The seeds given to `--seeds`: integers `>= 0`, each once, in the order given."""
    seeds = [whole("seeds", t, 0) for t in texts]
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise UsageError(f"--seeds repeats {', '.join(map(str, repeated))}; give each seed once")
    return seeds


def takes_seeds(module) -> bool:
    """Whether `--seeds` sets the figure's `seeds`: a Section 5 figure (one with a `dataset`)
    that has them."""
    return "seeds" in module.CONFIG and "dataset" in module.CONFIG


def overrides(module, args, epochs, seeds=None) -> dict:
    """Configuration overrides of one figure from `--full`, `--epochs`, `--seeds` and
    `--dataset`; the data set is resolved here ("auto" -> what is installed), so that it keys
    the cache. `seeds` replaces the `seeds` of a Section 5 figure's configuration (one with a
    `dataset`), and only of those."""
    config = dict(module.CONFIG) | (getattr(module, "QUICK", {}) if args.quick else {})
    result = dict(getattr(module, "FULL", {})) if args.full else {}
    if epochs is not None and "epochs" in config:
        result["epochs"] = epochs
    if seeds is not None and takes_seeds(module):
        result["seeds"] = list(seeds)
    if "dataset" in config:
        name = args.dataset or result.get("dataset") or config["dataset"]
        try:
            result["dataset"] = paper.section5_dataset(name, args.mnist_dir)
        except ValueError as e:
            raise UsageError(str(e)) from None
    return result
