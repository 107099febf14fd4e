//! Shared support for the system tests under `tests/`.
