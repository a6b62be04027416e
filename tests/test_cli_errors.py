"""The command line: one line and exit 2 for a wrong argument, checked before computing;
--out, loss modules and files, repeated and list-valued options."""

import json
import os
import sys

import pytest
from helpers import CLI_STUDY, U0, fake_study_loop, half_square

import momentum_jax as mj
from momentum_jax._cli import main

# -- 6. a horizon whose step count overflows int32 ------------------------------------------


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_step_count_beyond_int32_names_T(capsys):
    with pytest.raises(ValueError, match=r"T=1e\+10 needs 2e\+11 steps at h=0.05, more than the"):
        mj.convergence_study(half_square, U0, hs=[0.1, 0.05], lams=[0.5], T=1e10)
    code, out, err = run_cli(capsys, "study", "--loss", "quadratic", "--T", "1e10")
    assert code == 2 and err.count("\n") == 1
    assert "T=1e+10 needs" in err and "use a shorter T or larger h" in err
    assert "shorter than the largest h" not in err


# -- 7. study --out checked before computing; the table printed before saving ----------------

STUDY = CLI_STUDY


def refuse_to_run(*args, **kwargs):
    raise AssertionError("the study was computed before --out was checked")


@pytest.mark.parametrize(
    "out, text",
    [
        ("afile/s.json", "is not a folder"),
        ("adir", "is a folder"),
        ("adir/", "is a folder"),
        ("", "--out expects a file name"),
    ],
)
def test_bad_out_is_refused_before_computing(capsys, monkeypatch, tmp_path, out, text):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    monkeypatch.setattr("momentum_jax._study._convergence._run", refuse_to_run)
    code, stdout, err = run_cli(capsys, *STUDY, "--out", out)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("momentum-jax: error: --out ") and text in err


@pytest.mark.skipif(not os.path.isdir("/sys"), reason="needs a folder nobody may write in")
def test_unwritable_out_is_refused_before_computing(capsys, monkeypatch):
    monkeypatch.setattr("momentum_jax._study._convergence._run", refuse_to_run)
    code, _, err = run_cli(capsys, *STUDY, "--out", "/sys/s.json")
    assert code == 2 and err.count("\n") == 1
    assert "--out '/sys/s.json'" in err and "cannot write" in err


def test_table_is_printed_before_a_failing_save(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr("momentum_jax._study._convergence._run", fake_study_loop)

    def failing_save(self, path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("momentum_jax._study._result.Study.save", failing_save)
    code, out, err = run_cli(capsys, *STUDY, "--out", str(tmp_path / "s.json"))
    assert "fitted order" in out  # the computed table is not lost
    assert code == 2 and err.count("\n") == 1 and "Permission denied" in err and "--out" in err


def test_out_in_a_new_folder_is_written(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr("momentum_jax._study._convergence._run", fake_study_loop)
    path = tmp_path / "new" / "deeper" / "s.json"
    code, out, err = run_cli(capsys, *STUDY, "--out", str(path))
    assert code == 0 and mj.load_study(path).hs.tolist() == [0.125, 0.0625]


# -- 8. a loss module that fails to import -----------------------------------------------------


@pytest.mark.parametrize(
    "source, text",
    [
        ("raise RuntimeError('boom at import')\n", "RuntimeError: boom at import"),
        ("def f(u:\n    return u\n", "SyntaxError"),
        ("import sys\nsys.exit(3)\n", "SystemExit: 3"),
        ("import no_such_module_xyz\n", "No module named 'no_such_module_xyz'"),
    ],
)
def test_loss_module_failing_at_import_is_one_line(capsys, monkeypatch, tmp_path, source, text):
    name = f"badmod_{abs(hash(source))}"
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    code, _, err = run_cli(capsys, "study", "--loss", f"{name}:f", "--x0", "1,1")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert f"--loss '{name}:f'" in err and text in err


def test_any_failure_inside_a_command_is_one_line_exit_1(capsys, monkeypatch):
    def broken_run(*args, **kwargs):
        raise RuntimeError("RESOURCE_EXHAUSTED: out of memory\nwhile allocating 1 TB")

    monkeypatch.setattr("momentum_jax._study._convergence._run", broken_run)
    code, out, err = run_cli(capsys, *STUDY)
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("momentum-jax: error: RuntimeError: RESOURCE_EXHAUSTED")
    monkeypatch.setenv("MOMENTUM_JAX_TRACEBACK", "1")
    with pytest.raises(RuntimeError, match="RESOURCE_EXHAUSTED"):
        main(STUDY)


def test_warnings_are_one_line_each(capsys, monkeypatch):
    monkeypatch.setattr("momentum_jax._study._convergence._run", fake_study_loop)
    argv = ["study", "--loss", "quadratic", "--h", "2^-3:2^-4", "--T", "1", "--init", "manifold"]
    code, out, err = run_cli(capsys, *argv)  # kappa = 10, lam = 0.9 (the defaults)
    assert code == 0 and err.count("\n") == 1
    assert err.startswith("momentum-jax: warning: convergence_study(init='manifold'): the manifold")


# -- 11. --loss path/to/file.py:fn and modules of the current directory -----------------------

USER_LOSS = (
    "import jax.numpy as jnp\n\n\ndef fn(u):\n    return 0.5 * (3.0 * u[0] ** 2 + u[1] ** 2)\n"
)


@pytest.fixture
def user_loss_dir(tmp_path, monkeypatch):
    """A folder with a loss module, as the current directory; `sys.path` restored after."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("momentum_jax._study._convergence._run", fake_study_loop)
    (tmp_path / "sub").mkdir()
    for path in (tmp_path / "myloss_cwd.py", tmp_path / "sub" / "myloss_file.py"):
        path.write_text(USER_LOSS)
    return tmp_path


@pytest.mark.parametrize(
    "spec", ["myloss_cwd:fn", "sub/myloss_file.py:fn", "{dir}/sub/myloss_file.py:fn"]
)
def test_loss_from_the_current_directory_or_a_file(capsys, user_loss_dir, spec):
    spec = spec.format(dir=user_loss_dir)
    code, out, err = run_cli(capsys, *STUDY[:2], spec, *STUDY[3:], "--x0", "1,1", "--json")
    assert code == 0, err
    assert json.loads(out)["config"]["loss"] == "fn"


@pytest.mark.parametrize(
    "spec, text",
    [
        ("nowhere/none.py:fn", "no such file"),
        ("sub/myloss_file.py:nothing", "has no attribute 'nothing'"),
        ("sub/myloss_file.py:", "expects module:function or path/to/file.py:function"),
        ("missing_mod_xyz:fn", "No module named 'missing_mod_xyz'"),
        ("sub:fn", "module 'sub' has no attribute 'fn'"),
    ],
)
def test_loss_file_errors_are_one_line(capsys, user_loss_dir, spec, text):
    code, _, err = run_cli(capsys, "study", "--loss", spec, "--x0", "1,1")
    assert code == 2 and err.count("\n") == 1 and "--loss " in err and repr(spec) in err
    assert text in err


# -- 12. repeated and list-valued options --------------------------------------------------------


@pytest.mark.parametrize(
    "extra, text",
    [
        (["--T", "1,2"], "--T expects one number, got '1,2'"),
        (["--init", "zero,manifold"], "--init expects one of zero, manifold, got 'zero,manifold'"),
        (
            ["--velocity", "taylor,paper"],
            "--velocity expects one of match, taylor, paper, manifold, discrete",
        ),
        (["--constant", "corrected,printed"], "--constant expects one of corrected, printed"),
        (["--T", "1", "--T", "2"], "--T given twice ('1', then '2'); give it once"),
        (["--init", "zero", "--init", "manifold"], "--init given twice"),
        (["--x0", "1,1", "--x0", "2,2"], "--x0 given twice"),
        (["--loss", "quadratic"], "--loss given twice"),
        (["--order", "1", "--order", "2"], "--order given twice"),
        (["--out", "a.json", "--out", "b.json"], "--out given twice"),
    ],
)
def test_single_valued_options_refuse_lists_and_repeats(capsys, monkeypatch, extra, text):
    monkeypatch.setattr("momentum_jax._study._convergence._run", refuse_to_run)
    code, _, err = run_cli(capsys, "study", "--loss", "quadratic", "--h", "2^-3:2^-4", *extra)
    assert code == 2 and err.count("\n") == 1 and text in err


def test_loss_arg_with_a_user_function_is_refused(capsys, user_loss_dir):
    argv = ["study", "--loss", "myloss_cwd:fn", "--x0", "1,1", "--loss-arg", "kappa=3"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and "--loss-arg applies to registered losses only" in err


def test_list_options_accumulate_when_repeated(capsys, monkeypatch):
    monkeypatch.setattr("momentum_jax._study._convergence._run", fake_study_loop)
    argv = ["study", "--loss", "quadratic", "--T", "1", "--json", "--lam", "0.5", "--lam", "0.8"]
    argv += ["--h", "2^-3:2^-4", "--h", "2^-6", "--method", "hb", "--method", "gd"]
    argv += ["--model", "gradient_flow", "--model", "hamiltonian"]
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["axes"]["lam"] == [0.5, 0.8]
    assert doc["axes"]["h"] == [2.0**-3, 2.0**-4, 2.0**-6]
    assert doc["axes"]["method"] == ["hb", "gd"]
    assert doc["models"] == ["gradient_flow", "hamiltonian"]
