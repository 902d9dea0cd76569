//! `$all` filters: which events a filtered read or subscription passes, and how often a filtered
//! subscription reports checkpoints.
//!
//! Clients send .NET regular expressions (Python builds exclusions with negative look-ahead), so
//! regexes are compiled with `fancy-regex`, which supports look-around and back-references.

use fancy_regex::Regex;
use tonic::Status;

use crate::proto::streams::read_req::options::FilterOptions;
use crate::proto::streams::read_req::options::filter_options::{Expression, Filter, Window};
use crate::store::RecordedEvent;

/// The window when the client asks for `count` instead of `max(n)`: the real server's default
/// read batch size.
const DEFAULT_WINDOW: u32 = 32;

/// A compiled filter.
#[derive(Debug)]
pub struct EventFilter {
    /// Which property of the event is matched.
    target: Target,
    /// How it is matched.
    matcher: Matcher,
    /// Number of considered events (matching or not) between two checkpoints.
    pub checkpoint_interval: u64,
}

#[derive(Debug, Clone, Copy)]
enum Target {
    StreamName,
    EventType,
}

#[derive(Debug)]
enum Matcher {
    /// Unanchored search, as .NET `Regex.IsMatch`.
    Regex(Regex),
    /// Starts with any of these (no prefixes: matches nothing).
    Prefixes(Vec<String>),
}

impl EventFilter {
    /// Compiles the filter of a read request.
    pub fn from_options(options: &FilterOptions) -> Result<EventFilter, Status> {
        let (target, expression) = match &options.filter {
            Some(Filter::StreamIdentifier(expression)) => (Target::StreamName, expression),
            Some(Filter::EventType(expression)) => (Target::EventType, expression),
            None => return Err(Status::invalid_argument("'filter' is a required argument")),
        };
        let window = match options.window {
            Some(Window::Max(max)) => max,
            Some(Window::Count(())) => DEFAULT_WINDOW,
            None => return Err(Status::invalid_argument("'window' is a required argument")),
        };
        if options.checkpoint_interval_multiplier == 0 {
            // The real server throws ArgumentOutOfRangeException from the subscription
            // constructor, which gRPC reports as an unhandled exception.
            return Err(Status::unknown(
                "Exception was thrown by handler. checkpointIntervalMultiplier must not be zero",
            ));
        }
        let matcher = Matcher::compile(expression)?;
        let checkpoint_interval =
            u64::from(window) * u64::from(options.checkpoint_interval_multiplier);
        Ok(EventFilter {
            target,
            matcher,
            checkpoint_interval: checkpoint_interval.max(1),
        })
    }

    /// Whether `event` passes. The real server's default rule comes first: a few internal
    /// streams are never delivered to filtered readers.
    pub fn matches(&self, event: &RecordedEvent) -> bool {
        let stream = &*event.stream;
        if stream == "$epoch-information"
            || (stream.starts_with("$persistentsubscription-")
                && (stream.ends_with("-checkpoint") || stream.ends_with("-parked")))
        {
            return false;
        }
        let subject = match self.target {
            Target::StreamName => stream,
            Target::EventType => event.event_type.as_str(),
        };
        self.matcher.matches(subject)
    }
}

impl Matcher {
    /// A non-empty regex wins over prefixes, as in the real server.
    fn compile(expression: &Expression) -> Result<Matcher, Status> {
        if expression.regex.is_empty() {
            return Ok(Matcher::Prefixes(expression.prefix.clone()));
        }
        Regex::new(&expression.regex)
            .map(Matcher::Regex)
            .map_err(|error| {
                // .NET throws ArgumentException from `new Regex(..)`, which gRPC reports as an
                // unhandled exception (status Unknown).
                Status::unknown(format!(
                    "Exception was thrown by handler. Invalid pattern '{}': {error}",
                    expression.regex
                ))
            })
    }

    fn matches(&self, subject: &str) -> bool {
        match self {
            // A regex that exceeds fancy-regex's backtracking limit on this input counts as
            // no match rather than failing the subscription.
            Matcher::Regex(regex) => regex.is_match(subject).unwrap_or(false),
            Matcher::Prefixes(prefixes) => prefixes
                .iter()
                .any(|prefix| subject.starts_with(prefix.as_str())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(regex: &str) -> Matcher {
        Matcher::compile(&Expression {
            regex: regex.into(),
            prefix: vec![],
        })
        .unwrap()
    }

    #[test]
    fn python_exclusion_regex_with_lookahead_compiles_and_excludes_system_streams() {
        let exclude = matcher(r"^(?!(\$.+$|PersistentConfig\d+$|Result$))");
        assert!(exclude.matches("order-1"));
        assert!(!exclude.matches("$metadata"));
        assert!(!exclude.matches("PersistentConfig1"));
    }

    #[test]
    fn regex_is_an_unanchored_search() {
        assert!(matcher("der-").matches("order-1"));
        assert!(!matcher("^der-").matches("order-1"));
    }

    #[test]
    fn prefixes_match_any() {
        let prefixes = Matcher::Prefixes(vec!["a-".into(), "b-".into()]);
        assert!(prefixes.matches("b-1"));
        assert!(!prefixes.matches("c-1"));
    }
}
