import numpy as np

from pipeline.seeding import derive_seed, rng_for


def test_derive_seed_is_stable_and_key_sensitive():
    # Fixed value: guards against accidental changes of the derivation (which would
    # silently change every synthetic recording and every training run).
    assert derive_seed(1, "synth", "fish01") == 1654260228341147143
    assert derive_seed(1, "synth", "fish01") != derive_seed(1, "synth", "fish02")
    assert derive_seed(1, "synth", "fish01") != derive_seed(2, "synth", "fish01")
    assert derive_seed(1, "a", "bc") != derive_seed(1, "ab", "c")
    assert 0 <= derive_seed(123, "x") < 2**63


def test_rng_for_reproduces_streams():
    a = rng_for(7, "motion").normal(size=5)
    b = rng_for(7, "motion").normal(size=5)
    c = rng_for(7, "noise").normal(size=5)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
