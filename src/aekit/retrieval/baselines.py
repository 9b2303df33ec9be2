"""Baselines for retrieval codes: LSA (truncated SVD), random-hyperplane LSH, PCA with sign
thresholding, and iterative quantisation (ITQ). Each has ``fit(X)`` / ``transform(X)``;
the hashing methods return (n, b) bool codes.

References
----------
S. Deerwester et al., "Indexing by latent semantic analysis", JASIS 41(6), 1990 (LSA).
M. Charikar, "Similarity estimation techniques from rounding algorithms", STOC 2002,
section 3 (random hyperplanes). A. Torralba, R. Fergus & Y. Weiss, "Small codes and large
image databases for recognition", CVPR 2008 (binary codes for image retrieval).
Y. Gong & S. Lazebnik, "Iterative quantization: a Procrustean approach to learning binary
codes", CVPR 2011, sections 2.1-2.3 (PCA-sign and ITQ).
"""

from __future__ import annotations

import numpy as np

__all__ = ["ITQ", "LSA", "LSH", "PCASign"]


def _check_X(X, name="X") -> np.ndarray:
    X = np.asarray(X, np.float32) if not hasattr(X, "toarray") else X
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n, d), got shape {X.shape}")
    return X


def _check_bits(n_bits, d=None) -> int:
    if isinstance(n_bits, bool) or not isinstance(n_bits, (int, np.integer)) or n_bits < 1:
        raise ValueError(f"n_bits must be an integer >= 1, got {n_bits!r}")
    if d is not None and n_bits > d:
        raise ValueError(f"n_bits={n_bits} exceeds the data dimension {d}")
    return int(n_bits)


class LSA:
    """Latent semantic analysis: ``z = V_kᵀ x`` with ``V_k`` the top-k right singular vectors
    of the (uncentred) document-term matrix (scikit-learn ``TruncatedSVD``, randomized, 7
    iterations). Input: log(1 + counts) or TF-IDF rows, (n, V) -> codes (n, k)."""

    def __init__(self, n_components: int, random_state: int = 0):
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, X) -> LSA:
        from sklearn.decomposition import TruncatedSVD

        X = _check_X(X)
        _check_bits(self.n_components, X.shape[1])
        self.svd_ = TruncatedSVD(self.n_components, n_iter=7,
                                 random_state=self.random_state).fit(X)
        return self

    def transform(self, X) -> np.ndarray:
        return self.svd_.transform(_check_X(X)).astype(np.float32)


class LSH:
    """Random-hyperplane LSH: ``b_j = [w_jᵀ (x − μ) > 0]``, ``w_j ~ N(0, I)`` (Charikar 2002);
    the data mean μ is removed so the hyperplanes cut through the data."""

    def __init__(self, n_bits: int, random_state: int = 0):
        self.n_bits = n_bits
        self.random_state = random_state

    def fit(self, X) -> LSH:
        X = _check_X(X)
        b = _check_bits(self.n_bits)
        self.mean_ = np.asarray(X.mean(0)).ravel().astype(np.float32)
        rng = np.random.default_rng(self.random_state)
        self.W_ = rng.standard_normal((X.shape[1], b)).astype(np.float32)
        return self

    def transform(self, X) -> np.ndarray:
        X = _check_X(X)
        return (np.asarray(X @ self.W_) - self.mean_ @ self.W_) > 0


class PCASign:
    """PCA then sign: ``b = [V_bᵀ (x − μ) > 0]`` with ``V_b`` the top-b principal directions
    (Gong & Lazebnik 2011, section 2.1)."""

    def __init__(self, n_bits: int):
        self.n_bits = n_bits

    def fit(self, X) -> PCASign:
        X = _check_X(X)
        b = _check_bits(self.n_bits, X.shape[1])
        self.mean_ = X.mean(0).astype(np.float32)
        # top-b eigenvectors of the covariance
        C = np.cov((X - self.mean_).T.astype(np.float64))
        _, V = np.linalg.eigh(C)
        self.components_ = V[:, ::-1][:, :b].astype(np.float32)  # (d, b)
        return self

    def project(self, X) -> np.ndarray:
        return (_check_X(X) - self.mean_) @ self.components_

    def transform(self, X) -> np.ndarray:
        return self.project(X) > 0


class ITQ(PCASign):
    """Iterative quantisation: PCA to b dimensions, then the rotation R minimising the
    quantisation loss ``‖B − V R‖_F²`` over B ∈ {−1, 1}^{n×b} and orthogonal R, by alternating
    ``B = sgn(V R)`` and ``R = Ŝ Sᵀ`` from the SVD ``Bᵀ V = S Ω Ŝᵀ`` (Gong & Lazebnik 2011,
    section 2.3), starting from a random orthogonal R; ``n_iter`` = 50 as in the paper."""

    def __init__(self, n_bits: int, n_iter: int = 50, random_state: int = 0):
        super().__init__(n_bits)
        self.n_iter = n_iter
        self.random_state = random_state

    def fit(self, X) -> ITQ:
        super().fit(X)
        V = self.project(X).astype(np.float64)
        rng = np.random.default_rng(self.random_state)
        R, _ = np.linalg.qr(rng.standard_normal((self.n_bits, self.n_bits)))
        self.loss_ = []
        for _ in range(self.n_iter):
            B = np.where(V @ R >= 0, 1.0, -1.0)
            self.loss_.append(float(((B - V @ R) ** 2).sum()))
            S, _, Sh = np.linalg.svd(B.T @ V)
            R = (S @ Sh).T
        self.R_ = R.astype(np.float32)
        return self

    def transform(self, X) -> np.ndarray:
        return (self.project(X) @ self.R_) > 0
