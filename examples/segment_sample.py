"""Fit, segment and analyse the shipped sample with xarray (runs offline on a laptop CPU).

python examples/segment_sample.py
"""

import numpy as np
import rioxarray
import xarray as xr

import xr_ktextures as xk

# A lazy, chunked 4-band cube; a second "date" is made by brightening the first.
da = rioxarray.open_rasterio(xk.sample_path(), chunks={"y": 256, "x": 256})
da = da.assign_coords(band=["red", "green", "blue", "nir"]).astype("float32")
cube = xr.concat([da, da * 1.1], dim="time").assign_coords(
    time=np.array(["2024-06-01", "2024-07-01"], dtype="datetime64[ns]")
)

model = cube.ktex.fit(k=5, seed=0)  # computes only a few sampled chunks
labels = cube.ktex.segment()  # lazy (time, y, x) uint8, CRS kept
print(labels)

# Ordinary xarray analysis on the labels: area (ha) per class per date.
pixel_ha = abs(float(labels.rio.resolution()[0] * labels.rio.resolution()[1])) / 1e4
valid = labels.where(labels != xk.NODATA)
area = xr.concat([(valid == c).sum(("y", "x")) * pixel_ha for c in range(model.k)], dim="cls")
print(area.assign_coords(cls=range(model.k)).compute().to_pandas())

# Class change between the two dates (same model, so class ids mean the same thing).
changed = (labels.isel(time=0) != labels.isel(time=1)).mean().compute()
print(f"share of pixels whose class changed: {float(changed):.3f}")
