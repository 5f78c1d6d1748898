"""Bad and unusual input, tried as a new user would: each kind ends in a specific package error raised
before anything is computed, or in the correct result.

Refusals are checked on Dask-backed input under a scheduler that counts computes (it must stay at 0);
every error must be a :class:`xr_ktextures.KTexturesError` (no bare KeyError/IndexError/AttributeError).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any

import dask
import dask.array as dsa
import numpy as np
import pytest
import xarray as xr
from affine import Affine

import xr_ktextures as xk
from xr_ktextures import InputError, KTexturesError, ModelMismatchError, NotFittedError
from xr_ktextures.cli import main

from .conftest import CountingScheduler, make_cube


def _lazy(**kw: Any) -> xr.DataArray:
    return make_cube(**kw).chunk({"y": 36, "x": 44})


def refused_before_compute(call: Callable[[], Any], error: type[Exception], match: str) -> None:
    """``call`` raises ``error`` (a package error) matching ``match``, and nothing was computed."""
    assert issubclass(error, KTexturesError)
    counter = CountingScheduler()
    with dask.config.set(scheduler=counter), pytest.raises(error, match=match) as info:
        call()
    assert isinstance(info.value, KTexturesError)
    assert counter.calls == 0


# ------------------------------------------------------------------------------------------------ segment / simulate
def _band_scalar(c: xr.DataArray) -> xr.DataArray:
    return c.isel(band=0)


def _rotated(c: xr.DataArray) -> xr.DataArray:
    return c.assign_attrs(transform=Affine(5.0, 0.0, 0.0, 0.5, -5.0, 0.0))


def _ds_mixed_nodata(c: xr.DataArray) -> xr.Dataset:
    ds = c.to_dataset("band")
    ds["red"].attrs["nodata"] = 0
    ds["nir"].attrs["nodata"] = 255
    return ds


SEGMENT_REFUSALS: list[tuple[str, Callable[[xr.DataArray], Any], dict[str, Any], type[Exception], str]] = [
    ("bands-a-string", lambda c: c, {"bands": "red"}, InputError, r"list of band names.*bands=\['red'\]"),
    ("bands-empty", lambda c: c, {"bands": []}, InputError, "selects no band"),
    ("bands-an-int", lambda c: c, {"bands": 3}, InputError, "list of band names"),
    ("bands-a-dict", lambda c: c, {"bands": {"red": 1}}, InputError, "list of band names"),
    ("bands-repeated", lambda c: c, {"bands": ["red", "red"]}, InputError, "repeated names"),
    ("bands-unknown", lambda c: c, {"bands": ["swir"]}, InputError, r"\['swir'\] not found"),
    ("band-dim-is-x", lambda c: c, {"band_dim": "x"}, InputError, "band_dim='x' is a spatial dim"),
    ("band-dim-is-y", lambda c: c, {"band_dim": "y"}, InputError, "band_dim='y' is a spatial dim"),
    ("band-dim-absent", lambda c: c, {"band_dim": "channel"}, InputError, "no band dimension 'channel'"),
    ("nodata-a-string", lambda c: c, {"nodata": "abc"}, InputError, "nodata must be a number.*'abc'"),
    ("nodata-a-bool", lambda c: c, {"nodata": True}, InputError, "nodata must be a number"),
    ("nodata-a-list", lambda c: c, {"nodata": [0, 1]}, InputError, "nodata must be a number"),
    ("device-unknown", lambda c: c, {"device": "tpu"}, InputError, "device"),
    ("tile-zero", lambda c: c, {"tile": 0}, InputError, "tile"),
    ("tile-a-string", lambda c: c, {"tile": "big"}, InputError, "tile"),
    ("no-band-dim-left", _band_scalar, {}, InputError, r"scalar coordinate.*isel\(band=\[0\]\)"),
    ("bool-dtype", lambda c: c > 100, {}, InputError, "integers or floats, got dtype bool"),
    ("complex-dtype", lambda c: c.astype("complex64"), {}, InputError, "got dtype complex64"),
    ("string-dtype", lambda c: c.astype(str), {}, InputError, "integers or floats"),
    ("datetime-dtype", lambda c: c.astype("int64").astype("datetime64[ns]"), {}, InputError, "integers or floats"),
    ("empty-x", lambda c: c.isel(x=slice(0, 0)), {}, InputError, "empty"),
    ("no-y-dim", lambda c: c.rename(y="row"), {}, InputError, "no y dimension.*rename"),
    ("no-x-dim", lambda c: c.rename(x="col"), {}, InputError, "no x dimension"),
    ("dataset-mixed-nodata", _ds_mixed_nodata, {}, InputError, "different nodata"),
    ("empty-dataset", lambda c: xr.Dataset(), {}, InputError, "no data variables"),
    ("three-bands", lambda c: c.isel(band=[0, 1, 2]).drop_vars("band"), {}, ModelMismatchError, "fitted on 4"),
    ("other-band-names", lambda c: c.assign_coords(band=list("abcd")), {}, ModelMismatchError, "fitted on bands"),
    ("rotated-transform", _rotated, {}, InputError, "rotated or skewed"),
    ("smaller-than-halo", lambda c: c.isel(y=slice(0, 10)), {}, InputError, "halo"),
]


@pytest.mark.parametrize(
    ("make", "kwargs", "error", "match"),
    [pytest.param(*case[1:], id=case[0]) for case in SEGMENT_REFUSALS],
)
def test_segment_refuses_before_any_compute(model, make, kwargs, error, match) -> None:
    bad = make(_lazy())
    refused_before_compute(lambda: xk.segment(bad, model, **kwargs), error, match)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"bands": "red"}, "list of band names"), ({"nodata": "x"}, "nodata must be a number"), ({"band_dim": "x"}, "")],
)
def test_simulate_refuses_before_any_compute(model, kwargs, match) -> None:
    refused_before_compute(lambda: xk.simulate(_lazy(), model, **kwargs), InputError, match)


@pytest.mark.parametrize(
    ("model_arg", "error", "match"),
    [
        (None, NotFittedError, "no model"),
        ("model.keras", InputError, r"load it with xk.load_model"),
        (object(), InputError, "must be a fitted KTextures model"),
    ],
)
def test_segment_refuses_what_is_not_a_model(model_arg, error, match) -> None:
    refused_before_compute(lambda: xk.segment(_lazy(), model_arg), error, match)


def test_segment_refuses_an_unfitted_model() -> None:
    refused_before_compute(lambda: xk.segment(_lazy(), xk.KTextures(k=2)), NotFittedError, "not fitted")


def test_an_ndarray_is_refused_with_how_to_wrap_it(model) -> None:
    refused_before_compute(lambda: xk.segment(np.zeros((4, 8, 8)), model), InputError, r"xr.DataArray\(a, dims")


# ------------------------------------------------------------------------------------------------ fit
FIT_REFUSALS: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("k-1", {"k": 1}, InputError, "k must be an integer from 2 to 128"),
    ("k-a-string", {"k": "3"}, InputError, "k must be an integer"),
    ("k-a-bool", {"k": True}, InputError, "k must be an integer"),
    ("steps--1", {"steps": -1}, InputError, "steps must be an integer >= 0, got -1"),
    ("steps-a-float", {"steps": 2.5}, InputError, "steps must be an integer"),
    ("batch_size-0", {"batch_size": 0}, InputError, "batch_size must be an integer >= 1, got 0"),
    ("patch_size-33", {"patch_size": 33}, InputError, "patch_size must be a multiple of 16 and >= 32.*33"),
    ("patch_size-16", {"patch_size": 16}, InputError, "patch_size must be a multiple of 16"),
    (
        "misspelt-option",
        {"quantiser": "hard_sigmoid"},
        InputError,
        r"unknown option 'quantiser'.*'quantizer' \(now mask=",
    ),
    ("misspelt-group", {"masks": {}}, InputError, "unknown option 'masks'.*'mask'"),
    ("flat-0.2-option", {"pool": 8}, InputError, r"'pool' is now mask=MaskOptions\(pool=...\)"),
    ("ablation-switch", {"paper_loss": 0}, InputError, "'paper_loss' is now an experiment switch"),
    ("mask-field-unknown", {"mask": {"pools": 8}}, InputError, "unknown field 'pools'.*'pool'"),
    ("mask-not-options", {"mask": 8}, InputError, "mask must be a MaskOptions"),
    ("quantizer-foo", {"mask": {"quantizer": "foo"}}, InputError, "foo"),
    ("balance-negative", {"loss": {"balance": -1}}, InputError, "balance must be a number >= 0"),
    ("extractor-unknown", {"loss": {"extractor": "resnet"}}, InputError, "extractor must be"),
    (
        "cluster-init-hard-sigmoid",
        {"mask": {"quantizer": "hard_sigmoid", "cluster_init": True}},
        InputError,
        "cluster_init",
    ),
    ("architecture-foo", {"architecture": "foo"}, InputError, "architecture must be 'default' or 'paper'"),
    ("fitted-is-not-an-option", {"fitted": True}, InputError, "unknown option 'fitted'"),
    ("seed-a-string", {"seed": "0"}, InputError, "seed must be an integer from 0.*'0'"),
    ("seed--1", {"seed": -1}, InputError, "seed must be an integer from 0"),
    ("seed-None", {"seed": None}, InputError, "seed must be an integer from 0"),
    ("seed-too-big", {"seed": 2**32}, InputError, "seed must be an integer from 0"),
    ("bands-empty", {"bands": []}, InputError, "selects no band"),
    ("bands-a-string", {"bands": "red"}, InputError, "list of band names"),
    ("band_dim-x", {"band_dim": "x"}, InputError, "band_dim='x' is a spatial dim"),
    ("n_chunks-0", {"n_chunks": 0}, InputError, "n_chunks must be an integer >= 1, got 0"),
    ("n_chunks--1", {"n_chunks": -1}, InputError, "n_chunks must be an integer >= 1"),
    ("patches_per_chunk-0", {"patches_per_chunk": 0}, InputError, "patches_per_chunk must be an integer >= 1"),
    ("patches_per_chunk--1", {"patches_per_chunk": -1}, InputError, "patches_per_chunk must be an integer >= 1"),
    ("sample_size-smaller", {"sample_size": 16}, InputError, "sample_size must be an integer >= patch_size"),
    ("verbose-loud", {"verbose": "loud"}, InputError, "verbose must be 0, 1, 2 or 'auto'"),
    ("patch-larger-than-image", {"patch_size": 128}, InputError, "smaller than patch_size=128"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), [pytest.param(*c[1:], id=c[0]) for c in FIT_REFUSALS])
def test_fit_refuses_every_bad_option_before_computing_the_sample(kwargs, error, match) -> None:
    kwargs = {"k": 2, "steps": 1, "patch_size": 32, "verbose": 0, **kwargs}
    refused_before_compute(lambda: xk.fit(_lazy(), **kwargs), error, match)


def test_fit_refuses_missing_vgg16_weights_before_computing_the_sample(tmp_path) -> None:
    missing = tmp_path / "vgg16.h5"
    refused_before_compute(
        lambda: xk.fit(_lazy(), k=2, loss=xk.LossOptions(extractor="vgg16", extractor_weights=missing), verbose=0),
        xk.WeightsNotFoundError,
        "vgg16",
    )


# ---------------------------------------------------------------------------------------- write_zarr, load_model
@pytest.mark.parametrize(
    ("obj", "kwargs", "match"),
    [
        (lambda lab: lab.to_dataset(name="labels"), {}, r"got a Dataset.*ds\['labels'\]"),
        (lambda lab: np.zeros((4, 4), "uint8"), {}, r"got ndarray.*xr.DataArray\(a"),
        (lambda lab: lab, {"window": 0}, "window must be a positive number"),
        (lambda lab: lab, {"window": "8"}, "window must be a positive number"),
        (lambda lab: lab, {"window": None}, "window must be a positive number"),
        (lambda lab: lab, {"window": (2, 0)}, "window must be a positive number"),
        (lambda lab: lab, {"mode": "a"}, "mode must be 'w' or 'w-'"),
        (lambda lab: lab, {"resume": "yes"}, "resume must be True or False"),
        (lambda lab: lab.chunk({"y": (10, 30, 32)}), {}, "regular chunks"),
        (lambda lab: lab.assign_coords(labels=lab.y), {"name": "labels"}, "also a coordinate"),
    ],
)
def test_write_zarr_refuses_before_any_compute(model, tmp_path, obj, kwargs, match) -> None:
    target = obj(xk.segment(_lazy(), model))
    refused_before_compute(lambda: xk.write_zarr(target, tmp_path / "x.zarr", **kwargs), InputError, match)
    assert not (tmp_path / "x.zarr").exists()


def test_write_zarr_refuses_an_existing_store_and_says_how_to_overwrite(model, tmp_path) -> None:
    labels = xk.segment(_lazy(), model)
    (tmp_path / "x.zarr").mkdir()
    xr.Dataset({"a": ("y", np.zeros(2))}).to_zarr(tmp_path / "x.zarr", mode="w")
    refused_before_compute(lambda: xk.write_zarr(labels, tmp_path / "x.zarr"), InputError, "mode='w' to overwrite")


def test_write_zarr_never_overwrites_a_folder_that_is_not_its_store(model, tmp_path) -> None:
    labels = xk.segment(_lazy(), model)
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "keep.jpg").write_text("x")
    refused_before_compute(lambda: xk.write_zarr(labels, tmp_path / "photos"), InputError, "a file or folder")
    assert (tmp_path / "photos" / "keep.jpg").exists()


def test_open_zarr_refuses_a_missing_store_or_variable_clearly(tmp_path) -> None:
    from xr_ktextures.writing import open_zarr

    with pytest.raises(InputError, match="no Zarr store at"):
        open_zarr(tmp_path / "none.zarr")
    xr.Dataset({"a": ("y", np.zeros(2)), "b": ("y", np.ones(2))}).to_zarr(tmp_path / "two.zarr")
    with pytest.raises(InputError, match=r"holds variables \['a', 'b'\]; pass name="):
        open_zarr(tmp_path / "two.zarr")
    with pytest.raises(InputError, match="no variable 'c'"):
        open_zarr(tmp_path / "two.zarr", name="c")
    np.testing.assert_array_equal(open_zarr(tmp_path / "two.zarr", name="b").values, [1, 1])  # a foreign store opens


@pytest.mark.parametrize(
    "bands", [("red", "nir"), np.array(["red", "nir"]), iter(["red", "nir"]), xr.DataArray(["red", "nir"])]
)
def test_bands_may_be_any_sequence_or_iterable_of_names(bands) -> None:
    from xr_ktextures.geo import describe

    da, info = describe(make_cube(8, 8), bands=bands)
    assert info.band_names == ("red", "nir") and da.sizes["band"] == 2


@pytest.mark.parametrize(
    ("path", "error", "match"),
    [
        ("missing.keras", xk.ModelNotFoundError, "no model file"),
        (None, InputError, "must be a file path"),
        ("NOT_A_MODEL", InputError, "not a readable .keras model"),
    ],
)
def test_load_model_refuses_clearly(tmp_path, path, error, match) -> None:
    bad = tmp_path / "bad.keras"
    bad.write_text("hello")
    with pytest.raises(error, match=match):
        xk.load_model(bad if path == "NOT_A_MODEL" else path)
    assert issubclass(xk.ModelNotFoundError, FileNotFoundError)


# ------------------------------------------------------------------------------------------------ the command line
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["segment", "SAMPLE", "OUT", "-k", "1"], "k must be an integer from 2 to 128"),
        (["segment", "SAMPLE", "OUT", "-k", "3", "--steps", "-1"], "steps must be an integer >= 0"),
        (["segment", "SAMPLE", "OUT", "-k", "3", "--seed", "-1"], "seed must be an integer from 0"),
        (["segment", "SAMPLE", "AFILE/out.tif", "-k", "3"], "is a file, not a folder"),
        (["segment", "SAMPLE", "ADIR", "-k", "3"], "is a folder"),
        (["fit", "SAMPLE", "AFILE/m.keras", "-k", "3"], "is a file, not a folder"),
        (["demo", "--out", "AFILE"], "is a file, not a folder"),
    ],
)
def test_the_command_refuses_bad_options_and_paths_before_fitting(tmp_path, capsys, monkeypatch, argv, message):
    from xr_ktextures import api

    def no_sampling(*a, **k):
        raise AssertionError("the sample was computed")

    monkeypatch.setattr(api, "sample_patches", no_sampling)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    subs = {"SAMPLE": xk.sample_path(), "OUT": str(tmp_path / "out.tif"), "ADIR": str(tmp_path / "adir")}
    argv = [subs.get(a, a.replace("AFILE", str(tmp_path / "afile"))) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "afile"]


# ------------------------------------------------------------------------------------------------ correct results
@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16", "int32", "int64", "float16", "float64"])
def test_every_numeric_dtype_labels_like_its_float32_values(model, dtype) -> None:
    cube = make_cube(48, 56).astype(dtype)
    np.testing.assert_array_equal(xk.segment(cube, model).values, xk.segment(cube.astype("float32"), model).values)


@pytest.mark.parametrize("dtype", [">f4", ">f8", ">i2", ">u2", "<f4"])
def test_big_endian_input_gives_the_native_labels(model, dtype) -> None:
    cube = make_cube(48, 56)
    native = np.dtype(dtype).newbyteorder("=")
    expected = xk.segment(cube.astype(native), model).values
    np.testing.assert_array_equal(xk.segment(cube.astype(dtype), model).values, expected)
    np.testing.assert_array_equal(xk.segment(cube.astype(dtype).chunk({"y": 30}), model).values, expected)


@pytest.mark.parametrize("order", [("y", "x", "band"), ("band", "x", "y"), ("x", "band", "y")])
def test_any_dim_order_gives_the_same_labels(model, order) -> None:
    cube = make_cube(48, 56)
    expected = xk.segment(cube, model)
    got = xk.segment(cube.transpose(*order), model)
    np.testing.assert_array_equal(got.transpose("y", "x").values, expected.values)
    assert got.rio.transform() == expected.rio.transform()


def test_extra_dims_are_each_labelled_alike(model) -> None:
    cube = make_cube(40, 48, times=2).expand_dims(sensor=["a", "b"]).transpose("time", "band", "sensor", "y", "x")
    labels = xk.segment(cube.chunk({"time": 1, "sensor": 1, "y": 40}), model)
    assert labels.dims == ("time", "sensor", "y", "x")
    one = xk.segment(cube.isel(time=1, sensor=0), model).values
    np.testing.assert_array_equal(labels.isel(time=1, sensor=0).values, one)
    np.testing.assert_array_equal(labels.isel(time=1, sensor=1).values, one)


@pytest.mark.parametrize(("ny", "nx"), [(1, 1), (3, 5), (1, 40)])
def test_tiny_numpy_images_are_labelled(model, ny, nx) -> None:
    labels = xk.segment(make_cube(ny, nx), model)
    assert labels.shape == (ny, nx) and int(labels.max()) < 3


@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize(
    "flip",
    [
        {"y": slice(None, None, -1)},
        {"x": slice(None, None, -1)},
        {"x": slice(None, None, -1), "y": slice(None, None, -1)},
    ],
    ids=["ascending-y", "descending-x", "both"],
)
def test_ascending_y_or_descending_x_give_each_place_the_north_up_label(model, flip, lazy) -> None:
    north_up = make_cube(48, 56)
    cube = north_up.isel(flip)
    labels = xk.segment(cube.chunk({"y": 30, "x": 30}) if lazy else cube, model)
    assert labels.rio.transform() == cube.rio.transform()
    assert (labels.rio.transform().e > 0) == ("y" in flip) and (labels.rio.transform().a < 0) == ("x" in flip)
    xr.testing.assert_equal(labels.sortby(["y", "x"]), xk.segment(north_up, model).sortby(["y", "x"]))


def test_an_array_without_coords_is_labelled_in_its_storage_order(model) -> None:
    # xarray answers da["y"] with 0, 1, 2, ... for a dim without coords: read as "south up",
    # that flipped every plain array before the model (and its random 3x3 filters)
    cube = make_cube(48, 56)
    bare = xr.DataArray(cube.values, dims=cube.dims, coords={"band": cube.band})
    expected = model.predict(np.moveaxis(cube.values, 0, -1))
    np.testing.assert_array_equal(xk.segment(bare, model).values, expected)
    np.testing.assert_array_equal(xk.segment(bare.chunk({"y": 30, "x": 30}), model).values, expected)
    np.testing.assert_array_equal(xk.segment(cube, model).values, expected)  # north-up coords: the same


def test_no_crs_gives_labels_without_crs_and_with_the_coords(model) -> None:
    cube = make_cube(48, 56).drop_vars("spatial_ref")
    labels = xk.segment(cube, model)
    assert labels.rio.crs is None and "spatial_ref" not in labels.coords
    np.testing.assert_array_equal(labels.x.values, cube.x.values)


def test_a_crs_without_coords_keeps_the_crs_and_the_declared_transform(model) -> None:
    t = Affine(5.0, 0, 100.0, 0, -5.0, 200.0)
    cube = make_cube(48, 56).drop_vars(["x", "y"]).rio.write_transform(t)
    labels = xk.segment(cube, model)
    assert labels.rio.crs == cube.rio.crs and labels.rio.transform() == t
    assert "x" not in labels.coords


def test_irregular_coords_get_no_made_up_transform(model) -> None:
    cube = make_cube(48, 56)
    cube = cube.assign_coords(x=cube.x.values + np.linspace(0, 3, 56) ** 2)
    labels = xk.segment(cube, model)
    assert labels.rio.crs == cube.rio.crs and "GeoTransform" not in labels.spatial_ref.attrs


def test_threads_computing_at_once_give_the_serial_labels(model) -> None:
    cubes = [make_cube(48, 56, seed=s).chunk({"y": 30, "x": 30}) for s in range(4)]
    expected = [xk.segment(c, model).values for c in cubes]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda c: xk.segment(c, model).compute(scheduler="threads").values, cubes))
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)


def test_a_nodata_given_as_nan_or_numpy_scalar_is_accepted(model) -> None:
    cube = make_cube(48, 56).astype("uint16")
    cube[:, 2, 3] = 999  # make_cube's values are 0..255
    base = xk.segment(cube, model).values
    np.testing.assert_array_equal(xk.segment(cube, model, nodata=np.nan).values, base)
    marked = xk.segment(cube, model, nodata=np.uint16(999)).values
    assert marked[2, 3] == xk.NODATA and (marked != xk.NODATA).sum() == marked.size - 1


def test_odc_style_per_band_nodata_is_kept(model) -> None:
    ds = make_cube(48, 56).astype("uint16").to_dataset("band")
    for name in ds.data_vars:
        ds[name].attrs["nodata"] = 999
    ds["nir"][4, 5] = 999
    labels = xk.segment(ds.chunk({"y": 24}), model).values
    assert labels[4, 5] == xk.NODATA and (labels != xk.NODATA).sum() == labels.size - 1


def test_dask_and_numpy_inputs_are_refused_alike(model) -> None:
    for cube in (make_cube(), _lazy()):
        with pytest.raises(InputError, match="list of band names"):
            xk.segment(cube, model, bands="red")


def test_errors_are_package_errors_never_bare_python_ones(model) -> None:
    # the named bare errors of issue 16 must not escape: a scalar band coord, a band_dim on x, nodata="abc"
    for call in (
        lambda: xk.segment(make_cube().isel(band=0), model),
        lambda: make_cube().isel(band=0).ktex.segment(model=model),
        lambda: make_cube().ktex.fit(k=2, steps=-1),
        lambda: xk.fit(make_cube(), k=2, band_dim="x"),
        lambda: xk.segment(make_cube(), model, nodata="abc"),
        lambda: xk.write_zarr(make_cube().to_dataset(name="v"), "never.zarr"),
        lambda: xk.write_zarr(np.zeros(3), "never.zarr"),
    ):
        with pytest.raises(KTexturesError):
            call()


@pytest.mark.parametrize("chunks", [{"y": 7, "x": 13}, {"y": (50, 22), "x": (1, 87)}, {"y": 72, "x": 88}])
def test_dask_arrays_without_xarray_chunks_of_any_shape_label_alike(model, chunks) -> None:
    cube = make_cube()
    got = xk.segment(cube.copy(data=dsa.from_array(cube.values, chunks=(4, *[chunks[d] for d in ("y", "x")]))), model)
    np.testing.assert_array_equal(got.values, xk.segment(cube, model).values)
