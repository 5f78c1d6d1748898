"""Write the 0.2.0 model fixture of ``tests/test_model.py`` (run once, with xr_ktextures 0.2.0).

The files here were written by the code before the restructure of issue #18 (commit
2c87b50, whose ``KTextures`` took flat options): ``git worktree add /tmp/v020 2c87b50``,
then ``PYTHONPATH=/tmp/v020 python tests/data/make_0_2_0_fixture.py``. It does not run
with later versions, and does nothing when imported.
"""

import os

import numpy as np


def main() -> None:
    import xr_ktextures as xk

    rng = np.random.default_rng(1)
    a = rng.normal(100, 5, (6, 48, 48, 4))
    a[3:] += rng.normal(0, 30, (3, 48, 48, 4))
    a = a.astype("float32")
    m = xk.KTextures(
        k=3, seed=0, encoder_filters=4, dilations=(1, 2), texture_filters=2, texture_noise=2, texture_dilations=(1,)
    )
    m.fit(a, steps=2, batch_size=2, patch_size=32, verbose=0)
    out = os.path.dirname(os.path.abspath(__file__))
    m.save(os.path.join(out, "ktextures_0.2.0.keras"))
    r = np.random.default_rng(5)
    x = r.normal(100, 5, (64, 64, 4))
    x[:, 32:] += r.normal(0, 30, (64, 32, 4))
    x = x.astype("float32")
    x[3, 4, 1] = np.nan
    lab, sim = m.predict(x, return_simulated=True)
    np.savez_compressed(
        os.path.join(out, "ktextures_0.2.0_expected.npz"), x=x, labels=lab, simulated=sim, model_id=np.array(m.model_id)
    )
    print(m.model_id, m.view, m.pool, m.halo, np.bincount(lab.ravel()))


if __name__ == "__main__":
    main()
