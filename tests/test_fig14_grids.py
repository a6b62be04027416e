"""Fig 14's two grids: the quadratic rows on `points_h x points_lam`, the digits row on its own
`digits_points_h x digits_points_lam` over the same ranges (16 x 16 by default, 32 x 32 with
`--full`), its arrays carrying the grid they were computed on."""

import numpy as np

from momentum_jax.paper import load_module

fig14 = load_module("fig14_regime_map")


class _Bar:
    def advance(self):
        pass


class _Context:
    def progress(self, total, label):
        return _Bar()


def test_digits_row_has_its_own_grid_over_the_same_ranges():
    config = fig14.CONFIG
    hs, lams = fig14.grid(config)
    dhs, dlams = fig14.grid(config, "digits_")
    assert (hs.size, lams.size) == (32, 32) and (dhs.size, dlams.size) == (16, 16)
    np.testing.assert_allclose([dhs[0], dhs[-1]], [hs[0], hs[-1]], rtol=1e-15)
    np.testing.assert_allclose([dlams[0], dlams[-1]], [lams[0], lams[-1]], rtol=1e-15)
    full = config | fig14.FULL
    assert [a.size for a in fig14.grid(full, "digits_")] == [32, 32]
    np.testing.assert_array_equal(fig14.grid(full, "digits_")[0], hs)  # --full: the same grid


def test_digits_part_runs_on_and_returns_its_grid():
    config = fig14.CONFIG | {
        "points_h": 3,
        "points_lam": 3,
        "digits_points_h": 2,
        "digits_points_lam": 3,
        "digits_images": 16,
        "digits_steps": 4,
        "digits_record_every": 2,
        "sharpness_max_iters": 50,  # too few to converge: no ratio, and the summary says so
    }
    arrays, summary, sw = fig14.digits_part(config, _Context())
    hs, lams = fig14.grid(config, "digits_")
    np.testing.assert_array_equal(arrays["d/hs"], hs)
    np.testing.assert_array_equal(arrays["d/lams"], lams)
    assert arrays["d/final_loss"].shape == (2, 3, 2)  # (method, lam, h)
    assert arrays["d/threshold_ratio/nag"].shape == (3, 2)
    np.testing.assert_array_equal(sw.hs, hs)
    assert summary["status"].startswith("12 runs of 4 steps")
    for method in ("hb", "nag"):
        over = summary[method]["sharpness_over_threshold"]
        unconverged = summary[method]["sharpness_unconverged_points"]
        assert over["points"] == 6 - unconverged
        assert (over["median"] is None) == (over["points"] == 0)
        ratio = arrays[f"d/threshold_ratio/{method}"]
        assert np.isfinite(ratio).sum() == over["points"]  # unconverged points are NaN
