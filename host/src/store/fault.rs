//! Faults of the database rather than of the event: a lock held elsewhere, an I/O error, a full
//! disk or a database at its size cap.
//!
//! None of them says anything about the event being projected, so none may dead-letter it: the
//! projection retries the batch and, when the fault persists, stops with the fault as its
//! reason. Plugins see these errors as `other` like any SQLite error; the store remembers that
//! one happened (see `Db::take_fault`) so a plugin that gives up on the event, or ignores the
//! error and carries on, cannot turn the fault into a dead letter or a missing write.

use rusqlite::ErrorCode;

/// What kind of fault `error` is, said for an operator, if it is one.
pub fn of(error: &rusqlite::Error) -> Option<String> {
    let rusqlite::Error::SqliteFailure(failure, message) = error else {
        return None;
    };
    let what = match failure.code {
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
            "the database is locked by another connection"
        }
        ErrorCode::SystemIoFailure => "an I/O error",
        ErrorCode::DiskFull => "the disk or the database is full",
        ErrorCode::CannotOpen => "a file of the database could not be opened",
        ErrorCode::FileLockingProtocolFailed => "the file locking protocol failed",
        ErrorCode::ReadOnly => "the database cannot be written (its file or folder is read-only)",
        ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => {
            "the database file is damaged (restore it, or move it away to rebuild the projection)"
        }
        _ => return None,
    };
    let detail = message.clone().unwrap_or_else(|| failure.to_string());
    Some(format!("{what} ({detail})"))
}

/// The fault somewhere in `error`'s chain of causes, if any.
pub fn transient(error: &anyhow::Error) -> Option<String> {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<rusqlite::Error>())
        .find_map(of)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_told_from_statement_errors() {
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            Some("database is locked".into()),
        );
        let wrapped = anyhow::Error::from(busy).context("committing a batch");
        assert!(
            transient(&wrapped)
                .unwrap()
                .contains("locked by another connection")
        );
        let constraint = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT),
            None,
        );
        assert_eq!(transient(&anyhow::Error::from(constraint)), None);
        assert_eq!(transient(&anyhow::format_err!("not SQLite")), None);
    }
}
