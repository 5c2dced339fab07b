import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from probkit.flows import Affine, AffineCoupling, Chain, Permute, Planar, Scan


def test_chain_composes(x64, check_bijection, randomize_params):
    k = jax.random.split(jax.random.PRNGKey(0), 4)
    a = randomize_params(Planar(k[0], 3), k[1], 1.0)
    b = randomize_params(AffineCoupling(k[2], 3, width=8), k[3])
    chain = Chain([a, Permute([2, 1, 0]), b])
    x = jnp.array([0.3, -1.0, 2.0])
    y_ref, ld_ref = x, 0.0
    for bij in (a, Permute([2, 1, 0]), b):
        y_ref, ld = bij.transform_and_log_det(y_ref)
        ld_ref += ld
    y, ld = chain.transform_and_log_det(x)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12)
    np.testing.assert_allclose(ld, ld_ref, rtol=1e-12)
    check_bijection(chain, jax.random.normal(k[0], (3, 3)))


def test_scan_matches_unrolled_chain(x64, check_bijection, randomize_params):
    key = jax.random.PRNGKey(1)
    stack = Scan.from_fn(key, 3, lambda k: Chain([AffineCoupling(k, 4, width=8), Permute([3, 2, 1, 0])]))
    stack = randomize_params(stack, jax.random.PRNGKey(2))
    unrolled = Chain([jax.tree.map(lambda v: v[i] if eqx.is_array(v) else v, stack.layers) for i in range(3)])
    x = jax.random.normal(jax.random.PRNGKey(3), (4,))
    (y, ld), (y2, ld2) = eqx.filter_jit(lambda s, u: (s.transform_and_log_det(x), u.transform_and_log_det(x)))(stack, unrolled)
    np.testing.assert_allclose(y, y2, rtol=1e-12)
    np.testing.assert_allclose(ld, ld2, rtol=1e-12)
    check_bijection(stack, jax.random.normal(key, (3, 4)))


def test_scan_compile_size_independent_of_depth():
    def n_ops(n, unroll=4):
        s = Scan.from_fn(jax.random.PRNGKey(0), n, lambda k: Planar(k, 2), unroll=unroll)
        return len(eqx.filter_jit(s.transform_and_log_det).lower(jnp.zeros(2)).as_text().splitlines())

    # a loop body of `unroll` layers: the program stops growing with the depth
    assert n_ops(8) == n_ops(64)
    assert n_ops(8, unroll=1) == n_ops(64, unroll=1) < n_ops(8)


def test_scan_unroll_gives_same_result(x64):
    make = lambda k: Chain([AffineCoupling(k, 4, width=8), Permute([3, 2, 1, 0])])  # noqa: E731
    x = jax.random.normal(jax.random.PRNGKey(3), (4,))
    outs = [Scan.from_fn(jax.random.PRNGKey(1), 6, make, unroll=u).transform_and_log_det(x) for u in (1, 4, 6)]
    for y, ld in outs[1:]:
        np.testing.assert_allclose(y, outs[0][0], rtol=1e-12)
        np.testing.assert_allclose(ld, outs[0][1], rtol=1e-12)


def test_bad_chain():
    with pytest.raises(TypeError, match="bijections"):
        Chain([])
    with pytest.raises(ValueError, match="n_layers"):
        Scan.from_fn(jax.random.PRNGKey(0), 0, lambda k: Planar(k, 2))
    with pytest.raises(ValueError, match="unroll"):
        Scan.from_fn(jax.random.PRNGKey(0), 2, lambda k: Planar(k, 2), unroll=0)


def test_chains_with_permute_refuse_inputs_of_another_length():
    """Issue 27: a Chain or Scan whose first layer is a Permute of D=3 returned garbage of
    shape (3,) for a 2-vector (clamped gather); now the Permute names the expected shape."""
    chain = Chain([Permute([2, 0, 1]), Affine(jnp.zeros(3))])
    stack = Scan.from_fn(jax.random.PRNGKey(0), 2, lambda k: Chain([Permute([1, 2, 0]), Planar(k, 3)]))
    for bij in (chain, stack):
        for fn in (bij.transform, bij.inverse, eqx.filter_jit(bij.transform_and_log_det)):
            with pytest.raises(ValueError, match=r"must be one vector of shape \(3,\).*got shape \(2,\)"):
                fn(jnp.ones(2))
