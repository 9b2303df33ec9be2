"""Top-k sparse autoencoder for interpreting activations (Gao et al. 2024; Makhzani & Frey 2013).

``TopKSAE`` is an overcomplete dictionary ``W_dec`` (L atoms of dimension d, unit norm) with a
linear encoder, a pre-encoder bias ``b_pre`` and a top-k code::

    z = ReLU(TopK_k(W_enc (x − b_pre) + b_enc)),    x̂ = W_decᵀ z + b_pre.

Only the k selected pre-activations of a row carry a gradient and the decoder reads only the k
selected atoms, so the backward pass costs O(n k d) on top of the one dense product
``W_enc (x − b_pre)`` (n L d) that the selection needs; see :class:`_SelectedLinear`.

The decoder's rows (the atoms) are kept at unit norm: the component of each atom's gradient
parallel to the atom is removed by a gradient hook (Gao et al. 2024, section 2.3 / appendix
A.4), and :meth:`TopKSAE.normalize_decoder_` is called after every optimiser step by the
:class:`aekit.sae.UnitNormDecoder` callback (which :func:`aekit.sae.train_sae`, the estimator
and the CLI always add).

The model counts, per latent, the training tokens since it last fired (buffer
``tokens_since_fired``); :meth:`TopKSAE.dead_mask` marks latents idle for more than a token
window, which the :class:`~aekit.objectives.auxk.AuxK` term uses to revive them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from .base import AEOutput, Autoencoder

__all__ = ["SparseSelection", "TopKSAE", "geometric_median"]


class SparseSelection:
    """The selected entries of a code, row-major: ``(rows, cols, offsets)``.

    ``rows`` and ``cols`` (nnz,) int64 index the selected (sample, latent) pairs, sorted by
    row; ``offsets`` (n,) is where each row's entries start (the ``offsets`` of
    ``F.embedding_bag``). A plain top-k selection has ``offsets = k · arange(n)``.
    """

    __slots__ = ("cols", "n", "offsets", "rows")

    def __init__(self, rows: torch.Tensor, cols: torch.Tensor, n: int):
        self.rows, self.cols, self.n = rows, cols, int(n)
        self.offsets = torch.searchsorted(rows, torch.arange(n, dtype=rows.dtype))

    @classmethod
    def from_topk(cls, idx: torch.Tensor) -> SparseSelection:
        """From a (n, k) index matrix (row i keeps latents ``idx[i]``)."""
        n, k = idx.shape
        self = cls.__new__(cls)
        self.n = int(n)
        self.rows = torch.arange(n).repeat_interleave(k)
        self.cols = idx.reshape(-1)
        self.offsets = torch.arange(0, n * k, k) if n else torch.zeros(0, dtype=torch.long)
        return self


class _SelectedLinear(torch.autograd.Function):
    """``v_e = ⟨xc[r_e], W[c_e]⟩ + b[c_e]`` for the selected entries e, with a sparse backward.

    The forward returns the values already computed by the dense product (``values``); the
    backward is O(nnz · d) instead of the dense O(n L d)::

        ∂/∂b_l   = Σ_{e: c_e = l} g_e
        ∂/∂W_l   = Σ_{e: c_e = l} g_e xc[r_e]      (an embedding bag over latents)
        ∂/∂xc_i  = Σ_{e: r_e = i} g_e W[c_e]       (an embedding bag over rows)
    """

    @staticmethod
    def forward(ctx, xc, W, b, rows, cols, offsets, values):
        ctx.save_for_backward(xc, W, rows, cols, offsets)
        return values.clone()

    @staticmethod
    def backward(ctx, g):
        xc, W, rows, cols, offsets = ctx.saved_tensors
        g = g.contiguous()
        gx = gW = gb = None
        if ctx.needs_input_grad[0]:
            gx = F.embedding_bag(cols, W, offsets, mode="sum", per_sample_weights=g)
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            L = W.shape[0]
            order = torch.argsort(cols, stable=True)
            c_sorted = cols[order]
            if ctx.needs_input_grad[1]:
                lat_offsets = torch.searchsorted(c_sorted, torch.arange(L, dtype=cols.dtype))
                gW = F.embedding_bag(rows[order], xc, lat_offsets, mode="sum",
                                     per_sample_weights=g[order])
            if ctx.needs_input_grad[2]:
                gb = torch.zeros(L, dtype=g.dtype).index_add_(0, cols, g)
        return gx, gW, gb, None, None, None, None


def geometric_median(X: torch.Tensor, *, max_iter: int = 100, tol: float = 1e-6
                     ) -> torch.Tensor:
    """Geometric median ``argmin_m Σ_i ‖x_i − m‖₂`` by Weiszfeld's iteration.

    ``m ← Σ_i w_i x_i / Σ_i w_i`` with ``w_i = 1 / max(‖x_i − m‖, ε)``, started at the mean,
    until the step is below ``tol`` times the data's scale. Shapes (n, d) -> (d,).

    References
    ----------
    Weiszfeld, "Sur le point pour lequel la somme des distances de n points donnés est
    minimum", Tohoku Math. J. 1937. Used to initialise ``b_pre`` by Gao et al. 2024, sec. 2.3.
    """
    X = X.to(torch.float64)
    m = X.mean(0)
    scale = float((X - m).norm(dim=1).mean()) or 1.0
    for _ in range(int(max_iter)):
        w = 1.0 / (X - m).norm(dim=1).clamp_min(1e-12 * scale)
        new = (w[:, None] * X).sum(0) / w.sum()
        step = float((new - m).norm())
        m = new
        if step <= tol * scale:
            break
    return m


class TopKSAE(Autoencoder):
    """Top-k sparse autoencoder with unit-norm decoder atoms and a pre-encoder bias.

    ``a = W_enc (x − b_pre) + b_enc`` (n, L); ``z = ReLU(TopK_k(a))`` keeps the k largest
    entries of each row (with ``batch_topk=True``: the k·n largest of the whole batch, and at
    evaluation the entries above a threshold θ learned during training); the reconstruction
    is ``x̂ = W_decᵀ z + b_pre`` with ``‖W_dec[l]‖₂ = 1`` for every atom l.

    Parameters
    ----------
    n_features : int
        d, the width of the activations.
    n_latents : int
        L, the dictionary size (e.g. 4·d or 16·d).
    k : int
        Active latents per sample, 1 <= k <= L.
    batch_topk : bool
        BatchTopK (Bussmann et al. 2024): k·n active latents over a batch of n in training,
        ``a > θ`` at evaluation, θ the running mean of the smallest kept value.
    relu : bool
        Clamp the kept values at 0 (as in Gao et al.'s released code), so a row can have
        fewer than k non-zeros when some of its k largest pre-activations are negative.
    project_decoder_grad : bool
        Remove from each atom's gradient its component along the atom,
        ``g_l ← g_l − ⟨g_l, w_l⟩ w_l / ‖w_l‖²``, so Adam's steps stay near the unit sphere.

    Attributes
    ----------
    W_enc : (L, d); b_enc : (L,); W_dec : (L, d), rows are atoms; b_pre : (d,)
    tokens_since_fired : (L,) int64 buffer
        Training tokens since each latent was last non-zero (updated in training mode).
    threshold : () buffer
        θ of BatchTopK (used only with ``batch_topk=True``).
    dense_code : bool
        True (default): ``AEOutput.code`` is the dense (n, L) code. False: in training mode
        it is a sparse COO tensor of the same shape and values (``.to_dense()`` gives the
        dense one), so a training step never fills the n·L zeros of the dense code (about
        8 % of a step at L = 8192, n = 1024, k = 32). :func:`aekit.sae.train_sae` sets it
        to False for its run when no term reads the code, and restores it. Evaluation mode
        always returns the dense code.

    Shapes: ``x`` (n, d) -> code (n, L) with at most k non-zeros per row (k on average over
    a batch for BatchTopK) -> reconstruction (n, d). ``AEOutput.preactivations`` is ``(a,)``,
    detached: gradients flow only through the k selected entries (see :meth:`select`).

    References
    ----------
    Gao et al., "Scaling and evaluating sparse autoencoders", 2024, sections 2.2-2.4 and
    appendix A (TopK, b_pre, unit-norm decoder, gradient projection, encoder = decoderᵀ at
    initialisation). Makhzani & Frey, "k-Sparse Autoencoders", ICLR 2014, section 2.
    Bussmann, Leask & Nanda, "BatchTopK Sparse Autoencoders", 2024, section 3.

    Examples
    --------
    >>> m = TopKSAE(8, 32, k=4)
    >>> (m(torch.randn(5, 8)).code != 0).sum(1).le(4).all().item()
    True
    """

    name = "topk_sae"
    output = "linear"

    def __init__(self, n_features: int, n_latents: int, k: int, batch_topk: bool = False,
                 relu: bool = True, project_decoder_grad: bool = True):
        super().__init__()
        from ..validation import check_int

        d = check_int("n_features", n_features, 1)
        L = check_int("n_latents", n_latents, 1)
        k = check_int("k", k, 1)
        if k > L:
            raise ValueError(f"k={k} is larger than the dictionary (n_latents={L})")
        for name, v in (("batch_topk", batch_topk), ("relu", relu),
                        ("project_decoder_grad", project_decoder_grad)):
            if not isinstance(v, bool):
                raise ValueError(f"{name} must be True or False, got {v!r}")
        self.n_features, self.n_latents, self.n_components, self.k = d, L, L, k
        self.batch_topk, self.relu, self.project_decoder_grad = batch_topk, relu, \
            project_decoder_grad
        W = torch.randn(L, d)
        W = W / W.norm(dim=1, keepdim=True)
        self.W_dec = nn.Parameter(W.clone())
        self.W_enc = nn.Parameter(W.clone())  # encoder = decoderᵀ at initialisation
        self.b_enc = nn.Parameter(torch.zeros(L))
        self.b_pre = nn.Parameter(torch.zeros(d))
        self.register_buffer("tokens_since_fired", torch.zeros(L, dtype=torch.long))
        self.register_buffer("threshold", torch.tensor(-1.0))
        self.dense_code = True
        if project_decoder_grad:
            self.W_dec.register_hook(self._project_grad)

    # --- the decoder constraint --------------------------------------------------------------
    def _project_grad(self, g: torch.Tensor) -> torch.Tensor:
        w = self.W_dec.detach()  # (L, d), unit rows up to rounding: divide by ‖w‖² anyway
        return g - ((g * w).sum(1, keepdim=True) / (w * w).sum(1, keepdim=True).clamp_min(
            1e-30)) * w

    @torch.no_grad()
    def normalize_decoder_(self) -> None:
        """Rescale every atom to unit norm in place: ``W_dec[l] ← W_dec[l] / ‖W_dec[l]‖``."""
        self.W_dec.div_(self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12))

    @torch.no_grad()
    def init_from_data(self, X: torch.Tensor, *, method: str = "geometric_median") -> None:
        """Set ``b_pre`` from a sample of the data (n, d): its geometric median (Gao et al.
        2024, sec. 2.3), its ``"mean"``, or ``"zeros"``."""
        if method == "zeros":
            self.b_pre.zero_()
            return
        X = torch.as_tensor(X)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"init sample must have shape (n, {self.n_features}), got "
                             f"{tuple(X.shape)}")
        if method == "mean":
            m = X.to(torch.float64).mean(0)
        elif method == "geometric_median":
            m = geometric_median(X)
        else:
            raise ValueError(f"unknown b_pre init {method!r}; expected one of "
                             "'geometric_median', 'mean', 'zeros'")
        self.b_pre.copy_(m.to(self.b_pre.dtype))

    @torch.no_grad()
    def init_atoms_from_data_(self, X: torch.Tensor, *,
                              generator: torch.Generator | None = None) -> None:
        """Atoms (and encoder rows, tied) at L data rows: ``W_dec[l] = W_enc[l] = (x_{i_l} −
        b_pre) / ‖x_{i_l} − b_pre‖``.

        The rows ``i_l`` are drawn from ``X`` (n, d) without replacement (with replacement when
        n < L); a row equal to ``b_pre`` keeps its random atom. Call after ``b_pre`` is set
        (:meth:`init_from_data`). Every latent then starts aligned with a data point, so each
        one fires at least near it (with random atoms some never enter a row's top k).

        References
        ----------
        Sharkey et al., "Taking features out of superposition with sparse autoencoders",
        2022 (data initialisation of the dictionary); Gao et al. 2024, appendix A.1 (encoder
        = decoderᵀ at initialisation).
        """
        X = torch.as_tensor(X)
        if X.ndim != 2 or X.shape[1] != self.n_features or len(X) == 0:
            raise ValueError(f"atom init sample must have shape (n >= 1, {self.n_features}), "
                             f"got {tuple(X.shape)}")
        n, L = len(X), self.n_latents
        idx = (torch.randperm(n, generator=generator)[:L] if n >= L
               else torch.randint(0, n, (L,), generator=generator))
        V = X[idx].to(self.W_dec.dtype) - self.b_pre
        norm = V.norm(dim=1, keepdim=True)
        ok = norm.squeeze(1) > 1e-12
        V = torch.where(ok[:, None], V / norm.clamp_min(1e-12), self.W_dec)
        self.W_dec.copy_(V)
        self.W_enc.copy_(V)

    @torch.no_grad()
    def rescale_encoder_(self, X: torch.Tensor | None = None, *, n_probe: int = 256,
                         generator: torch.Generator | None = None) -> float:
        """Multiply ``W_enc`` and ``b_enc`` by one scalar s > 0 fitted at initialisation;
        returns s.

        The top-k selection does not change under a positive rescaling of the
        pre-activations, so the code scales exactly: ``z(s) = s z(1)`` and
        ``x̂(s) − b_pre = s (x̂(1) − b_pre)``. With a sample ``X`` (n, d) s is the least-squares
        scale ``s = Σ_i ⟨r_i, x_i − b_pre⟩ / Σ_i ‖r_i‖²``, ``r_i = x̂_i(1) − b_pre``, the
        minimiser of ``Σ_i ‖x_i − x̂_i(s)‖²``. Without ``X``, Gao et al.'s released rule:
        ``s = 1 / mean_j ‖x̂(u_j) − b_pre‖`` over ``n_probe`` random unit vectors
        ``u_j`` placed at ``b_pre``, so a unit input gives a reconstruction of norm ~1. Falls
        back to s = 1 when the reconstructions are all zero (or the fitted s is <= 0).

        References
        ----------
        Gao et al., "Scaling and evaluating sparse autoencoders", 2024, appendix A.1, and the
        authors' released code (openai/sparse_autoencoder, ``train.py``, ``init_from_data_``).
        """
        if X is None:
            u = torch.randn(int(n_probe), self.n_features, generator=generator,
                            dtype=self.W_enc.dtype)
            u = u / u.norm(dim=1, keepdim=True).clamp_min(1e-12)
            rn = float(self._training_selection_recon(u + self.b_pre).norm(dim=1).mean())
            s = 1.0 / rn if rn > 0 else 1.0
        else:
            X = torch.as_tensor(X).to(self.W_enc.dtype)
            if X.ndim != 2 or X.shape[1] != self.n_features or len(X) == 0:
                raise ValueError(f"encoder-scale sample must have shape (n >= 1, "
                                 f"{self.n_features}), got {tuple(X.shape)}")
            r = self._training_selection_recon(X).to(torch.float64)
            den = float(r.pow(2).sum())
            num = float((r * (X - self.b_pre).to(torch.float64)).sum())
            s = num / den if den > 0 and num > 0 else 1.0
        self.W_enc.mul_(s)
        self.b_enc.mul_(s)
        return s

    @torch.no_grad()
    def _training_selection_recon(self, x: torch.Tensor) -> torch.Tensor:
        """``x̂ − b_pre`` (n, d) with the training-mode selection (top-k, or BatchTopK's k·n
        largest), without counting firings or touching θ."""
        a = self.preactivation(x)
        was = self.training
        self.training = True  # the selection only: no module hooks, no counters
        try:
            sel = self.selection(a)
        finally:
            self.training = was
        vals = a[sel.rows, sel.cols]
        if self.relu:
            vals = vals.clamp_min(0)
        return self.decode_sparse(sel, vals, bias=False)

    # --- dead latents ------------------------------------------------------------------------
    def dead_mask(self, window: int) -> torch.Tensor:
        """(L,) bool: latents that have not fired in the last ``window`` training tokens."""
        return self.tokens_since_fired >= int(window)

    @torch.no_grad()
    def _count_firing(self, sel: SparseSelection, vals: torch.Tensor) -> None:
        self.tokens_since_fired.add_(sel.n)
        fired = sel.cols[vals > 0] if self.relu else sel.cols[vals != 0]
        self.tokens_since_fired.index_fill_(0, fired, 0)

    # --- encoder -----------------------------------------------------------------------------
    def preactivation(self, x: torch.Tensor) -> torch.Tensor:
        """``a = W_enc (x − b_pre) + b_enc`` without gradient: (n, d) -> (n, L)."""
        with torch.no_grad():
            return torch.addmm(self.b_enc, x - self.b_pre, self.W_enc.t())

    def selection(self, a: torch.Tensor) -> SparseSelection:
        """The entries of ``a`` (n, L) the code keeps (top-k per row, or BatchTopK)."""
        n = a.shape[0]
        if not self.batch_topk:
            return SparseSelection.from_topk(a.topk(self.k, dim=1, sorted=False).indices)
        if self.training:
            m = min(self.k * n, a.numel())
            flat = a.reshape(-1).topk(m, sorted=False).indices.sort().values
        else:
            thr = max(float(self.threshold), 0.0) if self.relu else float(self.threshold)
            flat = (a.reshape(-1) > thr).nonzero().squeeze(1)
        L = a.shape[1]
        return SparseSelection(flat // L, flat % L, n)

    def select(self, x: torch.Tensor, sel: SparseSelection, a: torch.Tensor | None = None
               ) -> torch.Tensor:
        """Differentiable values of the selected pre-activations, (nnz,).

        Gradients reach ``W_enc``, ``b_enc`` and ``b_pre`` (and ``x``) through the selected
        entries only (O(nnz d)); ``a`` is the detached pre-activation if already computed.
        """
        if a is None:
            a = self.preactivation(x)
        vals = a[sel.rows, sel.cols]
        xc = x - self.b_pre
        return _SelectedLinear.apply(xc, self.W_enc, self.b_enc, sel.rows, sel.cols,
                                     sel.offsets, vals)

    def encode_sparse(self, x: torch.Tensor) -> tuple[SparseSelection, torch.Tensor, torch.Tensor]:
        """``(selection, values, a)``: the code as its non-zero pattern and (nnz,) values
        (differentiable, after the ReLU), and the detached pre-activation (n, L)."""
        a = self.preactivation(x)
        sel = self.selection(a)
        vals = self.select(x, sel, a)
        if self.relu:
            vals = F.relu(vals)
        if self.training:
            self._count_firing(sel, vals.detach())
            if self.batch_topk and len(vals):
                with torch.no_grad():  # θ: running mean of the smallest kept value
                    low = vals.detach().min()
                    if float(self.threshold) < 0:
                        self.threshold.copy_(low)
                    else:
                        self.threshold.mul_(0.99).add_(0.01 * low)
        return sel, vals, a

    @staticmethod
    def _dense(sel: SparseSelection, vals: torch.Tensor, L: int) -> torch.Tensor:
        # in place on a fresh zero tensor: one pass over (n, L) instead of two
        return torch.zeros(sel.n, L, dtype=vals.dtype).index_put_((sel.rows, sel.cols), vals)

    def encode_full(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        sel, vals, a = self.encode_sparse(x)
        return self._dense(sel, vals, self.n_latents), (a,)

    # --- decoder -----------------------------------------------------------------------------
    def decode_sparse(self, sel: SparseSelection, vals: torch.Tensor, *,
                      bias: bool = True) -> torch.Tensor:
        """``Σ_e v_e W_dec[c_e]`` per row (+ ``b_pre``): O(nnz d). Returns (n, d)."""
        out = F.embedding_bag(sel.cols, self.W_dec, sel.offsets, mode="sum",
                              per_sample_weights=vals.to(self.W_dec.dtype))
        return out + self.b_pre if bias else out

    def decode_logits(self, h: torch.Tensor) -> torch.Tensor:
        return h @ self.W_dec + self.b_pre

    def forward(self, x: torch.Tensor) -> AEOutput:
        sel, vals, a = self.encode_sparse(x)
        r = self.decode_sparse(sel, vals)
        if self.training and not self.dense_code:
            # the (n, L) code as a sparse COO tensor: a step never fills n·L zeros
            code = torch.sparse_coo_tensor(torch.stack([sel.rows, sel.cols]), vals,
                                           (sel.n, self.n_latents), check_invariants=False)
        else:
            code = self._dense(sel, vals, self.n_latents)
        return AEOutput(code, r, r, (a,))

    @property
    def dictionary(self) -> torch.Tensor:
        """``D = W_decᵀ``, shape (d, L), so ``x ≈ D z + b_pre``."""
        return self.W_dec.t()

    @classmethod
    def from_spec(cls, *, n_features, code_size, hidden=(), image_shape=None, **options):
        """``TopKSAE(d, code_size, k)`` where ``code_activation="topk:K"`` gives k."""
        act = str(options.get("code_activation", ""))
        if not act.startswith("topk:"):
            raise ValueError("model 'topk_sae' needs code_activation='topk:K'")
        return cls(n_features, code_size, int(act.split(":", 1)[1]))

    def config(self) -> dict[str, Any]:
        return {"n_features": self.n_features, "n_latents": self.n_latents, "k": self.k,
                "batch_topk": self.batch_topk, "relu": self.relu,
                "project_decoder_grad": self.project_decoder_grad}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config().items())
