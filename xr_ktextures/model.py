"""The estimator a user holds: :class:`KTextures` fits the network on patches and predicts.

:class:`KTextures` is a plain Python object in scikit-learn's manner (``fit`` returns
``self``; ``predict`` returns labels and nothing else; ``simulate`` the simulated image).
It owns the work around the network: per-band scaling fitted on the patches, the
cluster initialisation, the training loop on random crops (Keras' own ``fit``, any
backend), and numpy prediction with mirror padding and nodata. The network itself is
:class:`~xr_ktextures.network.KTexturesNet`, a pure ``keras.Model``, at
:attr:`KTextures.network`. Nothing here knows about xarray.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Literal

import keras
import numpy as np
from keras import ops

from ._ablation import Ablation, as_ablation
from ._errors import InputError, NotFittedError
from ._nodata import NODATA, fill_gaps, invalid_pixels
from .network import KTexturesNet
from .noise import position_noise
from .options import FLAT_NAMES, LossOptions, MaskOptions, TextureOptions, as_options, moved_option_message
from .tiles import engine_for
from .training import train

__all__ = ["KTextures"]


class KTextures:
    """k-textures: self-supervised hard clustering of images by texture.

    A mask CNN with context radius :attr:`halo` gives each pixel one of ``k`` classes
    through a quantizer inside the network; k texture CNNs turn noise into k textures;
    masks × textures, summed, simulate the image; the loss compares frozen deep features
    of the image and of the simulation, plus a class-usage term that keeps all k classes
    alive (``docs/design.md``).

    This is the object :func:`xr_ktextures.fit` returns and :func:`xr_ktextures.segment`
    takes. It is not itself a ``keras.Model``: the network is :attr:`network`.

    Parameters
    ----------
    k : int
        Number of classes, 2 to 128.
    bands : int
        Number of bands of the images (last axis).
    band_names : sequence of str, optional
        Names of the bands, remembered so data with other bands is refused later.
    architecture : {"default", "paper"}
        ``"paper"``: the paper's own design (Wagner et al. 2022): a 1x1 mask CNN
        (:class:`~xr_ktextures.paper.PaperMaskEncoder`, halo 0), the hard-sigmoid
        staircase, trained from random weights by gradient descent on the feature loss
        alone (VGG16 ``block5_conv3`` when its weights are in the Keras cache or given,
        else the filterbank). It overrides the quantizer, the cluster initialisation
        and the loss weights.
    mask : MaskOptions or mapping, optional
        The mask branch (:class:`~xr_ktextures.options.MaskOptions`): quantizer, CNN,
        context radius and view (chosen from the data at fit by default), cluster
        initialisation.
    textures : TextureOptions or mapping, optional
        The texture branch (:class:`~xr_ktextures.options.TextureOptions`).
    loss : LossOptions or mapping, optional
        Feature extractor and loss weights (:class:`~xr_ktextures.options.LossOptions`).
    seed : int
        Seed for weights, noise and batch sampling: CPU runs are reproducible.
    _ablation : Ablation or mapping, optional
        Private experiment switches (``xr_ktextures._ablation``), for ``benchmarks/``.
    **moved
        The 0.2 constructor's flat options (``pool=``, ``balance=``, ...) are refused with
        a message saying where each lives now.

    Raises
    ------
    InputError
        A bad value (quoted), or an option of the 0.2 constructor passed flat (the
        message says where it lives now).
    WeightsNotFoundError
        ``loss=LossOptions(extractor="vgg16")`` without its weights file.

    Examples
    --------
    >>> import numpy as np
    >>> from xr_ktextures import KTextures
    >>> rng = np.random.default_rng(0)
    >>> patches = rng.random((4, 32, 32, 4), dtype=np.float32)
    >>> model = KTextures(k=3, seed=0)
    >>> model.fit(patches, steps=2, batch_size=2, patch_size=32, verbose=0)  # doctest: +ELLIPSIS
    <xr_ktextures.model.KTextures k=3 ...>
    >>> model.predict(patches[0]).shape, model.simulate(patches[0]).shape
    ((32, 32), (32, 32, 4))
    """

    network: KTexturesNet
    """The ``keras.Model`` (:class:`~xr_ktextures.network.KTexturesNet`): layers, ``call``, loss, config."""

    def __init__(
        self,
        k: int,
        bands: int = 4,
        *,
        band_names: Sequence[str] | None = None,
        architecture: Literal["default", "paper"] = "default",
        mask: MaskOptions | dict[str, Any] | None = None,
        textures: TextureOptions | dict[str, Any] | None = None,
        loss: LossOptions | dict[str, Any] | None = None,
        seed: int = 0,
        _ablation: Ablation | dict[str, Any] | None = None,
        **moved: Any,
    ) -> None:
        if moved:
            old = [n for n in moved if n in FLAT_NAMES]
            if old:
                raise InputError(moved_option_message(old))
            raise TypeError(f"KTextures() got unexpected keyword argument(s) {sorted(moved)}.")
        self.network = KTexturesNet(
            k,
            bands,
            architecture=architecture,
            band_names=band_names,
            mask=as_options(MaskOptions, mask, "mask"),
            textures=as_options(TextureOptions, textures, "textures"),
            loss=as_options(LossOptions, loss, "loss"),
            ablation=as_ablation(_ablation),
            seed=seed,
        )

    @classmethod
    def from_network(cls, network: KTexturesNet) -> KTextures:
        """The estimator around an existing network (a loaded or rebuilt one).

        Parameters
        ----------
        network : KTexturesNet
            The network to hold.

        Returns
        -------
        KTextures
        """
        if not isinstance(network, KTexturesNet):
            raise InputError(f"expected a KTexturesNet, got {type(network).__name__}.")
        model = cls.__new__(cls)
        model.network = network
        return model

    def __repr__(self) -> str:
        state = f"view={self.view!r} pool={self.pool} halo={self.halo}" if self.fitted else "unfitted"
        return f"<{type(self).__module__}.{type(self).__name__} k={self.k} bands={self.bands} {state}>"

    # ------------------------------------------------------------------ what the model is
    @property
    def k(self) -> int:
        """Number of classes."""
        return self.network.k

    @property
    def bands(self) -> int:
        """Number of bands the model reads."""
        return self.network.bands

    @property
    def band_names(self) -> list[str] | None:
        """Names of the bands the model was fitted on, in order (None when unnamed)."""
        return self.network.band_names

    @property
    def architecture(self) -> str:
        """``"default"`` or ``"paper"``."""
        return self.network.architecture

    @property
    def seed(self) -> int:
        """The seed of weights, noise and training."""
        return self.network.seed

    @property
    def mask(self) -> MaskOptions:
        """The mask branch's options in effect (after the preset and defaults)."""
        return self.network.mask_options

    @property
    def textures(self) -> TextureOptions:
        """The texture branch's options."""
        return self.network.texture_options

    @property
    def loss(self) -> LossOptions:
        """The loss options in effect."""
        return self.network.loss_options

    @property
    def fitted(self) -> bool:
        """Whether :meth:`fit` has run (or the model was loaded fitted)."""
        return self.network.fitted

    @property
    def pool(self) -> int:
        """Context radius of the mask head's window mean (chosen from the data at fit by default)."""
        return self.network.pool

    @property
    def view(self) -> str:
        """What the mask head reads: ``"colour"``, ``"texture"`` or ``"both"`` (chosen at fit by default)."""
        return self.network.view

    @property
    def context_scores(self) -> dict[str, float]:
        """Fisher score of each candidate view at fit, keyed ``"view@pool"`` (empty before fit)."""
        return dict(self.network.context_scores)

    @property
    def init_view(self) -> str:
        """``"view@radius"`` of the first clustering at fit, which the multi-scale head refines ("" before fit)."""
        return self.network.init_view

    @property
    def halo(self) -> int:
        """Exact context radius in pixels: a label depends on the input within this distance only."""
        return self.network.halo

    @property
    def model_id(self) -> str:
        """Short hash of the configuration and weights: equal ids mean equal labels."""
        return self.network.model_id

    def save(self, path: str | os.PathLike[str]) -> None:
        """Save to a ``.keras`` file; :func:`xr_ktextures.load_model` reads it back.

        Parameters
        ----------
        path : str or os.PathLike
            The file to write; its name must end in ``.keras``.
        """
        self.network.save(path)

    # ------------------------------------------------------------------ training
    def fit(
        self,
        patches: np.ndarray,
        *,
        steps: int = 60,
        batch_size: int = 4,
        patch_size: int = 64,
        learning_rate: float = 3e-3,
        augment: bool = True,
        verbose: int | str = "auto",
        callbacks: Sequence[keras.callbacks.Callback] | None = None,
    ) -> KTextures:
        """Train on a batch of image patches; returns the model itself.

        Per-band scaling is fitted on ``patches`` first and stored in the network; then
        the cluster initialisation sets the mask head (and the view and context radius)
        from the patches (:func:`~xr_ktextures.initialise.initialise_masks`); then each of
        ``steps`` Adam steps draws ``batch_size`` random ``patch_size`` crops (with random
        flips and quarter turns when ``augment``). The global Keras, numpy and Python
        random seeds are set from the model's ``seed`` (reproducibility on CPU). The
        loop is :func:`xr_ktextures.training.train`.

        Parameters
        ----------
        patches : numpy.ndarray
            ``(N, H, W, bands)``, ``H, W >= patch_size``; or ``(N, dates, H, W, bands)``,
            patch ``i`` at the same pixels on each date (as :func:`xr_ktextures.fit`
            samples a time series for the context merge, which then sees a place's dates
            together; training reads them as ``N * dates`` patches). A pixel with a non-finite band
            (NaN: a gap, as :func:`xr_ktextures.fit` samples them) is filled from the
            valid values around it, as :meth:`predict` fills gaps for their neighbours
            (``xr_ktextures._nodata.fill_gaps``), and left out of the cluster
            initialisation's pixel sample; at most half of the pixels may be gaps.
        steps : int
            Optimisation steps of the textures and the mask head (0: the cluster
            initialisation only). Measured fit times against k: ``docs/scaling.md``.
        batch_size, patch_size : int
            Crops per step and their size (a multiple of 16, >= 32).
        learning_rate : float
            Adam learning rate (cosine-decayed to 5 % over ``steps``).
        augment : bool
            Random flips and quarter turns of each crop.
        verbose : int or "auto"
            Keras progress display (0 silent, 1 progress bar, 2 one line).
        callbacks : list of keras.callbacks.Callback, optional
            Keras callbacks, called as ``Model.fit`` calls them (one epoch of ``steps`` batches).

        Returns
        -------
        KTextures
            ``self``, trained.

        Raises
        ------
        InputError
            If ``patches`` has the wrong shape or band count, more than half of its
            pixels are gaps, or an option is out of range.
        """
        train(
            self.network,
            patches,
            steps=steps,
            batch_size=batch_size,
            patch_size=patch_size,
            learning_rate=learning_rate,
            augment=augment,
            verbose=verbose,
            callbacks=callbacks,
        )
        return self

    # ------------------------------------------------------------------ prediction
    def _require_fitted(self) -> None:
        if not self.fitted:
            raise NotFittedError("this KTextures model is not fitted yet; call fit(...) or load a saved model.")

    def _labels(
        self, x: Any, pad: bool, device: str | None, tile: int | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
        """Labels of the (padded) batch, the batch itself, its invalid pixels and whether ``x`` was one image."""
        self._require_fitted()
        engine = engine_for(self.network, device, tile)
        a = np.asarray(x)
        single = a.ndim == 3
        if single:
            a = a[None]
        if a.ndim != 4 or a.shape[-1] != self.bands:
            raise InputError(
                f"expected (H, W, {self.bands}) or (N, H, W, {self.bands}) for a {self.bands}-band model, "
                f"got {np.shape(x)}."
            )
        a = a.astype(np.float32, copy=False)
        invalid = invalid_pixels(a)
        if invalid.any():
            a = self._fill_gaps(a)
        h = self.halo
        if pad:
            a = np.pad(a, ((0, 0), (h, h), (h, h), (0, 0)), mode="symmetric")
        return engine(a, h), a, invalid, single

    def _fill_gaps(self, x: np.ndarray) -> np.ndarray:
        """``x`` (bands last) with each non-finite value filled as fit and predict fill gaps.

        The mean of the valid values of its band within 2 px, else the band mean of
        the training patches (``xr_ktextures._nodata.fill_gaps``). The pixels around a gap
        are labelled from these values; the gap itself is nodata.
        """
        self._require_fitted()
        return fill_gaps(np.asarray(x, np.float32), keras.ops.convert_to_numpy(self.network.scaler.mean))

    def predict(self, x: np.ndarray, *, pad: bool = True, device: str | None = None, tile: int | None = None) -> Any:
        """Labels for images of any size.

        Parameters
        ----------
        x : numpy.ndarray
            ``(H, W, bands)`` or ``(N, H, W, bands)``. Pixels with any non-finite band
            get :data:`~xr_ktextures.NODATA`; for their neighbours they are filled from the
            valid values around them (``xr_ktextures._nodata.fill_gaps``).
        pad : bool
            True: mirror-pad by :attr:`halo` first (whole images). False: ``x`` already
            carries its context (a chunk with overlap); the outer ``halo`` ring of the
            result is then unreliable and meant to be trimmed.
        device : str, optional
            ``"auto"``/None (the backend's GPU when it sees one, else the CPU), ``"cpu"``,
            ``"gpu"`` or ``"gpu:N"``. Labels are computed by the compiled, tiled engine of
            :mod:`xr_ktextures.tiles` on that device.
        tile : int, optional
            Output tile side in pixels (memory is bounded by the tile, not the image);
            default 1024 on a CPU, 2048 on a GPU.

        Returns
        -------
        numpy.ndarray
            ``uint8`` labels shaped like ``x`` without the band axis.

        Raises
        ------
        NotFittedError
            If the model was never fitted.
        InputError
            If ``x`` is not shaped ``(..., H, W, bands)`` or ``device`` is not a device name.
        DeviceUnavailableError
            If ``device`` names a GPU that the Keras backend does not see.
        """
        labels, _, invalid, single = self._labels(x, pad, device, tile)
        h = self.halo
        if pad:
            labels = labels[:, h : -h or None, h : -h or None]
        labels[invalid] = NODATA
        return labels[0] if single else labels

    def simulate(self, x: np.ndarray, *, pad: bool = True, offset: tuple[int, int] = (0, 0)) -> Any:
        """The simulated image: each pixel's class texture, in band units.

        Parameters
        ----------
        x : numpy.ndarray
            As for :meth:`predict`.
        pad : bool
            As for :meth:`predict`.
        offset : (int, int)
            Global (row, col) of ``x[..., 0, 0, :]``: the texture noise depends on global
            position only (:func:`~xr_ktextures.noise.position_noise`), so simulations
            agree across chunks.

        Returns
        -------
        numpy.ndarray
            ``float32``, shaped like ``x``; NaN where ``x`` has an invalid pixel.

        Raises
        ------
        NotFittedError, InputError
            As for :meth:`predict`.
        """
        labels, a, invalid, single = self._labels(x, pad, None, None)
        net, h = self.network, self.halo
        if pad:
            offset = (offset[0] - h, offset[1] - h)
        masks = ops.one_hot(labels.astype(np.int32), net.k)
        noise = position_noise(offset, a.shape[1:3], net.k * net.texture_options.noise, net.seed)
        # one canvas for the whole batch (the noise depends on position only): the texture
        # bank runs once, not once per image
        sim_s = keras.ops.convert_to_numpy(net.render(masks, noise[None])[0])
        mean = keras.ops.convert_to_numpy(net.scaler.mean)
        scale = keras.ops.convert_to_numpy(net.scaler.scale)
        sim = (sim_s * scale + mean).astype(np.float32)
        if pad:
            sim = sim[:, h : -h or None, h : -h or None]
        sim[invalid] = np.nan
        return sim[0] if single else sim
