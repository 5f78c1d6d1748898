"""Make the concepts figure of the docs from a real run on the shipped sample.

python docs/make_figures.py            # writes docs/_static/concepts.png (~1.5 min on 2 cores)
"""

from pathlib import Path

import keras
import matplotlib
import numpy as np
import rioxarray

import xr_ktextures as xk
from xr_ktextures.model import position_noise
from xr_ktextures.plot import _rgb, plot_labels

matplotlib.use("Agg")
import matplotlib.pyplot as plt

OUT = Path(__file__).parent / "_static" / "concepts.png"

da = rioxarray.open_rasterio(xk.sample_path()).assign_coords(band=["red", "green", "blue", "nir"])
model = xk.fit(da, k=4, seed=0, verbose=0)
labels = xk.segment(da, model)
sim = xk.simulate(da, model)

# Each class's texture over a 96 px square: the texture CNN applied to position noise.
noise = position_noise((0, 0), (96, 96), model.k * model.texture_noise, model.seed)
tex = keras.ops.convert_to_numpy(model.textures(noise[None]))[0]  # (96, 96, k, bands)
mean = keras.ops.convert_to_numpy(model.scaler.mean)
scale = keras.ops.convert_to_numpy(model.scaler.scale)
tex = tex * scale + mean

rgb, stretch = _rgb(da)
fig = plt.figure(figsize=(15, 7.5), layout="constrained")
grid = fig.add_gridspec(2, 3 + model.k)
ax = fig.add_subplot(grid[:, 0:2])
ax.imshow(rgb)
ax.set_title("image (RGB of a 4-band RGB-NIR scene)")
ax.set_axis_off()
ax = fig.add_subplot(grid[0, 2:4])
plot_labels(labels, ax)
ax.set_title(f"labels = which of the k={model.k} masks is on")
ax = fig.add_subplot(grid[0, 4:])
ax.imshow(_rgb(sim, stretch)[0])
ax.set_title("simulated image = Σ mask × texture")
ax.set_axis_off()
for j in range(model.k):
    ax = fig.add_subplot(grid[1, 2 + j])
    t = (tex[:, :, j, :3] - stretch[0]) / np.maximum(stretch[1] - stretch[0], 1e-6)
    ax.imshow(np.clip(t, 0, 1))
    ax.set_title(f"texture {j}")
    ax.set_axis_off()
fig.savefig(OUT, dpi=80)
print("wrote", OUT)
