//! `--log journald`: events as structured journal entries.
//!
//! `tracing-journald` writes each entry: the event's message as `MESSAGE`, its
//! fields as `GUISE_*`, its level as `PRIORITY`. What it cannot do alone is give
//! each kind of event its own `MESSAGE_ID` (its extra fields are the same for
//! every entry), so this layer holds one journald layer per kind, each with its
//! id, and hands every event to the one of its `event` field.

use std::collections::HashMap;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_journald::{Priority, PriorityMappings};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The `MESSAGE_ID`s of the `guise` command's own events (target
/// `guise::service`): a server that starts serving, and one that stopped.
pub const SERVICE_MESSAGE_IDS: &[(&str, &str)] = &[
    ("serving", "092e2d7596f34d1aa108e95b85654308"),
    ("stopped", "8026fed4b95a4310b0c95f9efbe858e2"),
];

/// The `MESSAGE_ID` of the event named `event`: the library's trail or the
/// command's own.
pub fn message_id(event: &str) -> Option<&'static str> {
    guise::audit::message_id(event).or_else(|| {
        SERVICE_MESSAGE_IDS
            .iter()
            .find(|(name, _)| *name == event)
            .map(|(_, id)| *id)
    })
}

/// Journal entries with a `MESSAGE_ID` for each kind of event.
pub struct Journal {
    /// For events of no known kind, and for spans.
    plain: tracing_journald::Layer,
    /// By `MESSAGE_ID`.
    by_id: HashMap<&'static str, tracing_journald::Layer>,
}

impl Journal {
    /// Connects to the journal.
    ///
    /// # Errors
    /// There is no journal to write to.
    pub fn new() -> std::io::Result<Journal> {
        // Served requests are Informational (6), not Notice (5): a denial or a
        // refused logon, at warn, is then the Warning (4) that stands out.
        let layer = || -> std::io::Result<tracing_journald::Layer> {
            Ok(tracing_journald::layer()?
                .with_syslog_identifier("guise".to_owned())
                .with_field_prefix(Some("GUISE".to_owned()))
                .with_priority_mappings(PriorityMappings {
                    error: Priority::Error,
                    warn: Priority::Warning,
                    info: Priority::Informational,
                    debug: Priority::Debug,
                    trace: Priority::Debug,
                }))
        };
        let mut by_id = HashMap::new();
        for (_, id) in guise::audit::MESSAGE_IDS.iter().chain(SERVICE_MESSAGE_IDS) {
            by_id.insert(*id, layer()?.with_custom_fields([("MESSAGE_ID", id)]));
        }
        Ok(Journal {
            plain: layer()?,
            by_id,
        })
    }
}

/// The value of an event's `event` field.
#[derive(Default)]
struct EventName(Option<String>);

impl Visit for EventName {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "event" {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

impl<S> Layer<S> for Journal
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        self.plain.on_new_span(attrs, id, ctx);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        self.plain.on_record(id, values, ctx);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut name = EventName::default();
        event.record(&mut name);
        let layer = name
            .0
            .as_deref()
            .and_then(message_id)
            .and_then(|id| self.by_id.get(id))
            .unwrap_or(&self.plain);
        layer.on_event(event, ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_event_has_its_own_128_bit_message_id() {
        let all: Vec<_> = guise::audit::MESSAGE_IDS
            .iter()
            .chain(SERVICE_MESSAGE_IDS)
            .collect();
        let mut ids: Vec<_> = all.iter().map(|(_, id)| *id).collect();
        for id in &ids {
            assert!(
                id.len() == 32
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
                "{id} is not 32 lower-case hex digits"
            );
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), all.len(), "a MESSAGE_ID used twice");
        assert_eq!(
            message_id("request"),
            Some("fcede7215428441aacbbfb08d4f48929")
        );
        assert_eq!(
            message_id("serving"),
            Some("092e2d7596f34d1aa108e95b85654308")
        );
        assert_eq!(message_id("no-such-event"), None);
    }
}
