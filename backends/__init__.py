"""Backends shipped with theanine; each registers through the `theanine` entry points."""
