"""The command line's output: --help with defaults, the progress bar, file permissions."""

import io
import os
import stat
import sys

import pytest
from helpers import CLI_STUDY, fake_study_loop, synthetic_study

import momentum_jax as mj
from momentum_jax._cli import main

STUDY = CLI_STUDY


# -- 13. --help, progress on a terminal, file permissions ---------------------------------------


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit) as info:
        main(["study", "--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0
    for text in ("(default: 0.9)", "(default: 2)", "(default: 2^-4:2^-10)", "(default: zero)"):
        assert text in " ".join(out.split()), text


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize(
    "tty, flag, shown", [(True, [], True), (True, ["--no-progress"], False), (False, [], False)]
)
def test_study_shows_progress_on_a_terminal(capsys, monkeypatch, tty, flag, shown):
    real, seen = mj.convergence_study, {}

    def spy(*args, progress=None, **kwargs):
        seen["progress"] = progress
        if progress is not None:
            for done in (0, 5, 10):
                progress(done, 10)  # what the compiled loop reports, ending at the total
        return real(*args, **kwargs)

    monkeypatch.setattr(mj, "convergence_study", spy)
    monkeypatch.setattr("momentum_jax._study._convergence._run", fake_study_loop)
    stream = Terminal() if tty else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    assert main([*STUDY, *flag]) == 0
    assert (seen["progress"] is not None) == shown
    text = stream.getvalue()
    if shown:
        assert "\r" in text and "100.0%" in text and text.endswith("\n")
    else:
        assert text == ""


def test_progress_bar_ends_its_line_once():
    from momentum_jax.paper import Progress

    stream = Terminal()
    bar = Progress(4, "x", stream=stream)
    bar.update(2)
    assert not stream.getvalue().endswith("\n")
    bar.update(4)  # done: the line is ended at once
    assert stream.getvalue().endswith("\n") and stream.getvalue().count("\n") == 1
    bar.update(4)
    bar.close()
    assert stream.getvalue().count("\n") == 1  # not a second bar or an empty line
    with Progress(4, "y", stream=stream) as other:  # a context manager ends a bar left open
        other.update(1)
    assert stream.getvalue().endswith("\n") and stream.getvalue().count("\n") == 2
    quiet = Terminal()
    Progress(4, "z", stream=quiet).close()
    assert quiet.getvalue() == ""


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_output_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        synthetic_study().save(tmp_path / "s.json")
        mj.dump_json(tmp_path / "d.json", {"a": 1})
    finally:
        os.umask(old)
    for name in ("s.json", "d.json"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == mode


def test_overwritten_file_keeps_its_mode(tmp_path):
    path = tmp_path / "s.json"
    path.write_text("{}")
    os.chmod(path, 0o640)
    synthetic_study().save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640 and mj.load_study(path).hs.size == 3
