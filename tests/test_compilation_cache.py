"""JAX's persistent compilation cache, on by default for the command line: a second process
loads the compiled programs of the first instead of compiling them again; `--no-compile-cache`
writes nothing, nor does `MOMENTUM_JAX_COMPILE_CACHE=off` (set for the tests' own process in
tests/conftest.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import momentum_jax as mj
from momentum_jax._cli import main

STUDY = ["study", "--loss", "quadratic", "--h", "2^-2:2^-3", "--lam", "0.5", "--T", "0.5"]
STUDY += ["--model", "gradient_flow", "--no-progress", "--json"]


def cli(*argv, cache=None):
    """Run `momentum-jax` in a fresh process with `MOMENTUM_JAX_COMPILE_CACHE=cache` (None:
    unset) and JAX's compilation log on; returns `(stdout as JSON, the log's persistent cache
    hits, its persistent cache misses)`."""
    env = {k: v for k, v in os.environ.items() if k != "MOMENTUM_JAX_COMPILE_CACHE"}
    env |= {"JAX_LOG_COMPILES": "1", "JAX_EXPLAIN_CACHE_MISSES": "1"}
    if cache is not None:
        env["MOMENTUM_JAX_COMPILE_CACHE"] = cache
    proc = subprocess.run(
        [sys.executable, "-m", "momentum_jax", *argv],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    hits = proc.stderr.count("Persistent compilation cache hit")
    misses = proc.stderr.count("PERSISTENT COMPILATION CACHE MISS")
    return json.loads(proc.stdout), hits, misses


def files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def test_a_second_process_loads_what_the_first_compiled(tmp_path):
    cache = tmp_path / "jax"
    first, hits, misses = cli(*STUDY, cache=str(cache))  # the cache named by the variable
    written = files(cache)
    assert hits == 0 and misses > 0 and len(written) >= misses  # every program written
    second, hits, misses = cli(*STUDY, "--compile-cache", str(cache), cache="off")
    assert misses == 0 and hits > 0  # every program loaded, none compiled
    assert files(cache) == written  # and nothing new written
    assert second["errors"] == first["errors"]  # the same numbers, exactly


def test_no_compile_cache_writes_nothing(tmp_path, capsys):
    cache = tmp_path / "jax"
    _, hits, misses = cli(*STUDY, "--no-compile-cache", cache=str(cache))
    assert hits == misses == 0 and not cache.exists()
    assert main([*STUDY, "--no-compile-cache", "--compile-cache", str(cache)]) == 2
    assert "give --compile-cache DIR or --no-compile-cache, not both" in capsys.readouterr().err


def test_default_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("MOMENTUM_JAX_COMPILE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert mj.default_compilation_cache() == tmp_path / "momentum_jax" / "jax"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert mj.default_compilation_cache() == tmp_path / "home" / ".cache" / "momentum_jax" / "jax"
    monkeypatch.setenv("MOMENTUM_JAX_COMPILE_CACHE", "~/elsewhere")
    assert mj.default_compilation_cache() == tmp_path / "home" / "elsewhere"
    for off in ("off", "OFF", "0", "", "none"):
        monkeypatch.setenv("MOMENTUM_JAX_COMPILE_CACHE", off)
        assert mj.default_compilation_cache() is None
        assert mj.enable_compilation_cache() is None  # turned off: nothing is changed


@pytest.mark.parametrize("command", ["study", "sweep", "reproduce"])
def test_the_commands_that_compile_take_the_options(capsys, command):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--compile-cache DIR" in text and "--no-compile-cache" in text


_STUDY_SCRIPT = """
import json, sys
import jax
jax.config.update("jax_enable_x64", True)
import momentum_jax as mj
mj.enable_compilation_cache(sys.argv[1])
events = {"programs": 0, "hits": 0, "misses": 0}
def on_duration(name, *args, **kwargs):  # a program compiled or read from the cache
    if name == "/jax/core/compile/backend_compile_duration":
        events["programs"] += 1
def on_event(name, *args, **kwargs):
    if name == "/jax/compilation_cache/cache_hits":
        events["hits"] += 1
    if name == "/jax/compilation_cache/cache_misses":
        events["misses"] += 1
jax.monitoring.register_event_duration_secs_listener(on_duration)
jax.monitoring.register_event_listener(on_event)
import jax.numpy as jnp
st = mj.convergence_study(
    mj.paper_quadratic(10.0), jnp.array([1.0, 1.0]), hs=[0.25, 0.125], lams=[0.5],
    methods=("hb",), models=("gradient_flow", "hamiltonian"), T=0.5,
)
events["errors"] = {k: v.tolist() for k, v in st.errors.items()}
print(json.dumps(events))
"""


def study_process(cache: Path) -> dict:
    """A README-style study (a shared solve and a per-point solve) in a fresh process with the
    persistent cache in `cache`; its compile events, cache hits and misses, and errors."""
    env = {k: v for k, v in os.environ.items() if k != "MOMENTUM_JAX_COMPILE_CACHE"}
    proc = subprocess.run(
        [sys.executable, "-c", _STUDY_SCRIPT, str(cache)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_second_process_reads_the_study_kernel_from_the_cache(tmp_path):
    """Every program of a study, its compiled loop included, is written to the persistent cache
    and read back by a second process: none holds a host callback (a traced `dt0` would put
    diffrax's equinox sign check, a host callback, into the per-point solves)."""
    cache = tmp_path / "jax"
    first = study_process(cache)
    assert first["hits"] == 0 and first["programs"] > 0
    assert len(files(cache)) >= first["programs"]  # every program written, the loop included
    second = study_process(cache)
    assert second["misses"] == 0 and second["hits"] == second["programs"] == first["programs"]
    assert second["errors"] == first["errors"]
