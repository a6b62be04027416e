"""Compare the numbers of two folders of figure summaries (`figures/*.json`), leaf by leaf: how
a change of code moved every figure's results. This is how the restructure (issue 12) was shown
to leave the figures' numbers identical (commit f032ad5: all identical except 27 of Fig 12's
fitted orders, at most 2e-15 relative apart).

    momentum-jax reproduce --out /tmp/before   # on the old commit
    momentum-jax reproduce --out /tmp/after    # on the new one
    python experiments/compare_figure_numbers.py /tmp/before /tmp/after
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def leaves(x, path=""):
    """`(path, value)` for every leaf of a JSON document."""
    if isinstance(x, dict):
        for k, v in x.items():
            yield from leaves(v, f"{path}/{k}")
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from leaves(v, f"{path}[{i}]")
    else:
        yield path, x


def compare(a: Path, b: Path) -> dict:
    """Per figure: identical leaves, numbers that differ (and the largest relative difference),
    other leaves that differ."""
    out = {}
    for fa in sorted(a.glob("*.json")):
        fb = b / fa.name
        if not fb.exists():
            out[fa.stem] = {"missing_in": str(b)}
            continue
        x = dict(leaves(json.loads(fa.read_text())["summary"]))
        y = dict(leaves(json.loads(fb.read_text())["summary"]))
        row = {"identical": 0, "numbers_differing": 0, "max_relative": 0.0, "other": []}
        for k in sorted(set(x) | set(y)):
            u, v = x.get(k), y.get(k)
            if u == v:
                row["identical"] += 1
            elif all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in (u, v)):
                row["numbers_differing"] += 1
                rel = abs(u - v) / max(abs(u), abs(v), 1e-300)
                row["max_relative"] = max(row["max_relative"], rel)
            else:
                row["other"].append(k)
        out[fa.stem] = row
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before", type=Path)
    p.add_argument("after", type=Path)
    args = p.parse_args(argv)
    for name, row in compare(args.before, args.after).items():
        print(f"{name:34s} {json.dumps(row)[:200]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
