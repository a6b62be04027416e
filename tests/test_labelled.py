"""Labelled results: `Study` and `Sweep` as xarray Datasets, their netCDF and JSON round trips,
the refusal of corrupted, foreign and misnamed files (the save rule of momentum_jax/_labelled.py),
and `Sweep.table()`."""

import dataclasses
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import small_study

import momentum_jax as mj
from momentum_jax._labelled import netcdf_engine
from momentum_jax._study._result import STUDY_FORMAT
from momentum_jax._sweep._result import (
    SWEEP_FORMAT,
    Sweep,
    _dataset_dict,
    load_sweep,
    sweep_from_dict,
)

HINT = 'pip install "momentum_jax[xarray]"'
HS = 2.0 ** -np.arange(3, 7)


def needs_netcdf():
    pytest.importorskip("xarray")
    try:
        netcdf_engine()
    except ImportError:
        pytest.skip("no netCDF engine (h5netcdf with h5py, or netCDF4)")


@pytest.fixture(scope="module")
def real_study():
    return small_study(HS)


def with_failures(st):
    """The real study with a divergence and a solver failure written in (NaN errors there)."""
    div = st.diverged_at.copy()
    div[1, 0, 0] = 3
    failure = {m: st.solver_failure[m].copy() for m in st.models}
    failure["hamiltonian"][0, 1, 3] = "maximum number of solver steps was reached"
    errors = {m: np.where((div >= 0) | (failure[m] != ""), np.nan, st.errors[m]) for m in st.models}
    return dataclasses.replace(st, diverged_at=div, solver_failure=failure, errors=errors)


STUDY_VARIANTS = {
    "real": lambda st: st,
    "failures": with_failures,
    "no_solver_steps": lambda st: dataclasses.replace(st, solver_steps=None),
}


def assert_same_study(a, b):
    assert a.methods == b.methods and a.models == b.models and a.fit_points == b.fit_points
    np.testing.assert_array_equal(a.lams, b.lams)
    np.testing.assert_array_equal(a.hs, b.hs)
    np.testing.assert_array_equal(a.diverged_at, b.diverged_at)
    assert a.diverged_at.dtype.kind == b.diverged_at.dtype.kind == "i"
    for m in a.models:
        np.testing.assert_array_equal(a.errors[m], b.errors[m])  # NaN where NaN
        np.testing.assert_array_equal(a.solver_failure[m], b.solver_failure[m])
        np.testing.assert_array_equal(a.rates[m], b.rates[m])
        np.testing.assert_array_equal(a.orders[m], b.orders[m])
    if a.solver_steps is None:
        assert b.solver_steps is None
    else:
        for m in a.models:
            np.testing.assert_array_equal(a.solver_steps[m], b.solver_steps[m])
    np.testing.assert_array_equal(a.status, b.status)
    assert jsonable(a.config) == b.config and jsonable(a.meta) == b.meta


def jsonable(x):
    return json.loads(json.dumps(mj._io._jsonable(x)))


@pytest.mark.parametrize("variant", list(STUDY_VARIANTS))
@pytest.mark.parametrize("suffix", [".json", ".nc"])
def test_study_round_trip(real_study, tmp_path, variant, suffix):
    if suffix == ".nc":
        needs_netcdf()
    st = STUDY_VARIANTS[variant](real_study)
    path = tmp_path / f"study{suffix}"
    st.save(path)
    back = mj.load_study(path)
    assert_same_study(st, back)
    assert back.errors.keys() == st.errors.keys()
    assert list(tmp_path.iterdir()) == [path]  # atomic: no temporary file left behind
    if variant == "failures":
        assert np.isnan(back.errors["gradient_flow"][1, 0, 0])
        assert back.status[1, 0, 0] == "diverged at step 3"


def test_study_json_and_netcdf_agree(real_study, tmp_path):
    needs_netcdf()
    st = with_failures(real_study)
    st.save(tmp_path / "s.json")
    st.save(tmp_path / "s.nc")
    assert_same_study(mj.load_study(tmp_path / "s.json"), mj.load_study(tmp_path / "s.nc"))
    assert (tmp_path / "s.nc").read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"  # netCDF-4 (HDF5)


def test_study_save_has_the_sweeps_suffix_rule(real_study, tmp_path):
    # before: any name but .nc was written as JSON by Study.save, refused by Sweep.save
    for result in (real_study, make_sweep()):
        with pytest.raises(ValueError, match=r"study\.out.*'\.json' \(JSON\).*'\.nc' \(netCDF\)"):
            result.save(tmp_path / "study.out")
    assert list(tmp_path.iterdir()) == []  # refused before anything was written
    (tmp_path / "study.out").write_text(json.dumps({"format": STUDY_FORMAT}))
    with pytest.raises(ValueError, match=r"study\.out.*'\.json'"):
        mj.load_study(tmp_path / "study.out")
    real_study.save(tmp_path / "study.JSON")  # the suffix in any case
    assert json.loads((tmp_path / "study.JSON").read_text())["format"] == STUDY_FORMAT


def test_study_dataset_coordinates(real_study):
    pytest.importorskip("xarray")
    st = with_failures(real_study)
    ds = st.to_xarray()
    assert set(ds.coords) == {"model", "optimizer", "lam", "h", "h_pair", "h_next"}
    assert ds["errors"].dims == ("model", "optimizer", "lam", "h")
    assert ds["rates"].dims == ("model", "optimizer", "lam", "h_pair")
    assert ds["orders"].dims == ("model", "optimizer", "lam")
    assert ds["diverged_at"].dims == ds["status"].dims == ("optimizer", "lam", "h")
    assert list(ds["optimizer"].values) == ["hb", "nag"]
    np.testing.assert_array_equal(ds["h"], HS)
    np.testing.assert_array_equal(ds["h_pair"], HS[:-1])  # rates labelled by the larger h
    np.testing.assert_array_equal(ds["h_next"], HS[1:])
    # every dimension selects by keyword (`method` is a keyword of `sel`: no dimension is)
    sel = ds["errors"].sel(model="hamiltonian", optimizer="nag", lam=0.9)
    np.testing.assert_array_equal(sel, st.errors["hamiltonian"][1, 1])
    np.testing.assert_array_equal(
        ds["rates"].sel(model="gradient_flow", h_pair=HS[1]), st.rates["gradient_flow"][..., 1]
    )
    np.testing.assert_array_equal(ds["orders"].sel(model="hamiltonian"), st.orders["hamiltonian"])
    assert ds["status"].sel(optimizer="nag", lam=0.5, h=HS[0]).item() == "diverged at step 3"
    failed = ds["solver_failure"].sel(model="hamiltonian", optimizer="hb", lam=0.9, h=HS[3])
    assert failed.item().startswith("maximum number")
    assert ds.attrs["format"] == STUDY_FORMAT and ds.attrs["version"] == st.to_dict()["version"]
    assert ds.attrs["fit_points"] == 3
    assert json.loads(ds.attrs["config"]) == jsonable(st.config)


def make_sweep(optional=True, seeds=(0, 7)):
    rng = np.random.default_rng(1)
    shape = (2, 3, 4, len(seeds))
    hs, lams = 2.0 ** -np.arange(1, 5), np.array([0.0, 0.5, 0.9])
    div = np.full(shape, -1)
    div[:, 2, 0, :] = 5
    div[0, 1, 0, -1] = 17
    final = np.where(div >= 0, np.nan, rng.uniform(0.01, 1.0, shape))
    kw = dict(curve_steps=None, curve=None, sharpness_steps=None, sharpness=None, distances=None)
    if optional:
        curve_steps = np.array([0, 10, 20])
        curve = rng.uniform(0.01, 1.0, (*shape, 3))
        curve[div >= 0, 1:] = np.nan
        kw = dict(
            curve_steps=curve_steps,
            curve=curve,
            sharpness_steps=np.array([10, 40]),
            sharpness=np.where((div >= 0)[..., None], np.nan, rng.uniform(1, 9, (*shape, 2))),
            distances={
                "gradient_flow": final * 0.1,
                "hamiltonian": np.where(div >= 0, np.nan, rng.uniform(0, 1, shape)),
            },
            gaps=np.where((div >= 0)[..., None], np.nan, rng.uniform(0, 1, (*shape, 3))),
        )
    return Sweep(
        methods=("hb", "nag"),
        lams=lams,
        hs=hs,
        seeds=np.asarray(seeds),
        steps=40,
        final_loss=final,
        min_loss=final / 2,
        diverged_at=div,
        config={"loss": "toy", "steps": 40, "hs": hs},
        meta={"date": "2026-01-01"},
        **kw,
    )


def assert_same_sweep(a, b):
    assert a.methods == b.methods and a.steps == b.steps
    for name in ("lams", "hs", "seeds", "final_loss", "min_loss", "diverged_at"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert b.seeds.dtype.kind == b.diverged_at.dtype.kind == "i"
    for name in ("curve_steps", "curve", "sharpness_steps", "sharpness", "gaps"):
        if getattr(a, name) is None:
            assert getattr(b, name) is None, name
        else:
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    if a.distances is None:
        assert b.distances is None
    else:
        assert list(a.distances) == list(b.distances)
        for m in a.distances:
            np.testing.assert_array_equal(a.distances[m], b.distances[m])
    assert jsonable(a.config) == b.config and a.meta == b.meta


@pytest.mark.parametrize("optional", [True, False])
@pytest.mark.parametrize("suffix", [".json", ".nc"])
def test_sweep_round_trip(tmp_path, optional, suffix):
    if suffix == ".nc":
        needs_netcdf()
    sw = make_sweep(optional)
    path = tmp_path / f"sweep{suffix}"
    sw.save(path)
    back = load_sweep(path)
    assert_same_sweep(sw, back)
    assert np.isnan(back.final_loss[0, 2, 0, 0])
    assert list(tmp_path.iterdir()) == [path]


def test_sweep_json_and_netcdf_agree(tmp_path):
    needs_netcdf()
    sw = make_sweep(seeds=(3,))
    sw.save(tmp_path / "w.json")
    sw.save(tmp_path / "w.nc")
    a, b = load_sweep(tmp_path / "w.json"), load_sweep(tmp_path / "w.nc")
    assert_same_sweep(a, b)


def test_sweep_dataset_coordinates():
    pytest.importorskip("xarray")
    sw = make_sweep()
    ds = sw.to_xarray()
    assert {"optimizer", "lam", "h", "seed", "step", "t", "sharpness_step", "model"} <= set(
        ds.coords
    )
    assert ds["final_loss"].dims == ("optimizer", "lam", "h", "seed")
    assert ds["curve"].dims == ("optimizer", "lam", "h", "seed", "step")
    assert ds["sharpness"].dims == ("optimizer", "lam", "h", "seed", "sharpness_step")
    assert ds["distance"].dims == ("model", "optimizer", "lam", "h", "seed")
    assert ds["gap"].dims == ("optimizer", "lam", "h", "seed", "step")
    np.testing.assert_array_equal(ds["gap"], sw.gaps)
    assert ds["t"].dims == ("h", "step")  # t = h * step: a 2-D coordinate
    np.testing.assert_array_equal(ds["t"], sw.hs[:, None] * sw.curve_steps[None, :])
    np.testing.assert_array_equal(ds["sharpness_t"], sw.hs[:, None] * sw.sharpness_steps)
    np.testing.assert_array_equal(ds["seed"], [0, 7])
    one = ds["curve"].sel(optimizer="nag", lam=0.5, h=0.25, seed=7)
    np.testing.assert_array_equal(one, sw.curve[1, 1, 1, 1])
    np.testing.assert_array_equal(one["t"], 0.25 * sw.curve_steps)
    np.testing.assert_array_equal(
        ds["distance"].sel(model="hamiltonian"), sw.distances["hamiltonian"]
    )
    assert ds["diverged_at"].dtype == np.int64
    assert ds.attrs["format"] == SWEEP_FORMAT and ds.attrs["steps"] == 40
    bare = make_sweep(optional=False).to_xarray()
    assert set(bare.coords) == {"optimizer", "lam", "h", "seed"}
    assert set(bare.data_vars) == {"final_loss", "min_loss", "diverged_at"}
    assert_same_sweep(sw, sweep_from_dict(_dataset_dict(ds), "in memory"))


def test_keyword_selection_on_every_axis_and_old_files(real_study, tmp_path):
    # issue 21 item 14: `sw.to_xarray().final_loss.sel(method="hb", lam=0.5, h=0.1)` raised
    # (`method` is the fill-method keyword of `.sel`); the methods are now the axis `optimizer`
    needs_netcdf()
    sw = make_sweep()
    ds = sw.to_xarray()
    value = ds.final_loss.sel(optimizer="nag", lam=0.5, h=0.25, seed=7).item()
    assert value == sw.final_loss[1, 1, 1, 1]  # exact: a stored number, selected
    st_ds = real_study.to_xarray()
    for data in (ds, st_ds):
        for name, var in data.variables.items():  # no dimension is a keyword of .sel
            assert not set(var.dims) & {"method", "tolerance", "drop", "indexers"}, name
    # a file written before the rename (dimension `method`) still loads, to the same result
    write_dataset(ds.rename({"optimizer": "method"}), tmp_path / "old_sweep.nc")
    assert_same_sweep(sw, load_sweep(tmp_path / "old_sweep.nc"))
    write_dataset(st_ds.rename({"optimizer": "method"}), tmp_path / "old_study.nc")
    assert_same_study(real_study, mj.load_study(tmp_path / "old_study.nc"))


def write_dataset(ds, path):
    ds.to_netcdf(path, engine=netcdf_engine())


def test_bad_netcdf_files_name_the_file(real_study, tmp_path):
    needs_netcdf()
    import xarray as xr

    good = tmp_path / "good.nc"
    real_study.save(good)
    truncated = tmp_path / "truncated.nc"
    truncated.write_bytes(good.read_bytes()[:400])
    junk = tmp_path / "junk.nc"
    junk.write_text('{"format": "momentum_jax.study"}')
    foreign = tmp_path / "foreign.nc"
    write_dataset(xr.Dataset({"x": ("a", np.arange(3.0))}, attrs={"title": "other"}), foreign)
    for path in (truncated, junk, foreign):
        with pytest.raises(ValueError, match=path.name):
            mj.load_study(path)
    with pytest.raises(ValueError, match="good.nc.*momentum_jax.sweep"):
        load_sweep(good)  # a study is not a sweep
    with pytest.raises(FileNotFoundError):
        mj.load_study(tmp_path / "missing.nc")


def test_edited_netcdf_files_are_validated(real_study, tmp_path):
    needs_netcdf()
    ds = real_study.to_xarray()
    edits = {
        "increasing_h.nc": (ds.assign_coords(h=ds["h"].values[::-1]), "strictly decreasing"),
        "version.nc": (ds.assign_attrs(version=99), "version 99"),
        "fit_points.nc": (ds.assign_attrs(fit_points=2.5), "fit_points"),
        "config.nc": (ds.assign_attrs(config="{not json"), "malformed"),
        "no_errors.nc": (ds.drop_vars("errors"), "errors"),
        "float_steps.nc": (
            ds.assign(solver_steps=ds["solver_steps"].astype(float)),
            "integers",
        ),
        "negative_error.nc": (ds.assign(errors=-ds["errors"]), "finite and >= 0"),
    }
    for name, (edited, why) in edits.items():
        write_dataset(edited, tmp_path / name)
        with pytest.raises(ValueError, match=rf"{name}.*{why}"):
            mj.load_study(tmp_path / name)
    sw = make_sweep().to_xarray()
    sweep_edits = {
        "curve_dims.nc": (sw.assign(curve=sw["curve"].rename(step="other")), "curve"),
        "float_seed.nc": (sw.assign_coords(seed=[0.5, 7.0]), "seed must hold integers"),
        "sweep_version.nc": (sw.assign_attrs(version=2), "version 2"),
    }
    for name, (edited, why) in sweep_edits.items():
        write_dataset(edited, tmp_path / name)
        with pytest.raises(ValueError, match=rf"{name}.*{why}"):
            load_sweep(tmp_path / name)


def test_wrong_suffix_names_the_file(real_study, tmp_path):
    for result in (real_study, make_sweep()):
        with pytest.raises(ValueError, match=r"result\.zarr.*'\.json'.*'\.nc'"):
            result.save(tmp_path / "result.zarr")
    with pytest.raises(ValueError, match=r"sweep\.txt.*'\.json'.*'\.nc'"):
        make_sweep().save(tmp_path / "sweep.txt")
    (tmp_path / "sweep.pkl").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(ValueError, match=r"sweep\.pkl"):
        load_sweep(tmp_path / "sweep.pkl")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.pkl"]  # nothing written


def test_without_xarray_json_works_and_netcdf_says_how_to_install(
    real_study, tmp_path, monkeypatch
):
    monkeypatch.setitem(sys.modules, "xarray", None)  # `import xarray` now raises ImportError
    sw = make_sweep()
    for call in (
        real_study.to_xarray,
        sw.to_xarray,
        lambda: real_study.save(tmp_path / "s.nc"),
        lambda: sw.save(tmp_path / "w.nc"),
        lambda: load_sweep(tmp_path / "w.nc"),
    ):
        with pytest.raises(ImportError, match=HINT.replace("[", r"\[").replace("]", r"\]")):
            call()
    sw.save(tmp_path / "w.json")
    assert_same_sweep(sw, load_sweep(tmp_path / "w.json"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.json"]


def test_nothing_is_pickled():
    """No code path of the package can unpickle: no pickle module, no `allow_pickle=True`, and
    every `np.load` (which unpickles object arrays when allowed) says `allow_pickle=False`;
    results are JSON or netCDF only."""
    root = Path(mj.__file__).parent
    forbidden = ("import pickle", "from pickle", "pickle.load", "allow_pickle=True", "cloudpickle")
    found = []
    for p in root.rglob("*.py"):
        text = p.read_text()
        found += [(p.name, bad) for bad in forbidden if bad in text]
        for call in re.findall(r"(?:np|numpy)\.load\(([^)]*)\)", text):
            if "allow_pickle=False" not in call:
                found.append((p.name, f"np.load({call})"))
    assert found == []


def test_netcdf_engines_read_each_other(real_study, tmp_path, monkeypatch):
    """h5netcdf and netCDF4 write the same netCDF-4 files: either reads the other's."""
    pytest.importorskip("xarray")
    pytest.importorskip("h5py")
    pytest.importorskip("h5netcdf")
    pytest.importorskip("netCDF4")
    import momentum_jax._labelled as lab

    for writer, reader in (("h5netcdf", "netcdf4"), ("netcdf4", "h5netcdf")):
        path = tmp_path / f"{writer}.nc"
        monkeypatch.setattr(lab, "netcdf_engine", lambda w=writer: w)
        real_study.save(path)
        monkeypatch.setattr(lab, "netcdf_engine", lambda r=reader: r)
        assert_same_study(real_study, mj.load_study(path))


def test_sweep_table():
    # the sweep of make_sweep: at lam = 0.9, h = 0.5 every run diverged, and HB's seed 7 at
    # lam = 0.5, h = 0.5 too; HB has 3 of 24 runs diverged, NAG 2
    sw = make_sweep()
    lines = sw.table().splitlines()
    assert lines[0] == "48 runs of 40 steps; 5 diverged" == sw.summary_line()
    for line, method, count, largest in (
        (lines[1], "hb", 3, "0:0.5, 0.5:0.25, 0.9:0.25"),
        (lines[2], "nag", 2, "0:0.5, 0.5:0.5, 0.9:0.25"),
    ):
        i = sw.methods.index(method)
        bounded = np.where(sw.diverged[i], np.inf, sw.final_loss[i])
        j, k, _ = np.unravel_index(np.argmin(bounded), bounded.shape)
        assert line == (
            f"{method:>12}: {count} of 24 diverged; lowest final loss {bounded.min():.4g} at "
            f"lam={sw.lams[j]:.3g}, h={sw.hs[k]:.3g}; largest h that stayed bounded, per lam: "
            f"{largest}"
        )
    assert len(lines) == 3
