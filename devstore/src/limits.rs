//! Every bound devstore puts on what one client can make it hold or do.
//!
//! They live together so that `docs/devstore.md` and the tests have one place to point at, and
//! so that a change to one is seen next to the others. Each bound is there because a client
//! (hostile or just buggy) could otherwise make the server grow memory or burn a worker thread
//! without limit; the values are generous for development use.

use std::time::Duration;

/// Largest gRPC request message decoded. Above [`MAX_APPEND_SIZE`] so that an oversized event
/// gets the real "Maximum Append Size" error rather than a transport error.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;

/// The real server's default maximum size of one append. What counts: event payloads, metadata
/// and types, and the stream name once, which clients could otherwise send for free.
pub const MAX_APPEND_SIZE: usize = 1024 * 1024;

/// Longest stream name accepted, in UTF-8 bytes. A `$$` metadata stream may have two more.
pub const MAX_STREAM_NAME_BYTES: usize = 4096;

/// Unfinished appends (correlation ids whose final chunk has not arrived) one `BatchAppend`
/// call may hold.
pub const MAX_PENDING_APPENDS: usize = 64;

/// Bytes one `BatchAppend` call may hold in unfinished appends: their append size plus the
/// in-memory cost of each event, so that many tiny events count for what they really hold.
pub const MAX_PENDING_APPEND_BYTES: usize = 16 * 1024 * 1024;

/// Events a `$all` read or subscription considers before it lets other tasks on its worker
/// thread run. Matters when a filter matches nothing: then nothing is sent, nothing waits on
/// the client, and the scan would otherwise hold the thread until the end of the log.
pub const EVENTS_BETWEEN_YIELDS: usize = 64;

/// Longest filter regex accepted, in bytes. Bounds the backtracking program, which has no
/// size limit of its own.
pub const MAX_FILTER_REGEX_BYTES: usize = 4096;

/// Approximate size limit of each compiled part of a filter regex and of its lazy DFA cache.
/// Unicode classes are large: `\w{80}` fits, `\w{100}` does not.
pub const FILTER_REGEX_COMPILED_SIZE: usize = 4 * 1024 * 1024;

/// Backtracking steps a filter regex may take on one event before the read or subscription
/// fails with `InvalidArgument` (fancy-regex's default, made explicit).
pub const FILTER_REGEX_BACKTRACK_LIMIT: usize = 1_000_000;

/// How long a client has to complete the TLS handshake after connecting.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Messages one persistent-subscription consumer may hold unacked (its buffer size is cut to
/// this): each is an event kept in memory until acked or timed out. The clients ask for 10
/// (Rust) and 150 (Python).
pub const MAX_PERSISTENT_BUFFER: u32 = 4096;

/// Consumers of one persistent subscription group at once, whatever its
/// `max_subscriber_count` (0, the clients' default, means no limit on the real server).
pub const MAX_CONSUMERS_PER_GROUP: usize = 64;

/// Bytes of a nack's reason kept: it is copied into the parked stream with every message it
/// parks.
pub const MAX_NACK_REASON_BYTES: usize = 1024;

/// Persistent subscription groups on one server: each is a task, and every create, update and
/// delete writes the whole list to the log (so the log grows with the square of this).
pub const MAX_PERSISTENT_GROUPS: usize = 256;
