"""Edited, truncated or foreign study files are refused, naming the file and the field."""

import json

import numpy as np
import pytest
from helpers import synthetic_study

import momentum_jax as mj

# -- 4. an edited study file ----------------------------------------------------------------


def _set(path, value):
    def edit(d):
        *head, last = path
        for key in head:
            d = d[key]
        d[last] = value

    return edit


@pytest.mark.parametrize(
    "edit, text",
    [
        (_set(["version"], 99), r"version 99 is not one of \[1, 2, 3\]"),
        (
            _set(["errors", "gradient_flow"], [[[0.1, 0.2]]] * 2),
            r"errors\['gradient_flow'\] has shape",
        ),
        (_set(["axes", "h"], [0.1, 0.05]), "has shape"),
        (_set(["axes", "h"], [0.1, -0.05, -0.1]), "axis h must hold finite, positive"),
        (_set(["axes", "h"], [0.025, 0.05, 0.1]), "strictly decreasing"),
        (_set(["axes", "lam"], [1.5]), r"axis lam must hold values in \[0, 1\)"),
        (_set(["axes", "method"], []), "the axes must be non-empty"),
        (_set(["diverged_at"], [[[-1, -1]]] * 2), "diverged_at has shape"),
        (_set(["diverged_at"], [[[-1, -1, 2.5]]] * 2), "diverged_at must hold integers >= -1"),
        (_set(["diverged_at"], [[[-1, -1, -7]]] * 2), "diverged_at must hold integers >= -1"),
        (_set(["fit_points"], 0), "fit_points must be an integer >= 2, got 0"),
        (_set(["fit_points"], "4"), "fit_points must be an integer >= 2"),
        (
            _set(["errors", "gradient_flow", 0, 0, 1], None),
            "must be finite and >= 0 at the 6 points",
        ),
        (_set(["errors", "gradient_flow", 1, 0, 2], -0.5), "must be finite and >= 0"),
        (_set(["solver_failure", "gradient_flow"], [["", ""]]), "solver_failure"),
        (_set(["solver_steps", "gradient_flow"], [1, 2]), "solver_steps"),
        (_set(["models"], ["gradient_flow", "hamiltonian"]), "hamiltonian"),
    ],
)
def test_edited_study_file_is_refused(tmp_path, edit, text):
    path = tmp_path / "s.json"
    synthetic_study().save(path)
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=text) as info:
        mj.load_study(path)
    assert str(path) in str(info.value)


def test_nan_error_written_by_hand_is_refused(tmp_path):
    path = tmp_path / "s.json"
    synthetic_study().save(path)
    text = path.read_text()
    doc = json.loads(text)
    doc["errors"]["gradient_flow"][0][0][0] = float("nan")
    path.write_text(json.dumps(doc))  # json writes the non-standard literal NaN
    assert "NaN" in path.read_text()
    with pytest.raises(ValueError, match="must be finite and >= 0"):
        mj.load_study(path)
    # a point that is flagged (diverged) may have a null error; it is not reported "ok"
    doc["diverged_at"][0][0][0] = 3
    path.write_text(json.dumps(doc))
    back = mj.load_study(path)
    assert back.status[0, 0, 0] == "diverged at step 3" and np.isnan(
        back.errors["gradient_flow"][0, 0, 0]
    )
    assert np.all(back.status.ravel()[1:] == "ok")
