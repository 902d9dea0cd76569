//! Placeholder while the host is written.
