"""The grid of a convergence study and of a sweep is sharded over all local devices, with the
same results as on one device (issue 5). The devices are 4 CPU devices forced with
`XLA_FLAGS=--xla_force_host_platform_device_count=4`, in a subprocess because the flag must be
set before jax is imported."""

import os
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np

    import momentum_jax as mj
    from momentum_jax._study import _convergence
    from momentum_jax._losses import paper_quadratic

    assert jax.local_device_count() == 4, jax.devices()
    outputs = []
    run = _convergence._run

    def spy(*args, **kwargs):  # record where the engine's results were computed
        out = run(*args, **kwargs)
        outputs.append(out)
        return out

    _convergence._run = spy

    # 5 learning rates x 2 methods = 10 points over 4 devices (longest first onto the least
    # loaded); chunks of 32 steps so the loop runs several chunks; HB diverges at h = 2^-1.
    loss, u0 = paper_quadratic(20.0), jnp.array([1.0, 1.0])
    kw = dict(hs=2.0 ** -np.arange(1, 6), lams=[0.9], T=2.0, chunk_size=32, divergence_limit=1e2,
              models=("gradient_flow", "hamiltonian"))
    one = mj.convergence_study(loss, u0, devices=jax.local_devices()[:1], **kw)
    assert len(outputs[-1][0].sharding.device_set) == 1
    four = mj.convergence_study(loss, u0, **kw)  # default: every device
    assert len(outputs[-1][0].sharding.device_set) == 4, outputs[-1][0].sharding
    assert four.config["devices"] == 4
    assert one.diverged_at[0, 0, 0] > 0
    for model in one.models:
        # each device now vectorises over a different number of points, which may change the
        # last bit of the transcendental functions: equal to rounding, not bit for bit
        np.testing.assert_allclose(four.errors[model], one.errors[model], rtol=1e-13, atol=0)
        np.testing.assert_array_equal(four.solver_failure[model], one.solver_failure[model])
    np.testing.assert_array_equal(four.diverged_at, one.diverged_at)
    # the closed form: the eigen-decomposition inside every device's part of the loop
    exact = mj.ClosedForm()
    one_x = mj.convergence_study(loss, u0, devices=jax.local_devices()[:1], solver=exact, **kw)
    four_x = mj.convergence_study(loss, u0, solver=exact, **kw)
    for model in one.models:
        np.testing.assert_allclose(four_x.errors[model], one_x.errors[model], rtol=1e-13, atol=0)
        np.testing.assert_allclose(one_x.errors[model], one.errors[model], rtol=1e-8, atol=0)

    # sweeps: 7 learning rates x 5 momenta = 35 points, padded to 36 on 4 devices.
    # A dense loss: the batched matvec sums in an order that depends on the per-device batch
    grid = dict(hs=np.geomspace(1e-3, 0.2, 7), lams=np.linspace(0.0, 0.9, 5), steps=300)
    spec = mj.get_loss("dense_quadratic", dim=16, condition=50.0)
    one = mj.sweep(spec.fn, spec.u0, methods="hb", devices=jax.local_devices()[:1], **grid)
    four = mj.sweep(spec.fn, spec.u0, methods="hb", **grid)
    np.testing.assert_array_equal(four.diverged_at, one.diverged_at)
    assert np.any(one.diverged_at > 0) and np.any(one.diverged_at < 0)
    np.testing.assert_allclose(four.final_loss, one.final_loss, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(four.min_loss, one.min_loss, rtol=1e-12, atol=1e-300)

    # the paper's quadratic with a curve and a model distance
    diag = paper_quadratic(20.0)
    kw = grid | dict(record_every=100, models=("gradient_flow",))
    one = mj.sweep(diag, u0, devices=jax.local_devices()[:1], **kw)
    four = mj.sweep(diag, u0, **kw)
    assert four.config["devices"] == 4
    np.testing.assert_array_equal(four.diverged_at, one.diverged_at)
    assert np.any(one.diverged_at > 0) and np.any(one.diverged_at < 0)
    np.testing.assert_array_equal(four.final_loss, one.final_loss)  # elementwise: bit for bit
    np.testing.assert_array_equal(four.curve, one.curve)
    np.testing.assert_allclose(
        four.distances["gradient_flow"], one.distances["gradient_flow"], rtol=1e-13
    )
    print("MULTIDEVICE OK")
    """
)


def test_four_cpu_devices_give_the_one_device_results():
    env = dict(
        os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu"
    )
    proc = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "MULTIDEVICE OK" in proc.stdout
