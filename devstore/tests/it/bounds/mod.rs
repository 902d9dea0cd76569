//! What a hostile client can no longer do: each test pushes one bound until it is hit, checks
//! the error the client gets, then shows that the server still serves.

mod batch_pending;
mod filter_regex;
mod persistent;
mod stream_names;
