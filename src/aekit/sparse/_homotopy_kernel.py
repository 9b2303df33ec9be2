"""Compiled per-sample homotopy (LARS-Lasso) walk: the fast backend of
:func:`aekit.sparse.homotopy.homotopy`.

One sample's path is a short sequential loop (about as many steps as non-zeros, each an
``O(k·|A|)`` update), which vectorised torch can only run as a few dozen whole-batch kernel
launches per step. Compiled with numba, each sample walks its own path in float64 with an
incrementally grown Cholesky factor of ``G_AA``, and samples run in parallel blocks. Imported
lazily: :data:`AVAILABLE` is False where numba is missing, and the torch path is used.

Reference: Osborne, Presnell & Turlach, IMA J. Numer. Anal. 20, 2000; Efron et al., "Least
angle regression", Ann. Statist. 32(2), 2004, §3.1.
"""

from __future__ import annotations

import math
import os
import threading

import numpy as np

try:  # numba is a declared dependency, but the solver must not break without it
    import numba
    from numba import njit, prange

    # numba's OpenMP layer leaves its worker threads spinning next to torch's own OpenMP
    # pool: after one parallel walk, torch matmuls were measured 20x slower. The workqueue
    # layer sleeps between calls. It is not re-entrant, hence the lock in walk(). A layer
    # chosen by the user (NUMBA_THREADING_LAYER) is respected.
    if "NUMBA_THREADING_LAYER" not in os.environ:
        numba.config.THREADING_LAYER = "workqueue"
    AVAILABLE = True
except ImportError:  # pragma: no cover - exercised only where numba is absent
    numba = None
    AVAILABLE = False

_LOCK = threading.Lock()

# status codes per sample
OK, NOT_OPTIMAL, MAX_STEPS, RANK = 0, 1, 2, 3

if AVAILABLE:

    @njit(cache=True, nogil=True)
    def _chol_append(L, p, G, A, j):  # pragma: no cover - compiled
        """Grow the Cholesky factor of G_AA (size p) by atom j; False if G_AA+j is singular."""
        for i in range(p):
            s = G[A[i], j]
            for t in range(i):
                s -= L[i, t] * L[p, t]
            L[p, i] = s / L[i, i]
        d2 = G[j, j]
        for t in range(p):
            d2 -= L[p, t] * L[p, t]
        if not d2 > 1e-10 * G[j, j]:
            return False
        L[p, p] = math.sqrt(d2)
        return True

    @njit(cache=True, nogil=True)
    def _chol_solve(L, p, b, out, tmp):  # pragma: no cover - compiled
        """out[:p] = (L Lᵀ)⁻¹ b[:p]."""
        for i in range(p):
            s = b[i]
            for t in range(i):
                s -= L[i, t] * tmp[t]
            tmp[i] = s / L[i, i]
        for i in range(p - 1, -1, -1):
            s = tmp[i]
            for t in range(i + 1, p):
                s -= L[t, i] * out[t]
            out[i] = s / L[i, i]

    @njit(cache=True, nogil=True)
    def _walk(c, G, alpha, positive, max_steps, tol, z, A, theta, zA, delta, L, r, a, tmp,
              isact, rhs, lar, n_max):  # pragma: no cover - compiled
        """Walk one sample's path from λ₀ = max|c| down to alpha; write its code into z.

        ``lar=True`` walks the plain LARS path instead (no atom ever leaves, Efron et al.
        §2) and stops where atom ``n_max + 1`` would join (or at λ = alpha).

        Returns (status, steps, ½‖x − Dz‖² − ½‖x‖², α‖z‖₁)."""
        k = c.shape[0]
        cap = A.shape[0]
        lam = -1.0
        j0 = -1
        for j in range(k):
            r[j] = c[j]
            isact[j] = False
            v = c[j] if positive else abs(c[j])
            if v > lam:
                lam = v
                j0 = j
        if lam <= alpha:
            return OK, 0, 0.0, 0.0
        _chol_append(L, 0, G, A, j0)
        A[0] = j0
        theta[0] = 1.0 if c[j0] > 0 else -1.0
        zA[0] = 0.0
        isact[j0] = True
        p = 1
        dropped = -1
        steps = 0
        status = OK
        while True:
            steps += 1
            if steps > max_steps:
                status = MAX_STEPS
                break
            _chol_solve(L, p, theta, delta, tmp)  # dz_A / d(−λ)
            for j in range(k):
                a[j] = 0.0
            for s in range(p):  # a = G_{:,A} δ (G symmetric: rows are contiguous)
                ds = delta[s]
                row = A[s]
                for j in range(k):
                    a[j] += G[row, j] * ds
            gj = np.inf
            jj = -1
            sj = 1.0
            for j in range(k):  # join: |r_j − γa_j| = λ − γ
                if isact[j] or j == dropped:
                    continue
                den = 1.0 - a[j]
                if den > 0.0:
                    g = (lam - r[j]) / den
                    if g < gj:
                        gj, jj, sj = g, j, 1.0
                if not positive:
                    den = 1.0 + a[j]
                    if den > 0.0:
                        g = (lam + r[j]) / den
                        if g < gj:
                            gj, jj, sj = g, j, -1.0
            gl = np.inf
            ss = -1
            for s in range(p):  # leave: an active coefficient crosses zero
                if not lar and delta[s] * zA[s] < 0.0:
                    g = -zA[s] / delta[s]
                    if g < gl:
                        gl, ss = g, s
            gend = lam - alpha
            gam = min(gj, gl, gend)
            if gam < 0.0:
                gam = 0.0
            for s in range(p):
                zA[s] += gam * delta[s]
            for j in range(k):
                r[j] -= gam * a[j]
            lam -= gam
            dropped = -1
            if gend <= gam:
                break
            if gj <= gl:
                if lar and p >= n_max:
                    break
                if p >= cap or not _chol_append(L, p, G, A, jj):
                    status = RANK
                    break
                A[p] = jj
                theta[p] = sj
                zA[p] = 0.0
                isact[jj] = True
                p += 1
            else:
                out = A[ss]
                isact[out] = False
                dropped = out  # sits on the boundary |r| = λ: it may not rejoin at γ = 0
                for s in range(ss, p - 1):
                    A[s] = A[s + 1]
                    theta[s] = theta[s + 1]
                    zA[s] = zA[s + 1]
                p -= 1
                for q in range(p):
                    _chol_append(L, q, G, A, A[q])
        # polish on the found active set: z_A = G_AA⁻¹(c_A − αθ_A), then check optimality
        lam_end = lam if lar else alpha
        for s in range(p):
            rhs[s] = c[A[s]] - lam_end * theta[s]
        _chol_solve(L, p, rhs, zA, tmp)
        zc = 0.0
        l1 = 0.0
        for s in range(p):
            if status == OK and not lar and not zA[s] * theta[s] > 0.0:
                status = NOT_OPTIMAL
            z[A[s]] = zA[s]
            zc += zA[s] * c[A[s]]
            l1 += abs(zA[s])
        for j in range(k):  # r = c − G z
            r[j] = c[j]
        for s in range(p):
            zs = zA[s]
            row = A[s]
            for j in range(k):
                r[j] -= G[row, j] * zs
        zr = 0.0
        bound = alpha * (1.0 + tol)
        for j in range(k):
            v = r[j] if positive else abs(r[j])
            if v > bound and status == OK and not lar:
                status = NOT_OPTIMAL
            if isact[j]:
                zr += z[j] * r[j]
        # ½‖x − Dz‖² − ½‖x‖² = −zᵀc + ½zᵀGz = −½zᵀc − ½zᵀr
        return status, steps, -0.5 * (zc + zr), alpha * l1

    @njit(parallel=True, cache=True)
    def walk_rows(C, G, alpha, positive, max_steps, tol, cap, n_blocks, Z, status, steps,
                  fit, reg, lar, n_max):  # pragma: no cover - compiled
        """Walk every row of C (n, k) = X D; results into Z (n, k, zeros on entry) and the
        per-row status / steps / fit change / penalty arrays."""
        n, k = C.shape
        per = (n + n_blocks - 1) // n_blocks
        for b in prange(n_blocks):
            A = np.empty(cap, np.int64)
            theta = np.empty(cap)
            zA = np.empty(cap)
            delta = np.empty(cap)
            tmp = np.empty(cap)
            rhs = np.empty(cap)
            L = np.empty((cap, cap))
            r = np.empty(k)
            a = np.empty(k)
            isact = np.empty(k, np.bool_)
            for i in range(b * per, min(n, (b + 1) * per)):
                st, ns, f, g = _walk(C[i], G, alpha, positive, max_steps, tol, Z[i], A, theta,
                                     zA, delta, L, r, a, tmp, isact, rhs, lar, n_max)
                status[i] = st
                steps[i] = ns
                fit[i] = f
                reg[i] = g


def walk(C: np.ndarray, G: np.ndarray, alpha: float, positive: bool, max_steps: int,
         tol: float, cap: int, threads: int, lar: bool = False, n_max: int = 0):
    """Run :func:`walk_rows` on float64 ``C`` (n, k) and ``G`` (k, k) with ``threads``
    numba threads; returns ``Z, status, steps, fit_change, penalty``. ``lar=True``: plain
    LARS stopped at ``n_max`` active atoms (see :func:`_walk`)."""
    n, k = C.shape
    Z = np.zeros((n, k))
    status = np.zeros(n, np.int64)
    steps = np.zeros(n, np.int64)
    fit = np.zeros(n)
    reg = np.zeros(n)
    if n == 0:
        return Z, status, steps, fit, reg
    threads = max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS))
    with _LOCK:
        prev = numba.get_num_threads()
        numba.set_num_threads(threads)
        try:
            walk_rows(np.ascontiguousarray(C), np.ascontiguousarray(G), float(alpha),
                      bool(positive), int(max_steps), float(tol), int(cap),
                      min(n, 8 * threads), Z, status, steps, fit, reg, bool(lar),
                      int(n_max))
        finally:
            numba.set_num_threads(prev)
    return Z, status, steps, fit, reg
