//! `$all` filters: which events a filtered read or subscription passes, and how often a filtered
//! subscription reports checkpoints.
//!
//! Clients send .NET regular expressions (Python builds exclusions with negative look-ahead), so
//! regexes are compiled with `fancy-regex`, which supports look-around and back-references.
//! Backtracking makes some regexes take exponential time on some inputs, so a regex is bounded
//! in length, compiled size and backtracking steps per event; a regex that hits its step limit
//! fails the read or subscription rather than silently skip the event.

use fancy_regex::{CompileError, Regex, RegexBuilder};
use tonic::Status;

use crate::limits::{
    FILTER_REGEX_BACKTRACK_LIMIT, FILTER_REGEX_COMPILED_SIZE, MAX_FILTER_REGEX_BYTES,
};
use crate::proto::streams::read_req::options::FilterOptions;
use crate::proto::streams::read_req::options::filter_options::{Expression, Filter, Window};
use crate::store::EventHeader;

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
    /// streams are never delivered to filtered readers. Fails with `InvalidArgument` when the
    /// regex cannot decide within its backtracking limit: skipping the event would hide it from
    /// the client without a word.
    pub fn matches(&self, event: &EventHeader) -> Result<bool, Status> {
        let stream = &*event.stream;
        if stream == "$epoch-information"
            || (stream.starts_with("$persistentsubscription-")
                && (stream.ends_with("-checkpoint") || stream.ends_with("-parked")))
        {
            return Ok(false);
        }
        let subject = match self.target {
            Target::StreamName => stream,
            Target::EventType => &*event.event_type,
        };
        self.matcher.matches(subject).map_err(|(regex, error)| {
            Status::invalid_argument(format!(
                "The filter regex '{regex}' failed on the {} of the event at position {}: \
                 {error}. Simplify the regex (nested or overlapping repetitions backtrack \
                 exponentially) or filter by prefixes",
                self.target.describe(),
                event.position,
            ))
        })
    }
}

/// Whether `event` passes `filter`; without a filter, every event does.
pub fn passes(filter: Option<&EventFilter>, event: &EventHeader) -> Result<bool, Status> {
    filter.map_or(Ok(true), |filter| filter.matches(event))
}

impl Target {
    fn describe(self) -> &'static str {
        match self {
            Target::StreamName => "stream name",
            Target::EventType => "event type",
        }
    }
}

impl Matcher {
    /// A non-empty regex wins over prefixes, as in the real server.
    fn compile(expression: &Expression) -> Result<Matcher, Status> {
        let pattern = &expression.regex;
        if pattern.is_empty() {
            return Ok(Matcher::Prefixes(expression.prefix.clone()));
        }
        if pattern.len() > MAX_FILTER_REGEX_BYTES {
            return Err(Status::invalid_argument(format!(
                "The filter regex is {} bytes long, over devstore's limit of \
                 {MAX_FILTER_REGEX_BYTES} bytes; shorten it or filter by prefixes",
                pattern.len()
            )));
        }
        let compiled = RegexBuilder::new(pattern)
            .backtrack_limit(FILTER_REGEX_BACKTRACK_LIMIT)
            .delegate_size_limit(FILTER_REGEX_COMPILED_SIZE)
            .delegate_dfa_size_limit(FILTER_REGEX_COMPILED_SIZE)
            .build();
        match compiled {
            Ok(regex) => Ok(Matcher::Regex(regex)),
            Err(fancy_regex::Error::CompileError(CompileError::InnerError(error)))
                if error.size_limit().is_some() =>
            {
                Err(Status::invalid_argument(format!(
                    "The filter regex '{pattern}' compiles to more than devstore's limit of \
                     {FILTER_REGEX_COMPILED_SIZE} bytes; use fewer or smaller repetitions \
                     (counted repeats of Unicode classes like \\w{{100}} grow large) or \
                     filter by prefixes"
                )))
            }
            // .NET throws ArgumentException from `new Regex(..)`, which gRPC reports as an
            // unhandled exception (status Unknown).
            Err(error) => Err(Status::unknown(format!(
                "Exception was thrown by handler. Invalid pattern '{pattern}': {error}"
            ))),
        }
    }

    /// Whether `subject` passes; a regex that cannot decide gives back itself and the reason.
    fn matches(&self, subject: &str) -> Result<bool, (&Regex, fancy_regex::Error)> {
        match self {
            Matcher::Regex(regex) => regex.is_match(subject).map_err(|error| (regex, error)),
            Matcher::Prefixes(prefixes) => Ok(prefixes
                .iter()
                .any(|prefix| subject.starts_with(prefix.as_str()))),
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
        assert!(exclude.matches("order-1").unwrap());
        assert!(!exclude.matches("$metadata").unwrap());
        assert!(!exclude.matches("PersistentConfig1").unwrap());
    }

    #[test]
    fn regex_is_an_unanchored_search() {
        assert!(matcher("der-").matches("order-1").unwrap());
        assert!(!matcher("^der-").matches("order-1").unwrap());
    }

    #[test]
    fn prefixes_match_any() {
        let prefixes = Matcher::Prefixes(vec!["a-".into(), "b-".into()]);
        assert!(prefixes.matches("b-1").unwrap());
        assert!(!prefixes.matches("c-1").unwrap());
    }

    fn compile_error(regex: &str) -> Status {
        Matcher::compile(&Expression {
            regex: regex.into(),
            prefix: vec![],
        })
        .expect_err("refused")
    }

    fn event_in(stream: &str) -> EventHeader {
        EventHeader {
            position: 7,
            stream: stream.into(),
            event_type: "E".into(),
        }
    }

    #[test]
    fn a_regex_over_its_backtracking_limit_fails_naming_itself_and_the_event() {
        let pattern = "(a|b|ab)*(?=c)";
        let filter = EventFilter {
            target: Target::StreamName,
            matcher: matcher(pattern),
            checkpoint_interval: 1,
        };
        let error = filter
            .matches(&event_in(&"ab".repeat(28)))
            .expect_err("exponential backtracking");
        assert_eq!(error.code(), tonic::Code::InvalidArgument);
        assert!(error.message().contains(pattern), "{}", error.message());
        assert!(
            error.message().contains("position 7"),
            "{}",
            error.message()
        );
        assert!(!filter.matches(&event_in("ab")).expect("short enough"));
    }

    #[test]
    fn regex_length_is_bounded() {
        let error = compile_error(&"x".repeat(MAX_FILTER_REGEX_BYTES + 1));
        assert_eq!(error.code(), tonic::Code::InvalidArgument);
        assert!(
            error
                .message()
                .contains(&format!("limit of {MAX_FILTER_REGEX_BYTES} bytes")),
            "{}",
            error.message()
        );
        matcher(&"x".repeat(MAX_FILTER_REGEX_BYTES));
    }

    #[test]
    fn compiled_regex_size_is_bounded() {
        // Each `\w` is a large Unicode class, so its counted repeats compile to megabytes.
        let error = compile_error(r"\w{100}");
        assert_eq!(error.code(), tonic::Code::InvalidArgument);
        assert!(
            error.message().contains("compiles to more than"),
            "{}",
            error.message()
        );
        matcher(r"\w{20}");
    }
}
