"""The figure framework: caching by configuration, atomic outputs, resuming after interruption,
and one real figure end to end in quick mode."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import types

import numpy as np
import pytest

from momentum_jax.paper import _runner as _reproduce


def fake_module(calls, *, fail_after=None):
    """A figure whose compute has two cached pieces; it can be made to fail after the first."""

    def compute(config, ctx):
        parts = []
        for i in range(2):

            def piece(i=i):
                calls.append(i)
                if fail_after is not None and i > fail_after:
                    raise KeyboardInterrupt
                return {"arrays": {"x": np.arange(3) * (i + config["scale"])}, "summary": {"i": i}}

            parts.append(ctx.cached(f"piece{i}", config | {"i": i}, piece)["arrays"]["x"])
        return {
            "arrays": {"parts": np.stack(parts)},
            "summary": {"total": float(np.sum(parts)), "headline": "ok"},
        }

    def plot(data, config, path):
        from momentum_jax.plotting import new_figure, save_figure

        fig, axes = new_figure()
        axes[0, 0].plot(data["arrays"]["parts"].T)
        save_figure(fig, path)

    return types.SimpleNamespace(
        NAME="figX_fake",
        DESCRIPTION="a test figure",
        CONFIG={"scale": 1.0},
        QUICK={"scale": 2.0},
        compute=compute,
        plot=plot,
    )


def test_cached_results_are_reused_and_configs_distinguished(tmp_path):
    calls = []
    kw = dict(out=tmp_path / "out", cache_dir=tmp_path / "cache", progress=False)
    s1 = _reproduce.run_experiment(fake_module(calls), **kw)
    assert calls == [0, 1] and s1["summary"]["total"] == 9.0
    _reproduce.run_experiment(fake_module(calls), **kw)
    assert calls == [0, 1]  # nothing recomputed
    s3 = _reproduce.run_experiment(fake_module(calls), quick=True, **kw)
    assert calls == [0, 1, 0, 1] and s3["summary"]["total"] == 15.0
    written = json.loads((tmp_path / "out" / "figX_fake.json").read_text())
    assert written["config"] == {"scale": 2.0} and written["versions"]["jax"]
    assert (tmp_path / "out" / "figX_fake.png").read_bytes()[:4] == b"\x89PNG"


def test_interrupted_run_leaves_no_partial_file_and_resumes(tmp_path):
    calls = []
    kw = dict(out=tmp_path / "out", cache_dir=tmp_path / "cache", progress=False)
    with pytest.raises(KeyboardInterrupt):
        _reproduce.run_experiment(fake_module(calls, fail_after=0), **kw)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    cache_files = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert all(not name.endswith(".part") for name in cache_files)
    assert len(cache_files) == 2  # piece0's arrays and summary, nothing of piece1
    calls.clear()
    _reproduce.run_experiment(fake_module(calls), **kw)
    assert calls == [1]  # piece0 came from the cache


def test_killed_process_leaves_no_partial_outputs(tmp_path):
    # A figure script killed with SIGKILL in the middle of its computation: no output file exists
    # afterwards, stale temporary files are cleared by the next run, which resumes.
    script = tmp_path / "slow.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys, time, types
        import numpy as np
        sys.path.insert(0, {str(os.path.dirname(__file__))!r})
        from test_reproduce import fake_module
        from momentum_jax.paper import _runner as _reproduce
        calls = []
        mod = fake_module(calls)
        original = mod.compute
        def compute(config, ctx):
            ctx.cached("first", {{}}, lambda: {{"arrays": {{"a": np.ones(2)}}, "summary": {{}}}})
            open({str(tmp_path / "ready")!r}, "w").close()
            time.sleep(60)
        mod.compute = compute
        _reproduce.run_experiment(mod, out={str(tmp_path / "out")!r},
                                  cache_dir={str(tmp_path / "cache")!r}, progress=False)
    """)
    )
    proc = subprocess.Popen([sys.executable, str(script)])
    try:
        for _ in range(600):
            if (tmp_path / "ready").exists():
                break
            time.sleep(0.1)
        else:
            pytest.fail("the child never reached its computation")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert not (tmp_path / "out" / "figX_fake.png").exists()
    assert not (tmp_path / "out" / "figX_fake.json").exists()
    stale = tmp_path / "cache" / ".figX_fake-stale.npz.abc.part"
    stale.write_bytes(b"half")
    calls = []
    _reproduce.run_experiment(
        fake_module(calls), out=tmp_path / "out", cache_dir=tmp_path / "cache", progress=False
    )
    assert not stale.exists()
    assert (tmp_path / "out" / "figX_fake.png").exists()


def test_resolve_names():
    names = _reproduce.resolve(["fig2", "fig1_gradient_flow"])
    assert names == ["fig2_rates", "fig1_gradient_flow"]
    assert _reproduce.resolve([])[:2] == ["fig1_gradient_flow", "fig2_rates"]
    with pytest.raises(ValueError, match="unknown figure 'fig0'"):
        _reproduce.resolve(["fig0"])


def test_unreadable_cache_entry_is_recomputed(tmp_path):
    calls = []
    kw = dict(out=tmp_path / "out", cache_dir=tmp_path / "cache", progress=False)
    _reproduce.run_experiment(fake_module(calls), **kw)
    for p in (tmp_path / "cache").glob("*piece1*.npz"):
        p.write_bytes(b"garbage")
    calls.clear()
    os.remove(next((tmp_path / "cache").glob("*-result-*.npz")))
    _reproduce.run_experiment(fake_module(calls), **kw)
    assert calls == [1]


@pytest.mark.parametrize("fig", ["fig2", "fig5"])
def test_real_figure_quick_end_to_end(tmp_path, fig):
    from momentum_jax._cli import main

    overrides = {"fig2": ["--quick"], "fig5": ["--quick"]}[fig]
    code = main(
        [
            "reproduce",
            fig,
            *overrides,
            "--out",
            str(tmp_path),
            "--cache",
            str(tmp_path / "cache"),
            "--no-progress",
        ]
    )
    assert code == 0
    name = _reproduce.resolve([fig])[0]
    summary = json.loads((tmp_path / f"{name}.json").read_text())
    assert (tmp_path / f"{name}.png").stat().st_size < 300_000
    if fig == "fig2":
        d = summary["summary"]["delta_at_smallest_h"]["kappa=5"]
        assert 0.6 < d["hb"] < 0.9  # Delta(2^-11), kappa = 5, rising towards 1
    else:
        factor = summary["summary"]["contraction_factor"]
        modulus = summary["summary"]["root_modulus"]
        assert abs(factor["hb"] - np.sqrt(0.9)) < 0.01
        assert abs(factor["nag"] - modulus["nag"]) < 0.002  # 0.942 against 0.941


def test_cache_key_covers_the_figure_scripts_a_figure_runs():
    # Fig 4 runs Fig 2's code (Fig 3 Fig 1's): a change there must recompute it, not reuse
    # the cached result computed by the old code
    from momentum_jax.paper._runner import figure_scripts

    assert [p.name for p in figure_scripts("fig4_hamiltonian_rates")] == [
        "fig4_hamiltonian_rates.py",
        "fig2_rates.py",
    ]
    assert [p.name for p in figure_scripts("fig3_hamiltonian")] == [
        "fig3_hamiltonian.py",
        "fig1_gradient_flow.py",
    ]
    assert [p.name for p in figure_scripts("fig2_rates")] == ["fig2_rates.py"]


def test_a_piece_two_figures_share_is_computed_once(tmp_path, monkeypatch):
    """Figs 14 and 15 draw the same toy map: whichever runs second reads the first one's entry
    (cached under Fig 14, `Context.of`), not a second computation."""
    from momentum_jax.paper import Context, _edge_map

    config = dict(_edge_map.GRID, map_points_h=2, map_points_lam=2, map_steps=20)
    kw = dict(cache_dir=tmp_path, quick=True, progress=False, options={})
    first = _edge_map.cached_toy_map(config, Context("fig15_edge_of_stability", **kw))

    def computed_again(config):
        raise AssertionError("the toy map was computed twice")

    monkeypatch.setattr(_edge_map, "toy_map_of", computed_again)
    second = _edge_map.cached_toy_map(config, Context("fig14_regime_map", **kw))
    np.testing.assert_array_equal(first["map_ratio"], second["map_ratio"])
    assert [p.name.split("-")[0] for p in tmp_path.glob("*.npz")] == ["fig14_regime_map"]
