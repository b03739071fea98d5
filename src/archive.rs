//! Reading conda archives safely (vendored packages are untrusted input).
