"""Running the paper's figures (`momentum_jax.paper.figures`): configuration, caching, atomic
outputs.

Each module `momentum_jax.paper.figures.figN_<name>` defines

- `NAME` (`"figN_<name>"`), `DESCRIPTION` (one sentence),
- `CONFIG`: the default (CPU-sized) settings, a JSON-serialisable dict; `QUICK`: overrides for
  `--quick`;
- `compute(config, ctx) -> dict`: the numbers, as `{"arrays": {name: ndarray}, "summary": {...}}`;
  long pieces go through `ctx.cached(label, sub_config, fn)` so an interrupted run resumes;
- `plot(data, config, path)`: draws the PNG from the computed data alone.

`run("fig2", quick=True)` runs one from Python, `python -m momentum_jax.paper.figures.fig2_rates`
or `momentum-jax reproduce fig2` from a shell.

`run_experiment` hashes the configuration (and the source code of the library and of the
figure); a finished result with the same hash is loaded from the cache instead of recomputed.
Every file is written to a temporary name and renamed into place, so an interrupted run leaves
no partial file and the next run continues from what was finished.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np

from momentum_jax import (
    atomic_path,
    dump_json,
    enable_compilation_cache,
    load_json,
    provenance,
)

from ._progress import Progress, log
from .figures import FIGURES

SUMMARY_FORMAT = "momentum_jax.figure"
DEFAULT_CACHE = Path(os.environ.get("MOMENTUM_JAX_CACHE", ".cache/momentum_jax"))


def available() -> list[str]:
    """The names of every figure, in figure order."""
    return list(FIGURES)


def resolve(names) -> list[str]:
    """Map `fig2` or `fig2_rates` to full names; `ValueError` naming the unknown ones."""
    table = available()
    if not names:
        return list(table)
    out: list[str] = []
    for name in names:
        hits = [full for full in table if full == name or full.split("_", 1)[0] == name]
        if not hits:
            raise ValueError(f"unknown figure {name!r}; choose from {', '.join(table)}")
        out.extend(h for h in hits if h not in out)
    return out


def load_module(name: str) -> ModuleType:
    """The module of the figure `name` (a full name, see `resolve`)."""
    return importlib.import_module(f"{__package__}.figures.{name}")


def figure_scripts(name: str) -> list[Path]:
    """The figure's own script and the scripts of the figures it imports (Fig 4 runs Fig 2's
    code)."""
    figures = Path(__file__).resolve().parent / "figures"
    script = figures / f"{name.split('/')[0]}.py"
    if not script.exists():
        return []
    module = load_module(script.stem)
    files = (getattr(m, "__file__", None) for m in vars(module).values())
    used = {Path(f).resolve() for f in files if f}
    return [script] + sorted(p for p in used if p.parent == figures and p != script)


def code_fingerprint(name: str) -> str:
    """A hash of the library's source and of the figure's scripts (`figure_scripts`): a cached
    result is reused only if it was computed by the same code."""
    h = hashlib.sha256()
    package = Path(__file__).resolve().parent.parent
    figures = package / "paper" / "figures"
    library = [p for p in sorted(package.rglob("*.py")) if figures not in p.parents]
    for path in library + figure_scripts(name):
        h.update(str(path.relative_to(package)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def config_hash(name: str, config: dict) -> str:
    blob = json.dumps(
        {"name": name, "config": config, "code": code_fingerprint(name)},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def save_arrays(path, arrays: dict):
    """`np.savez` written atomically (no object arrays: loadable without pickle)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})  # type: ignore[arg-type]


def load_arrays(path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


class Context:
    """What a figure's `compute` gets: the cache, progress reporting and the run options."""

    def __init__(self, name: str, *, cache_dir: Path, quick: bool, progress: bool, options: dict):
        self.name, self.cache_dir, self.quick = name, Path(cache_dir), quick
        self.show_progress = progress
        self.options = options

    def of(self, name: str) -> Context:
        """The context of the figure `name` (same cache, options and progress): a piece that
        two figures share is cached once, under the figure that owns its code (Fig 7 starts from
        Fig 10's checkpoints)."""
        return Context(
            name,
            cache_dir=self.cache_dir,
            quick=self.quick,
            progress=self.show_progress,
            options=self.options,
        )

    def progress(self, total: int, label: str) -> Progress:
        return Progress(total, f"{self.name}: {label}", enabled=self.show_progress)

    def progress_iter(self, items, label: str):
        """Iterate over `items`, reporting progress after each."""
        items = list(items)
        bar = self.progress(len(items), label)
        for item in items:
            yield item
            bar.advance()
        bar.close()

    def cached(self, label: str, config: dict, fn):
        """`fn()` -> `{"arrays": {...}, "summary": {...}}`, cached under `label` and `config`."""
        key = config_hash(f"{self.name}/{label}", config)
        arrays_path = self.cache_dir / f"{self.name}-{label}-{key}.npz"
        summary_path = arrays_path.with_suffix(".json")
        if arrays_path.exists() and summary_path.exists():
            try:
                return {
                    "arrays": load_arrays(arrays_path),
                    "summary": load_json(summary_path, kind="momentum_jax.cache")["summary"],
                }
            except (ValueError, OSError) as e:
                log(f"{self.name}: ignoring unreadable cache entry {arrays_path.name} ({e})")
        data = fn()
        save_arrays(arrays_path, data.get("arrays", {}))
        dump_json(
            summary_path, {"format": "momentum_jax.cache", "summary": data.get("summary", {})}
        )
        return data


def remove_stale_temporaries(*folders):
    """Delete temporary files (`.NAME.*.part`) left by a run that was killed before it could
    clean up; finished files are never touched."""
    for folder in folders:
        if Path(folder).is_dir():
            for tmp in Path(folder).glob(".*.part"):
                tmp.unlink(missing_ok=True)


def _compute(module: ModuleType, config: dict, ctx: Context) -> dict:
    """`module.compute`, with the library's warnings recorded in the summary (`"warnings"`, one
    line each) rather than printed: a figure that crosses a regime boundary on purpose (a
    manifold start at large `h`, say) says so in its numbers, where the reader of the figure
    looks."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = module.compute(config, ctx)
    lines = []
    for w in caught:
        line = " ".join(str(w.message).split())
        if line not in lines:
            lines.append(line)
    if lines:
        data["summary"]["warnings"] = lines
    return data


def run_experiment(
    module: ModuleType,
    *,
    quick: bool = False,
    out="figures",
    cache_dir=None,
    progress: bool = True,
    options: dict | None = None,
    **overrides,
) -> dict:
    """Compute (or load from cache) and plot one figure; returns its summary.

    Writes `out/NAME.png` and `out/NAME.json` (the summary with configuration and provenance).
    """
    config = dict(module.CONFIG)
    if quick:
        config.update(getattr(module, "QUICK", {}))
    config.update(overrides)
    options = dict(options or {})
    config_for_hash = config | {k: v for k, v in options.items() if v is not None}
    cache_dir = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE
    out = Path(out)
    remove_stale_temporaries(cache_dir, out)
    ctx = Context(module.NAME, cache_dir=cache_dir, quick=quick, progress=progress, options=options)
    data = ctx.cached("result", config_for_hash, lambda: _compute(module, config, ctx))
    out.mkdir(parents=True, exist_ok=True)
    png = out / f"{module.NAME}.png"
    with atomic_path(png) as tmp:
        module.plot(data, config, tmp)
    summary = {
        "format": SUMMARY_FORMAT,
        "name": module.NAME,
        "description": module.DESCRIPTION,
        "quick": quick,
        "config": config,
        "summary": data["summary"],
    } | provenance()
    dump_json(out / f"{module.NAME}.json", summary)
    return summary


def run(name: str, **kw) -> dict:
    """Run one figure by name (`"fig2"` or `"fig2_rates"`); keyword arguments as for
    `run_experiment`. Returns its summary."""
    return run_experiment(load_module(resolve([name])[0]), **kw)


def script_main(module_name: str, argv=None):
    """`python -m momentum_jax.paper.figures.figN_<name> [--quick] [--out DIR]`: float64 and
    the persistent compilation cache (`enable_compilation_cache`: `MOMENTUM_JAX_COMPILE_CACHE`,
    else the user's cache folder) are switched on once, here at program start, then the figure
    is run."""
    import argparse

    import jax

    jax.config.update("jax_enable_x64", True)
    enable_compilation_cache()
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(description=module.DESCRIPTION)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="figures")
    parser.add_argument("--mnist-dir", default=None)
    args = parser.parse_args(argv)
    summary = run_experiment(
        module, quick=args.quick, out=args.out, options={"mnist_dir": args.mnist_dir}
    )
    print(summary["summary"].get("headline", ""))
