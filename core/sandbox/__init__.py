"""Theano's `theano.sandbox` names that ported programs import: `rng_mrg.MRG_RandomStreams`."""
