"""The C backend: generated C with OpenMP, compiled by gcc."""
