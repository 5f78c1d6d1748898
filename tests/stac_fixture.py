"""A local STAC catalogue for the tests: one COG per band and date, written from the shipped sample.

Nothing touches the network: items are pystac objects whose asset hrefs are local files,
with ``proj:`` (epsg/code, shape, transform) and ``eo:bands`` / ``raster:bands`` metadata.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pystac
import rasterio
from pystac.extensions.eo import EOExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import RasterExtension
from rasterio.warp import transform_bounds

import xr_ktextures as xk

BANDS = ("red", "green", "blue", "nir")
DATES = (dt.datetime(2024, 5, 1), dt.datetime(2024, 6, 1), dt.datetime(2024, 7, 1))


def write_catalog(root: Path) -> list[pystac.Item]:
    """Write COGs for three dates (brightness altered per date; a nodata hole on the last) and return items."""
    with rasterio.open(xk.sample_path()) as src:
        data, profile, transform, crs = src.read(), src.profile, src.transform, src.crs
    h, w = data.shape[1:]
    bbox = list(transform_bounds(crs, "EPSG:4326", *rasterio.transform.array_bounds(h, w, transform)))
    geometry = {
        "type": "Polygon",
        "coordinates": [
            [[bbox[0], bbox[1]], [bbox[2], bbox[1]], [bbox[2], bbox[3]], [bbox[0], bbox[3]], [bbox[0], bbox[1]]]
        ],
    }
    items = []
    for t, date in enumerate(DATES):
        item = pystac.Item(
            id=f"sample-{date:%Y%m%d}",
            geometry=geometry,
            bbox=bbox,
            datetime=date,
            properties={},
        )
        proj = ProjectionExtension.ext(item, add_if_missing=True)
        proj.epsg = 32618
        proj.shape = [h, w]
        proj.transform = list(transform)[:6]
        # pystac writes projection v2 (proj:code); stackstac 0.5 reads only the v1 proj:epsg
        item.properties["proj:epsg"] = 32618
        EOExtension.add_to(item)
        RasterExtension.add_to(item)
        for b, name in enumerate(BANDS):
            band = np.clip(data[b].astype(np.float32) * (1.0 + 0.1 * t), 1, 255).astype(np.uint8)
            if t == len(DATES) - 1:
                band[:20, :30] = 0  # nodata corner
            path = root / f"{item.id}_{name}.tif"
            cog = dict(profile, driver="COG", count=1, nodata=0, compress="deflate", blocksize=128)
            cog.pop("blockxsize", None), cog.pop("blockysize", None), cog.pop("tiled", None)
            cog.pop("interleave", None)
            with rasterio.open(path, "w", **cog) as dst:
                dst.write(band, 1)
            item.add_asset(
                name,
                pystac.Asset(
                    href=str(path),
                    media_type=pystac.MediaType.COG,
                    roles=["data"],
                    extra_fields={
                        "eo:bands": [{"name": name, "common_name": name}],
                        "raster:bands": [{"data_type": "uint8", "nodata": 0, "spatial_resolution": 5}],
                    },
                ),
            )
        items.append(item)
    return items
