//! Filled in by the provider work.
