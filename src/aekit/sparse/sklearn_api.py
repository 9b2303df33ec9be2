"""scikit-learn-compatible sparse coding functions: NumPy in, NumPy out, (k, d) dictionaries.

Drop-in replacements for ``sklearn.decomposition.sparse_encode``, ``dict_learning`` and
``dict_learning_online``, with scikit-learn's argument order, defaults and return values:
the dictionary is ``(n_components, n_features)`` (atoms as rows, ``X ≈ code @ dictionary``)
and the per-sample problem of the ℓ1 algorithms is ``min_z ½‖x − dictionaryᵀ z‖² + α‖z‖₁``.
``"lasso_lars"`` runs on aekit's exact homotopy walk, ``"lars"`` on the same compiled walk
without drops; see :mod:`aekit.sparse.sklearn_coding` for :func:`sparse_encode` and
:mod:`aekit.sparse.estimators` for the learners these functions fit.

The torch-native functions of the same names (``(d, k)`` dictionaries, tensors in and
``(codes, info)`` out) stay in :mod:`aekit.sparse.encode` and :mod:`aekit.sparse.dictionary`
and are what ``aekit.sparse.sparse_encode`` etc. refer to.
"""

from __future__ import annotations

from .estimators import DictionaryLearning, MiniBatchDictionaryLearning
from .sklearn_coding import (
    AEKIT_ALGORITHMS,
    SKLEARN_ALGORITHMS,
    sparse_encode,
    update_dict,
)

__all__ = [
    "AEKIT_ALGORITHMS",
    "SKLEARN_ALGORITHMS",
    "dict_learning",
    "dict_learning_online",
    "sparse_encode",
    "update_dict",
]


def dict_learning(X, n_components, *, alpha, max_iter=100, tol=1e-8, method="lars",
                  n_jobs=None, dict_init=None, code_init=None, callback=None, verbose=False,
                  random_state=None, return_n_iter=False, positive_dict=False,
                  positive_code=False, method_max_iter=1000, dict_update="bcd"):
    """Batch dictionary learning, scikit-learn's ``dict_learning`` (NumPy, (k, d) atoms).

    Minimises ``½‖X − U V‖²_F + α‖U‖₁,₁`` over codes U (n, k) and atoms V (k, d) with
    ``‖V_j‖ ≤ 1``, alternating exact code solves and dictionary steps; see
    :class:`aekit.sparse.estimators.DictionaryLearning` (this function fits one and returns
    its results, as scikit-learn's does).

    Parameters
    ----------
    X : array-like (n_samples, n_features)
    n_components : int
    alpha : float
    max_iter : int, default=100
    tol : float, default=1e-8
    method : str, default="lars"
        Code solver while fitting: ``"lars"`` (the Lasso by homotopy), ``"cd"`` or one of
        aekit's (``"fista"``, ``"ista"``, ``"homotopy"``, ``"feature_sign"``).
    n_jobs, dict_init, code_init, callback, verbose, random_state, positive_dict,
    positive_code, method_max_iter : as in scikit-learn.
    return_n_iter : bool, default=False
    dict_update : {"bcd", "lagrange_dual"}, default="bcd"
        aekit extension: the dictionary step.

    Returns
    -------
    code : ndarray (n_samples, n_components)
    dictionary : ndarray (n_components, n_features)
    errors : list of float
        ``½‖X − U V‖²_F + α‖U‖₁,₁`` after every iteration.
    n_iter : int
        Only when ``return_n_iter``.

    References
    ----------
    Mairal et al., JMLR 11, 2010; scikit-learn ``sklearn.decomposition.dict_learning``.
    """
    est = DictionaryLearning(
        n_components=n_components, alpha=alpha, max_iter=max_iter, tol=tol,
        fit_algorithm=method, n_jobs=n_jobs, dict_init=dict_init, callback=callback,
        code_init=code_init, verbose=verbose, random_state=random_state,
        positive_code=positive_code, positive_dict=positive_dict,
        transform_max_iter=method_max_iter, dict_update=dict_update,
    ).set_output(transform="default")
    code = est.fit_transform(X)
    if return_n_iter:
        return code, est.components_, est.error_, est.n_iter_
    return code, est.components_, est.error_


def dict_learning_online(X, n_components=2, *, alpha=1, max_iter=100, return_code=True,
                         dict_init=None, callback=None, batch_size=256, verbose=False,
                         shuffle=True, n_jobs=None, method="lars", random_state=None,
                         positive_dict=False, positive_code=False, method_max_iter=1000,
                         tol=1e-3, max_no_improvement=10, dict_update="bcd"):
    """Online dictionary learning, scikit-learn's ``dict_learning_online`` (NumPy, (k, d)).

    Fits :class:`aekit.sparse.estimators.MiniBatchDictionaryLearning` with these settings
    (``transform_algorithm = "lasso_" + method`` for the returned codes, as scikit-learn).

    Parameters
    ----------
    X : array-like (n_samples, n_features)
    n_components : int, default=2
    alpha : float, default=1
    max_iter : int, default=100
        Epochs.
    return_code : bool, default=True
    dict_init, callback, batch_size, verbose, shuffle, n_jobs, random_state, positive_dict,
    positive_code, method_max_iter, tol, max_no_improvement : as in scikit-learn.
    method : str, default="lars"
    dict_update : {"bcd", "lagrange_dual"}, default="bcd"

    Returns
    -------
    code : ndarray (n_samples, n_components)
        Only when ``return_code``.
    dictionary : ndarray (n_components, n_features)

    References
    ----------
    Mairal, Bach, Ponce & Sapiro, ICML 2009; scikit-learn
    ``sklearn.decomposition.dict_learning_online``.
    """
    transform_algorithm = "lasso_" + method if method in ("lars", "cd") else method
    est = MiniBatchDictionaryLearning(
        n_components=n_components, alpha=alpha, max_iter=max_iter, n_jobs=n_jobs,
        fit_algorithm=method, batch_size=batch_size, shuffle=shuffle, dict_init=dict_init,
        random_state=random_state, transform_algorithm=transform_algorithm,
        transform_alpha=alpha, positive_code=positive_code, positive_dict=positive_dict,
        transform_max_iter=method_max_iter, verbose=verbose, callback=callback, tol=tol,
        max_no_improvement=max_no_improvement, dict_update=dict_update,
    ).fit(X)
    if not return_code:
        return est.components_
    return est.transform(X), est.components_
