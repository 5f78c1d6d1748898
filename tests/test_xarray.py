"""fit / segment / simulate on DataArrays: laziness, chunk invariance, metadata, errors."""

from __future__ import annotations

import dask
import dask.array as dsa
import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xr_ktextures as xk
from xr_ktextures import NODATA, InputError, ModelMismatchError, NotFittedError

from .conftest import CountingScheduler, assert_geo_kept, make_cube
from .strategies import chunkings


def test_segment_numpy_gives_uint8_labels_with_geo_and_cf_attrs(cube, model) -> None:
    labels = xk.segment(cube, model)
    assert isinstance(labels.data, np.ndarray)
    assert labels.dtype == np.uint8
    assert_geo_kept(labels, cube)
    assert labels.attrs["flag_values"].tolist() == [0, 1, 2]
    assert labels.attrs["flag_meanings"] == "class_0 class_1 class_2"
    assert labels.attrs["k"] == 3 and labels.attrs["model_id"] == model.model_id
    assert labels.attrs["nodata"] == NODATA == 255
    assert int(labels.max()) < 3


def test_building_the_segment_graph_computes_nothing(cube, model) -> None:
    counter = CountingScheduler()
    with dask.config.set(scheduler=counter):
        labels = xk.segment(cube.chunk({"y": 40, "x": 40}), model)
        sim = xk.simulate(cube.chunk({"y": 40, "x": 40}), model)
    assert counter.calls == 0
    assert isinstance(labels.data, dsa.Array) and isinstance(sim.data, dsa.Array)
    with dask.config.set(scheduler=counter):
        labels.compute()
    assert counter.calls == 1


def test_lazy_labels_equal_the_whole_array_numpy_run(cube, model) -> None:
    eager = xk.segment(cube, model)
    lazy = xk.segment(cube.chunk({"y": 25, "x": 31}), model)
    xr.testing.assert_identical(lazy.compute(), eager)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_labels_are_identical_for_every_chunking(cube, model, data) -> None:
    ychunks, xchunks = data.draw(chunkings(cube.sizes["y"])), data.draw(chunkings(cube.sizes["x"]))
    expected = xk.segment(cube, model).values
    got = xk.segment(cube.chunk({"y": ychunks, "x": xchunks}), model).values
    np.testing.assert_array_equal(got, expected)


def test_chunks_smaller_than_the_halo_are_merged_not_wrong(cube, model) -> None:
    assert model.halo > 4
    small = cube.chunk({"y": 4, "x": 4})
    lazy = xk.segment(small, model)
    assert lazy.chunks == small.chunks[1:]  # computed on merged chunks, handed back as the input's
    np.testing.assert_array_equal(lazy.values, xk.segment(cube, model).values)


def test_band_dim_split_over_chunks_is_handled(cube, model) -> None:
    lazy = xk.segment(cube.chunk({"band": 1, "y": 36}), model)
    np.testing.assert_array_equal(lazy.values, xk.segment(cube, model).values)


def test_graph_names_are_deterministic(cube, model) -> None:
    a = xk.segment(cube.chunk({"y": 36}), model)
    b = xk.segment(cube.chunk({"y": 36}), model)
    assert a.data.name == b.data.name and a.data.name.startswith("ktex-segment-")


def test_model_weights_enter_the_graph_once(cube, model) -> None:
    import cloudpickle

    chunked = cube.chunk({"y": 24, "x": 24})
    labels = xk.segment(chunked, model)
    graph = dict(labels.data.__dask_graph__())
    weight_bytes = sum(w.nbytes for w in model.network.get_weights())
    heavy = [k for k, v in graph.items() if len(cloudpickle.dumps(v)) > weight_bytes // 2]
    assert len(heavy) == 1, heavy  # one key holds the weights; the block tasks only refer to it
    assert labels.data.npartitions == chunked.data.npartitions == 12  # output chunks like the input


def test_simulate_is_identical_for_any_chunking_and_keeps_dims(cube, model) -> None:
    eager = xk.simulate(cube, model)
    lazy = xk.simulate(cube.chunk({"y": 30, "x": 50}), model).compute()
    assert eager.dims == cube.dims and eager.dtype == np.float32
    np.testing.assert_array_equal(lazy.values, eager.values)
    assert eager.rio.crs == cube.rio.crs


def test_time_series_one_model_for_every_step(model) -> None:
    cube = make_cube(times=3)
    labels = xk.segment(cube.chunk({"time": 1, "y": 40}), model)
    assert labels.dims == ("time", "y", "x")
    assert_geo_kept(labels, cube)
    for t in range(3):
        np.testing.assert_array_equal(labels.isel(time=t).values, xk.segment(cube.isel(time=t), model).values)


def test_nan_and_declared_nodata_become_the_nodata_label(cube, model) -> None:
    holes = cube.copy()
    holes[2, 10, 11] = np.nan
    labels = xk.segment(holes.chunk({"y": 36}), model).values
    assert labels[10, 11] == NODATA and (labels != NODATA).sum() == labels.size - 1

    ints = cube.astype(np.uint16).rio.write_nodata(65535)
    ints[:, 5, 5] = 65535
    labels = xk.segment(ints, model).values
    assert labels[5, 5] == NODATA and (labels != NODATA).sum() == labels.size - 1


def test_the_input_is_never_mutated(cube, model) -> None:
    before = cube.copy(deep=True)
    xk.segment(cube, model)
    xk.simulate(cube, model)
    xr.testing.assert_identical(cube, before)


def test_accessor_forwards_to_the_functions(cube, model) -> None:
    xr.testing.assert_identical(cube.ktex.segment(model=model), xk.segment(cube, model))
    xr.testing.assert_identical(cube.ktex.simulate(model=model), xk.simulate(cube, model))


def test_accessor_remembers_the_model_fitted_on_it() -> None:
    cube = make_cube(seed=4)
    fitted = cube.ktex.fit(k=2, steps=1, batch_size=2, patch_size=32, n_chunks=1, verbose=0)
    assert cube.ktex.model is fitted
    xr.testing.assert_identical(cube.ktex.segment(), xk.segment(cube, fitted))


def test_segment_without_any_model_is_a_clear_error() -> None:
    with pytest.raises(NotFittedError, match="no model"):
        make_cube(seed=9).ktex.segment()


def test_fit_computes_only_the_sampled_chunks() -> None:
    computed: list[tuple[int, ...]] = []

    def source(block_info=None):
        computed.append(tuple(block_info[None]["chunk-location"]))
        shape = block_info[None]["chunk-shape"]
        rng = np.random.default_rng(sum(block_info[None]["array-location"][2]))
        return rng.normal(100, 10, shape).astype(np.float32)

    chunks = ((1,) * 4, (4,), (64,) * 6, (64,) * 6)  # 144 chunks
    data = dsa.map_blocks(source, chunks=chunks, dtype=np.float32, meta=np.empty((0, 0, 0, 0), np.float32))
    cube = xr.DataArray(data, dims=("time", "band", "y", "x"), coords={"band": ["red", "green", "blue", "nir"]})
    options = {"n_chunks": 3, "steps": 1, "batch_size": 2, "patch_size": 32, "sample_size": 32, "verbose": 0}
    model = xk.fit(cube, k=2, _ablation={"context_merge": False}, **options)  # each window at its own date
    assert model.fitted
    assert len(set(computed)) == len(computed) == 3, computed
    computed.clear()
    xk.fit(cube, k=2, **options)  # the default: places at several dates, n_chunks // dates places
    assert len(set(computed)) == len(computed) == 2, computed  # one place at two dates, of 144 chunks
    assert len({c[2:] for c in computed}) == 1 and len({c[0] for c in computed}) == 2


def test_a_window_no_larger_than_a_patch_gives_that_patch_once() -> None:
    from xr_ktextures.geo import describe
    from xr_ktextures.sampling import sample_patches

    rng = np.random.default_rng(0)
    da = xr.DataArray(rng.random((4, 128, 128), dtype=np.float32), dims=("band", "y", "x")).chunk(64)
    da, info = describe(da)
    same = sample_patches(da, info, n_chunks=4, patches_per_chunk=8, patch_size=64, seed=0)
    assert same.shape == (4, 64, 64, 4)  # four 64 px windows, one position each
    assert len({p.tobytes() for p in same}) == 4
    smaller = sample_patches(da, info, n_chunks=4, patches_per_chunk=8, patch_size=32, seed=0)
    assert len(smaller) > 4 and len({p.tobytes() for p in smaller}) == len(smaller)


def test_dates_together_samples_each_place_at_several_dates_at_the_same_pixels() -> None:
    from xr_ktextures.geo import describe
    from xr_ktextures.sampling import sample_patches

    yy, xx = np.mgrid[0:96, 0:96].astype(np.float32)
    img = np.stack([np.stack([yy * 1000 + xx, np.full_like(yy, t), yy, xx]) for t in range(5)])
    img[3, :, 40:44, 40:60] = np.nan  # a gap on one date: counted over the dates of a patch
    da = xr.DataArray(img, dims=("time", "band", "y", "x")).chunk({"time": 1, "y": 48, "x": 48})
    da, info = describe(da)
    one_by_one = sample_patches(da, info, n_chunks=4, patches_per_chunk=6, patch_size=32, seed=0)
    assert one_by_one.ndim == 4  # the default: every window at its own date and place
    for n_chunks, dates in ((4, 2), (12, 3), (40, 5)):  # ceil(12 / 4 places) = 3 dates; at most the 5 there are
        together = sample_patches(
            da, info, n_chunks=n_chunks, patches_per_chunk=6, patch_size=32, seed=0, dates_together=True
        )
        assert together.shape[1:] == (dates, 32, 32, 4)
        clean = np.isfinite(together).all(axis=(1, 2, 3, 4))
        assert clean.sum() >= len(together) // 2
        assert (together[clean, :, :, :, 0] == together[clean, :1, :, :, 0]).all()  # the same pixels at every date
        when = together[:, :, 0, 0, 1]
        assert (np.diff(when, axis=1) > 0).all()  # distinct dates, in order
        assert np.isnan(together).mean() <= 0.05  # at most MAX_FILLED of a patch's pixels over its dates
    flat = describe(xr.DataArray(img[0], dims=("band", "y", "x")))
    assert sample_patches(*flat, n_chunks=2, patches_per_chunk=3, patch_size=32, dates_together=True).ndim == 4


def test_fit_samples_a_time_series_date_by_date_at_each_place_for_the_context_merge(monkeypatch) -> None:
    from xr_ktextures import api, initialise

    seen: list[tuple[int, ...]] = []
    real = initialise.context_merge

    def spy(features, labels, k, **kw):
        seen.append(labels.shape)
        return real(features, labels, k, **kw)

    monkeypatch.setattr(initialise, "context_merge", spy)
    sampled: list[bool] = []
    real_sample = api.sample_patches
    monkeypatch.setattr(
        api, "sample_patches", lambda *a, **kw: sampled.append(kw["dates_together"]) or real_sample(*a, **kw)
    )
    rng = np.random.default_rng(0)
    cube = xr.DataArray(rng.random((2, 4, 64, 64), dtype=np.float32), dims=("time", "band", "y", "x")).chunk(
        {"time": 1, "y": 32, "x": 32}
    )
    options = {"steps": 0, "patch_size": 32, "sample_size": 32, "verbose": 0, "n_chunks": 4}
    xk.fit(cube, k=2, **options)
    assert seen and seen[0][1] == 2  # both dates of each sampled place, side by side in the merge's window
    xk.fit(cube, k=2, _ablation={"context_merge": False}, **options)  # Ward's merge
    assert sampled == [True, False]  # without the context merge, every window at its own date and place


def test_a_nan_edge_on_an_image_barely_larger_than_the_window_falls_back_with_a_warning() -> None:
    from xr_ktextures.geo import describe
    from xr_ktextures.sampling import sample_patches

    rng = np.random.default_rng(0)
    img = rng.random((4, 100, 130), dtype=np.float32)
    img[:, :10, :] = np.nan  # a NaN edge: every 100 px window is 10 % gaps
    da, info = describe(xr.DataArray(img, dims=("band", "y", "x")))
    for min_size in (None, 32):  # wide patches with gaps before smaller ones
        with pytest.warns(UserWarning, match=r"every sampled 100 px window is more than 5% nodata.*10% of the pixels"):
            gappy = sample_patches(da, info, n_chunks=2, patches_per_chunk=4, patch_size=100, min_size=min_size)
        assert gappy.shape[1:] == (100, 100, 4) and np.isnan(gappy[:, :10]).all()
        assert np.isfinite(gappy[:, 10:]).all()
    img[:, :65, :] = np.nan  # every 100 and 75 px window more than half gaps: 56 px patches
    da, info = describe(xr.DataArray(img, dims=("band", "y", "x")))
    with pytest.warns(UserWarning, match=r"every sampled 100 px window .* 56 px patches"):
        patches = sample_patches(da, info, n_chunks=2, patches_per_chunk=8, patch_size=100, min_size=32)
    assert patches.shape[1:] == (56, 56, 4) and 0.05 < np.isnan(patches[..., 0]).mean() <= 0.5
    with pytest.warns(UserWarning, match="56 px patches"):  # fit's default sample_size is the image's 100 px
        model = xk.fit(da, k=2, steps=1, batch_size=2, patch_size=32, verbose=0)
    assert model.fitted


def test_fit_selects_bands_by_name_and_segment_follows_the_model(cube) -> None:
    shuffled = cube.isel(band=[3, 2, 1, 0])
    m = xk.fit(
        shuffled, k=2, bands=["red", "green", "blue"], steps=1, batch_size=2, patch_size=32, n_chunks=1, verbose=0
    )
    assert m.band_names == ["red", "green", "blue"] and m.bands == 3
    np.testing.assert_array_equal(xk.segment(cube, m).values, xk.segment(shuffled, m).values)


# ----------------------------------------------------------------------------- bad input, one test per kind
def test_error_no_band_dim(cube, model) -> None:
    with pytest.raises(InputError, match="no band dimension 'band'"):
        xk.segment(cube.rename(band="channel"), model)


def test_error_wrong_band_count_for_the_model(cube, model) -> None:
    unnamed = cube.isel(band=[0, 1, 2]).drop_vars("band")
    with pytest.raises(ModelMismatchError, match="fitted on 4 bands"):
        xk.segment(unnamed, model)


def test_error_unknown_band_names(cube) -> None:
    with pytest.raises(InputError, match=r"band\(s\) \['swir'\] not found"):
        xk.fit(cube, k=2, bands=["red", "swir"])


def test_error_non_numeric_dtype(cube) -> None:
    with pytest.raises(InputError, match="integers or floats, got dtype bool"):
        xk.fit(cube > 5, k=2)


@pytest.mark.parametrize("k", [1, 129, 3.0])
def test_error_k_out_of_range(cube, k) -> None:
    with pytest.raises(InputError, match="k must be an integer from 2 to 128"):
        xk.fit(cube, k=k)


def test_error_missing_y_x(cube, model) -> None:
    with pytest.raises(InputError, match="no y dimension"):
        xk.segment(cube.rename(y="row"), model)


def test_error_all_nodata_sample() -> None:
    cube = make_cube() * np.nan
    with pytest.raises(InputError, match="more than 50% nodata/NaN"):
        xk.fit(cube, k=2, steps=1, patch_size=32, verbose=0)


def test_error_model_fitted_on_other_bands(model) -> None:
    other = make_cube().assign_coords(band=["b1", "b2", "b3", "b4"])
    with pytest.raises(ModelMismatchError, match=r"fitted on bands \['red', 'green', 'blue', 'nir'\]"):
        xk.segment(other, model)


def test_a_dataset_of_one_variable_per_band_keeps_its_nodata(cube, model) -> None:
    ds = cube.astype(np.uint16).to_dataset("band")
    for name in ds.data_vars:
        ds[name].attrs["nodata"] = 65535
    ds["red"][3, 4] = 65535
    labels = xk.segment(ds, model)
    assert labels[3, 4] == NODATA and (labels.values != NODATA).sum() == labels.size - 1


def test_error_dataset_with_mismatched_variables(cube, model) -> None:
    ds = cube.to_dataset("band")
    ds["extra"] = ds["red"].isel(x=0)
    with pytest.raises(InputError, match="different dims"):
        xk.segment(ds, model)


def test_error_not_an_xarray_object(model) -> None:
    with pytest.raises(InputError, match=r"expected an xarray\.DataArray"):
        xk.segment(np.zeros((4, 8, 8)), model)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (40, r"is 40x88 px, smaller than patch_size=64; pass patch_size=32 or less"),
        (20, r"is 20x88 px; fit needs at least 32x32 px"),  # no patch_size can help: say the minimum
    ],
)
def test_error_image_smaller_than_a_patch(cube, rows, message) -> None:
    with pytest.raises(InputError, match=message):
        xk.fit(cube.isel(y=slice(0, rows)), k=2)


def test_error_dask_image_smaller_than_the_halo(model) -> None:
    tiny = make_cube(ny=10, nx=40).chunk()
    with pytest.raises(InputError, match="halo"):
        xk.segment(tiny, model)


def test_error_unfitted_model(cube) -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        xk.segment(cube, xk.KTextures(k=2))


def test_error_empty_dimension(cube, model) -> None:
    with pytest.raises(InputError, match="empty"):
        xk.segment(cube.isel(x=slice(0, 0)), model)


def test_a_band_dim_of_another_name_is_accepted(cube, model) -> None:
    renamed = cube.rename(band="channel")
    labels = xk.segment(renamed, model, band_dim="channel")
    np.testing.assert_array_equal(labels.values, xk.segment(cube, model).values)
    m = xk.fit(renamed, k=2, band_dim="channel", steps=1, batch_size=2, patch_size=32, n_chunks=1, verbose=0)
    assert m.band_names == ["red", "green", "blue", "nir"]


# ----------------------------------------------------------------------------- scattered gaps
def _speckled(share: float, seed: int) -> tuple[xr.DataArray, np.ndarray]:
    """``make_cube`` with a random ``share`` of its pixels NaN in every band (a cloud-mask speckle)."""
    cube = make_cube(96, 112)
    gaps = np.random.default_rng(seed).random((96, 112)) < share
    return cube.where(~xr.DataArray(gaps, dims=("y", "x"))), gaps


def test_fit_and_segment_an_image_whose_every_window_has_gaps(model) -> None:
    import warnings

    speckled, gaps = _speckled(0.03, seed=1)  # no 32 px patch is free of gaps
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*nodata")  # a few % of gaps: no warning
        fits = [xk.fit(speckled, k=2, steps=1, batch_size=2, patch_size=32, verbose=0) for _ in range(2)]
    labels = [xk.segment(speckled, m).values for m in fits]
    np.testing.assert_array_equal(labels[0], labels[1])  # the seed makes it deterministic, gaps or not
    np.testing.assert_array_equal(labels[0] == NODATA, gaps)  # exactly the gaps are nodata
    # the gaps' neighbours keep their class: labels as on the gap-free image (same model)
    clean = xk.segment(make_cube(96, 112), model).values
    agree = (xk.segment(speckled, model).values == clean)[~gaps].mean()
    assert agree > 0.97, agree


@pytest.mark.parametrize("kind", ["speckle", "cloud"])
def test_gaps_near_chunk_edges_label_and_simulate_as_in_the_whole_image(model, kind: str) -> None:
    speckled, _ = _speckled(0.1, seed=2)
    if kind == "cloud":  # a 30 px blob across chunk edges, deeper than the 2 px fill ring
        yy, xx = np.mgrid[:96, :112]
        cloud = (yy - 45) ** 2 + (xx - 50) ** 2 < 15**2
        speckled = make_cube(96, 112).where(~xr.DataArray(cloud, dims=("y", "x")))
    whole, sim = xk.segment(speckled, model).values, xk.simulate(speckled, model).values
    for size in (23, 40):
        chunked = speckled.chunk({"y": size, "x": size})
        np.testing.assert_array_equal(xk.segment(chunked, model).values, whole)
        np.testing.assert_allclose(xk.simulate(chunked, model).values, sim, rtol=1e-5, atol=1e-4)


def test_sampled_patches_keep_a_few_gaps_as_nan_pixels() -> None:
    from xr_ktextures.geo import describe
    from xr_ktextures.sampling import MAX_FILLED, sample_patches

    speckled, _ = _speckled(0.03, seed=3)
    sentinel = speckled.fillna(-9999).rio.write_nodata(-9999)
    before = sentinel.values.copy()
    da, info = describe(sentinel)
    patches = sample_patches(da, info, n_chunks=2, patches_per_chunk=8, patch_size=64, seed=0)
    gap = np.isnan(patches)
    assert 0 < gap[..., 0].mean() <= MAX_FILLED
    assert (gap == gap[..., :1]).all() and (patches != -9999).all()  # whole pixels NaN, the sentinel gone
    np.testing.assert_array_equal(sentinel.values, before)  # the user's numpy array is not written to


def test_each_block_reaches_the_model_with_its_halo_alone(cube, model, monkeypatch) -> None:
    # the gaps' fill ring is cut before the model: a chunk plus 2 x halo is what the engine
    # tiles (one extra ring made every 1024 px chunk four 1024 px tiles)
    seen = []
    predict = xk.KTextures.predict

    def spy(self, x, **kw):
        seen.append(np.shape(x)[1:3])
        return predict(self, x, **kw)

    monkeypatch.setattr(xk.KTextures, "predict", spy)
    speckled, _ = _speckled(0.05, seed=4)
    with dask.config.set(scheduler="sync"):
        xk.segment(speckled.chunk({"y": 48, "x": 56}), model).compute()
    assert model.halo < 48 and set(seen) == {(48 + 2 * model.halo, 56 + 2 * model.halo)}
