"""Issue 21, "The command line and labelled results" (items 12, 13, 16): wrong arguments are one
line and exit status 2 before anything is computed, one grid syntax for `study` and `sweep` with
exact powers of two, `study --norm`, one suffix rule for `--out` and `save`, a single method name
taken as one name, and a float32 warning that says what the start's dtype implies. (Item 14 is
in test_labelled.py, item 15 in test_plotting.py.)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import momentum_jax as mj
from momentum_jax import _cli, _validate
from momentum_jax._cli import main
from momentum_jax._losses import paper_quadratic
from momentum_jax._validate import warn_if_low_precision

STUDY = ["study", "--loss", "quadratic", "--T", "1"]
SWEEP = ["sweep", "--loss", "quadratic", "--steps", "3"]


class Called(Exception):
    """Raised by the stand-ins of `convergence_study` and `sweep`: what they were called with."""

    def __init__(self, args, kwargs):
        super().__init__("called")
        self.args, self.kwargs = args, kwargs


@pytest.fixture
def capture(monkeypatch):
    """The study and sweep the CLI would run, replaced by stand-ins that record their keyword
    arguments and stop (no compilation); `capture(argv)` runs the CLI and returns the keyword
    arguments (`capture(argv, positional=True)`: the positional ones, the loss and the start)."""

    def stand_in(*args, **kwargs):
        raise Called(args, kwargs)

    monkeypatch.setattr("momentum_jax.convergence_study", stand_in)
    monkeypatch.setattr("momentum_jax.sweep", stand_in)

    def run(argv, positional=False):
        with pytest.raises(Called) as info:
            main(list(argv))
        return info.value.args if positional else info.value.kwargs

    monkeypatch.setenv("MOMENTUM_JAX_TRACEBACK", "1")  # let the stand-in's exception through
    return run


@pytest.fixture
def nothing_runs(monkeypatch):
    """Any study or sweep started by the CLI fails the test: the refusal came too late."""

    def refuse(*args, **kwargs):
        raise AssertionError("computed before the argument was checked")

    monkeypatch.setattr("momentum_jax.convergence_study", refuse)
    monkeypatch.setattr("momentum_jax.sweep", refuse)


def usage_error(capsys, argv) -> str:
    """Run the CLI; assert one line on stderr and exit status 2; return that line."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 2, (argv, code, err)
    assert err.count("\n") == 1 and err.startswith("momentum-jax: error: "), err
    assert "Traceback" not in err
    return err


# -- item 12: one line and exit 2 ------------------------------------------------------------


@pytest.mark.parametrize("command", [STUDY, SWEEP])
def test_loss_arg_of_the_wrong_kind_is_a_usage_error(capsys, nothing_runs, command):
    # before: "ValueError: could not convert string to float: 'abc'", exit status 1
    err = usage_error(capsys, [*command, "--loss-arg", "kappa=abc"])
    assert "--loss-arg kappa='abc' not accepted by loss 'quadratic'" in err


@pytest.mark.parametrize("command", [STUDY, SWEEP])
def test_x0_for_a_loss_with_a_pytree_start_is_a_usage_error(capsys, capture, command):
    # before: "ValueError: setting an array element with a sequence...", exit status 1
    argv = [command[0], "--loss", "digits_autoencoder", *command[3:], "--x0", "1"]
    err = usage_error(capsys, argv)  # (refused before the stand-in of the run is reached)
    assert "--x0 cannot set the start of loss 'digits_autoencoder'" in err
    assert "pytree of 12 arrays" in err  # 6 layers, a weight matrix and a bias each
    # the start of a loss with one array is still set by --x0, with the loss's options
    loss, u0 = capture([*command, "--loss-arg", "kappa=4", "--x0", "-1.5,0.25"], positional=True)
    np.testing.assert_array_equal(u0, [-1.5, 0.25])
    assert float(loss(jnp.array([1.0, 0.0]))) == 2.0  # kappa 4: 1/2 * 4 * 1^2


def test_quantity_is_checked_before_the_sweep(capsys, nothing_runs, tmp_path):
    # before: checked after the whole sweep had run
    png = str(tmp_path / "p.png")
    err = usage_error(capsys, [*SWEEP, "--plot", png, "--quantity", "curve"])
    assert "--quantity got 'curve'" in err and "final_loss, min_loss, diverged_at" in err
    err = usage_error(capsys, [*SWEEP, "--plot", png, "--quantity", "distance:hamiltonian"])
    assert "--quantity got 'distance:hamiltonian'" in err
    assert not (tmp_path / "p.png").exists()


def test_quantity_without_plot_is_refused(capsys, capture, tmp_path):
    # before: silently ignored
    err = usage_error(capsys, [*SWEEP, "--quantity", "min_loss"])
    assert "--quantity 'min_loss' chooses what --plot draws; give --plot FILE.png" in err
    # every quantity that the sweep will record is accepted with --plot
    png = str(tmp_path / "p.png")
    argv = [*SWEEP, "--plot", png, "--record-every", "1", "--model", "gradient_flow"]
    for quantity in ("min_loss", "diverged_at", "curve", "distance:gradient_flow"):
        assert capture([*argv, "--quantity", quantity])["record_every"] == 1


def test_a_single_method_name_is_one_method():
    # before: methods="hb" was read as the methods "h", "b" (and refused as "h")
    as_names = _validate.as_names
    assert as_names("methods", "hb") == ("hb",)
    assert as_names("methods", ["hb", "nag"]) == ("hb", "nag")
    with pytest.raises(TypeError, match="methods must be a name or a sequence of names"):
        as_names("methods", 3)
    loss, u0 = paper_quadratic(10.0), jnp.array([1.0, 1.0])
    kw = dict(hs=[0.1, 0.05], lams=[0.5], steps=4)
    one, many = mj.sweep(loss, u0, methods="hb", **kw), mj.sweep(loss, u0, methods=("hb",), **kw)
    assert one.methods == many.methods == ("hb",)
    np.testing.assert_array_equal(one.final_loss, many.final_loss)  # the same runs, exactly
    kw = dict(hs=[0.25, 0.125], lams=[0.5], T=0.5)
    one = mj.convergence_study(loss, u0, methods="nag", models="gradient_flow", **kw)
    many = mj.convergence_study(loss, u0, methods=("nag",), models=("gradient_flow",), **kw)
    assert one.methods == ("nag",) and one.models == ("gradient_flow",)
    np.testing.assert_array_equal(one.errors["gradient_flow"], many.errors["gradient_flow"])


# -- item 13: one grid syntax, exact powers of two, --norm, one --out rule ---------------------


def test_study_takes_the_sweep_grid_syntax(capture):
    # before: `study --lam 0:0.9:3` was refused ("--lam expects comma-separated numbers")
    kwargs = capture([*STUDY, "--lam", "0:0.9:3", "--h", "2^-2:2^-5:4"])
    assert kwargs["lams"] == [0.0, 0.45, 0.9]
    assert kwargs["hs"] == [0.25, 0.125, 0.0625, 0.03125]
    kwargs = capture([*SWEEP, "--lam", "0:0.9:3", "--h", "2^-2:2^-5:4"])
    assert kwargs["lams"] == [0.0, 0.45, 0.9]
    assert kwargs["hs"] == [0.25, 0.125, 0.0625, 0.03125]
    for command in (STUDY, SWEEP):  # the same grids from both
        assert capture([*command, "--h", "2^-3:2^-5", "--lam", "0.5,0.7"])["hs"] == [
            0.125,
            0.0625,
            0.03125,
        ]


def test_power_of_two_ranges_are_exact():
    # before: `--h 2^-1:2^-6:6` gave 0.25000000000000006 (np.geomspace)
    parse_grid = _cli.parse_grid
    assert parse_grid("h", "2^-1:2^-6:6") == [2.0**-k for k in range(1, 7)]  # exact equality
    assert parse_grid("h", "2^-1:2^-7:4") == [2.0**-1, 2.0**-3, 2.0**-5, 2.0**-7]
    assert parse_grid("h", "2^-6:2^-1:6") == [2.0**-k for k in range(6, 0, -1)]
    assert parse_grid("h", "2^-1:2^-8:32")[0] == 0.5  # not whole halvings: geometric
    values = parse_grid("h", "0.3:0.1:3")
    assert values[0] == 0.3 and values[-1] == 0.1
    assert values[1] == pytest.approx(np.sqrt(0.03), rel=1e-15, abs=0)
    assert parse_grid("lam", "0:0.9:4") == pytest.approx([0.0, 0.3, 0.6, 0.9], abs=1e-16)


@pytest.mark.parametrize(
    "option, text, why",
    [
        ("--lam", "0:0.9", "--lam expects A:B:n or a comma list"),
        ("--h", "2^-1:2^-3:0", "n >= 1"),
        ("--h", "0:0.1:3", "> 0"),
        ("--h", "1:2:3:4", "--h expects A:B, A:B:n or a comma list"),
    ],
)
def test_bad_grids_are_refused_alike_by_study_and_sweep(capsys, nothing_runs, option, text, why):
    for command in (STUDY, SWEEP):
        assert why in usage_error(capsys, [*command, option, text])


def test_study_has_norm(capsys, capture):
    # before: `study --norm max` was "unrecognized arguments"
    assert capture([*STUDY, "--norm", "max"])["norm"] == "max"
    assert capture(STUDY)["norm"] == "euclidean"
    err = usage_error(capsys, [*STUDY, "--norm", "l1"])
    assert "--norm got l1; allowed: euclidean, max" in err


@pytest.mark.parametrize("command", [STUDY, SWEEP])
def test_out_suffix_decides_the_format_or_is_refused(capsys, nothing_runs, tmp_path, command):
    # before: `study --out st.out` wrote JSON whatever the name, and --help said "(JSON)"
    err = usage_error(capsys, [*command, "--out", str(tmp_path / "st.out")])
    assert "--out" in err and "must end in .json or .nc (.json: JSON, .nc: netCDF)" in err
    assert list(tmp_path.iterdir()) == []


def test_help_says_the_suffix_rule_and_study_out_nc_is_netcdf(capsys, tmp_path):
    for command in ("study", "sweep"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "FILE.json (JSON) or FILE.nc (netCDF" in text
        assert "A:B:n for n values" in text
    pytest.importorskip("xarray")
    path = tmp_path / "st.nc"
    code = main([*STUDY, "--h", "2^-2:2^-3", "--lam", "0.5", "--model", "gradient_flow",
                 "--out", str(path)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert path.read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"  # netCDF-4 (HDF5), not JSON
    assert mj.load_study(path).hs.tolist() == [0.25, 0.125]


# -- the study's models are objects, built from --model, --velocity, --order, --constant -------


def test_study_passes_model_objects_and_no_model_flags(capture):
    argv = [*STUDY, "--model", "gradient_flow,hamiltonian,modified_flow,hessian_damped"]
    kwargs = capture(argv)
    # the default options: the plain aliases (so the study's keys stay the aliases)
    assert kwargs["models"] == ["gradient_flow", "hamiltonian", "modified_flow", "hessian_damped"]
    assert kwargs["init_order"] == 1
    assert not {"hamiltonian_velocity", "order", "constant"} & set(kwargs)
    kwargs = capture([*argv, "--velocity", "taylor", "--order", "2", "--constant", "printed"])
    assert kwargs["models"] == [
        "gradient_flow",
        mj.Hamiltonian(velocity="taylor"),
        mj.ModifiedFlow(order=2, constant="printed"),
        mj.HessianDamped(velocity="taylor"),
    ]
    assert kwargs["init_order"] == 2  # --order is also the manifold start's order
    assert not {"hamiltonian_velocity", "order", "constant"} & set(kwargs)


# -- item 16: the float32 warning says what the start's dtype implies --------------------------


def test_float32_warning_with_float64_on_names_the_start():
    # before: "Enable float64 at program start", which was on already
    u32 = jnp.ones(2, jnp.float32)
    assert jax.config.jax_enable_x64  # (tests/conftest.py)
    with pytest.warns(RuntimeWarning) as record:
        warn_if_low_precision(u32, 1e-12, "solve")
    (message,) = [str(w.message) for w in record]
    assert "resolution 1.2e-07" in message
    assert "float64 is enabled, but the start holds float32" in message
    assert "x.astype(jnp.float64)" in message
    assert "jax_enable_x64', True" not in message


def test_float32_warning_with_float64_off_says_how_to_enable_it():
    with jax.enable_x64(False):
        with pytest.warns(RuntimeWarning) as record:
            warn_if_low_precision(jnp.ones(2), 1e-12, "solve")
    (message,) = [str(w.message) for w in record]
    assert "float64 is disabled" in message and "jax.config.update('jax_enable_x64', True)" in (
        message
    )


def test_sweep_no_min_loss_reaches_sweep(capture):
    assert capture(SWEEP)["min_loss"] is True
    assert capture([*SWEEP, "--no-min-loss"])["min_loss"] is False


def test_sweep_no_min_loss_has_no_min_loss_to_plot(capsys, nothing_runs, tmp_path):
    argv = [*SWEEP, "--no-min-loss", "--plot", str(tmp_path / "m.png"), "--quantity", "min_loss"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--quantity got 'min_loss'" in err and "final_loss" in err
