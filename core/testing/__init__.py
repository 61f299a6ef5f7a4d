"""The conformance kit: strategies and a suite that holds any backend to the reference."""
