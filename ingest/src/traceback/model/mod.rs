//! The typed form of a Go crash text.
//!
//! Every type here is plain data with serde support, so the CLI can print a
//! parsed traceback as JSON and tests can compare against it. Addresses,
//! offsets and register values are `u64` in Rust and `0x` hex strings in
//! JSON, because JSON numbers lose precision above 2^53 and the runtime
//! prints them in hex. Text positions (`text_line`) are 1-based line numbers
//! of the input as the caller passed it. `stack` holds the goroutines and
//! their frames, `report` the headline, registers and parse report.

mod report;
mod stack;

use serde::{Deserialize, Serialize};

pub use report::{
    Arch, Fatal, FatalForm, Message, Panic, PrefixKind, Register, Registers, SignalForm,
    SignalInfo, ThreadSection, Transport, Truncation, Warning, WarningKind,
};
pub use stack::{
    Ancestor, CreatedBy, Elision, Frame, Goroutine, GoroutineId, GoroutineStatus, Label,
    RuntimeIds, SystemStack, SystemStackOrigin,
};

/// A parsed crash text: the headline, the goroutine blocks, the register
/// dumps and what could not be understood.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traceback {
    /// Diagnostics printed before or between the stacks, such as
    /// `runtime: goroutine stack exceeds 1000000000-byte limit`,
    /// `unexpected fault address 0x...` or a second, different `fatal error:`.
    pub messages: Vec<Message>,
    /// The panic chain, oldest first, as the runtime prints it.
    pub panics: Vec<Panic>,
    /// The `fatal error:` (or `fatal:`) line, if any.
    pub fatal: Option<Fatal>,
    /// The signal of the crashing thread: either the `[signal ...]` line of a
    /// panic or throw, or the `SIGSEGV: ...` and `PC=` lines of a fatal
    /// signal.
    pub signal: Option<SignalInfo>,
    /// Frames printed without a goroutine header: the `runtime stack:`
    /// sections (the system stack of the crashing thread) and frames found
    /// before any header.
    pub system_stacks: Vec<SystemStack>,
    /// Every goroutine block in printed order, those of the per-thread
    /// sections included (see [`Goroutine::thread`]).
    pub goroutines: Vec<Goroutine>,
    /// The register dump of the crashing thread.
    pub registers: Option<Registers>,
    /// The sections each further thread prints after a `-----` line when a
    /// fatal signal crashes a program run with `GOTRACEBACK=crash`.
    pub threads: Vec<ThreadSection>,
    /// Lines that were not understood, or that broke the expected order.
    pub warnings: Vec<Warning>,
    /// What the parser dropped to stay within its limits.
    pub truncated: Truncation,
    /// How the text was carried: line ends, prefixes that were stripped.
    pub transport: Transport,
}

impl Traceback {
    /// Returns the goroutines of the main dump, leaving out the copies that
    /// the per-thread sections print again.
    pub fn main_goroutines(&self) -> impl Iterator<Item = &Goroutine> {
        self.goroutines.iter().filter(|g| g.thread.is_none())
    }

    /// Returns the first goroutine with this id that has frames, or else the
    /// first with this id. A goroutine running on another thread is printed
    /// without a stack in the main dump and with its stack in that thread's
    /// section. Every thread prints its own goroutine 0, so for id 0 this
    /// returns the first thread's.
    pub fn goroutine(&self, id: GoroutineId) -> Option<&Goroutine> {
        let mut same_id = self.goroutines.iter().filter(|g| g.id == id);
        let first = same_id.next()?;
        if !first.frames.is_empty() {
            return Some(first);
        }
        same_id.find(|g| !g.frames.is_empty()).or(Some(first))
    }

    /// Reports whether the text held any crash structure at all.
    pub fn is_empty(&self) -> bool {
        self.panics.is_empty()
            && self.fatal.is_none()
            && self.signal.is_none()
            && self.goroutines.is_empty()
            && self.system_stacks.is_empty()
            && self.registers.is_none()
    }
}

/// Serde helpers writing `u64` as `0x` hex strings.
pub(crate) mod hex {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{value:#x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse(&text).ok_or_else(|| D::Error::custom(format!("invalid hex value {text:?}")))
    }

    pub(crate) fn parse(text: &str) -> Option<u64> {
        let digits = text.strip_prefix("0x")?;
        if digits.is_empty() {
            return None;
        }
        u64::from_str_radix(digits, 16).ok()
    }
}

/// Serde helpers writing `Option<u64>` as an optional `0x` hex string.
pub(crate) mod hex_option {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<u64>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => super::hex::serialize(value, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<u64>, D::Error> {
        let Some(text) = Option::<String>::deserialize(deserializer)? else {
            return Ok(None);
        };
        super::hex::parse(&text)
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("invalid hex value {text:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_rejects_bad_text() {
        assert_eq!(hex::parse("0x"), None);
        assert_eq!(hex::parse("12"), None);
        assert_eq!(hex::parse("0xfffffffffffffffff"), None);
        assert_eq!(hex::parse("0xffffffffffffffff"), Some(u64::MAX));
    }

    #[test]
    fn goroutine_lookup_prefers_frames() {
        let mut traceback = Traceback::default();
        let mut unavailable = Goroutine::new(GoroutineId(19), 10);
        unavailable.stack_unavailable = true;
        let mut relayed = Goroutine::new(GoroutineId(19), 90);
        relayed.thread = Some(0);
        relayed
            .frames
            .push(Frame::new("main.spin".to_string(), String::new(), 91));
        traceback.goroutines.push(unavailable);
        traceback.goroutines.push(relayed);

        let found = traceback.goroutine(GoroutineId(19)).unwrap();
        assert_eq!(found.text_line, 90);
        assert_eq!(traceback.main_goroutines().count(), 1);
        assert!(traceback.goroutine(GoroutineId(7)).is_none());
    }
}
