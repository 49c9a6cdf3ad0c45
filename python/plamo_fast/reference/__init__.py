"""Slow, readable reference versions of the native kernels: the executable specification that
parity tests hold the Rust code to. Not for production use."""
