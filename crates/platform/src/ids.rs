//! Snowflake ids: 41 bits of milliseconds since [`EPOCH_MS`], 10 bits of node id and
//! 12 bits of sequence, in a positive `i64` so every database stores them natively.
//!
//! They travel as decimal strings in JSON because JavaScript numbers lose precision
//! past 2^53.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::clock::Clock;

/// 2024-01-01T00:00:00Z: gives the 41-bit timestamp room until the year 2093.
pub const EPOCH_MS: i64 = 1_704_067_200_000;
pub const NODE_BITS: u32 = 10;
pub const SEQUENCE_BITS: u32 = 12;
pub const MAX_NODE_ID: u16 = (1 << NODE_BITS) - 1;
const SEQUENCE_MASK: u64 = (1 << SEQUENCE_BITS) - 1;

/// A Snowflake id (or any 63-bit id the store hands out).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Id(pub i64);

impl Id {
    pub fn get(self) -> i64 {
        self.0
    }

    /// Milliseconds since the Unix epoch at which this id was generated.
    pub fn timestamp_ms(self) -> i64 {
        (self.0 >> (NODE_BITS + SEQUENCE_BITS)) + EPOCH_MS
    }

    pub fn node(self) -> u16 {
        ((self.0 >> SEQUENCE_BITS) as u64 & MAX_NODE_ID as u64) as u16
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.0)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("an id is a positive decimal integer below 2^63")]
pub struct ParseIdError;

impl FromStr for Id {
    type Err = ParseIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Leading '+', whitespace or zero-padding would give one id several spellings.
        if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseIdError);
        }
        if s.len() > 1 && s.starts_with('0') {
            return Err(ParseIdError);
        }
        s.parse::<i64>().map(Id).map_err(|_| ParseIdError)
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // A string in JSON (JavaScript loses integers past 2^53); binary formats,
        // such as cached values, keep the integer.
        if serializer.is_human_readable() {
            serializer.collect_str(&self.0)
        } else {
            serializer.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an id as a decimal string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Id, E> {
                v.parse().map_err(E::custom)
            }
            // Accept integers too: a client that loses nothing below 2^53 should not
            // be refused for sending a number.
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Id, E> {
                i64::try_from(v)
                    .map(Id)
                    .map_err(|_| E::custom(ParseIdError))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Id, E> {
                if v >= 0 {
                    Ok(Id(v))
                } else {
                    Err(E::custom(ParseIdError))
                }
            }
        }
        if deserializer.is_human_readable() {
            deserializer.deserialize_any(Visitor)
        } else {
            deserializer.deserialize_i64(Visitor)
        }
    }
}

impl utoipa::PartialSchema for Id {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[0-9]{1,19}$"))
            .description(Some("Snowflake id as a decimal string"))
            .examples([serde_json::json!("7301526468313800704")])
            .into()
    }
}

impl utoipa::ToSchema for Id {}

/// Hands out Snowflake ids for one node.
///
/// The state (last timestamp and sequence) is one atomic word, so generation is lock
/// free. When the wall clock steps back the generator keeps counting from the last
/// timestamp it used instead of waiting or repeating: ids stay unique and increasing,
/// and their embedded time runs slightly ahead until the clock catches up.
pub struct Snowflake<C: Clock> {
    node: u64,
    clock: C,
    /// `(ms since EPOCH_MS) << SEQUENCE_BITS | sequence` of the last id handed out.
    state: AtomicU64,
}

impl<C: Clock> Snowflake<C> {
    pub fn new(node: u16, clock: C) -> Self {
        assert!(node <= MAX_NODE_ID, "node id {node} is above {MAX_NODE_ID}");
        Self {
            node: node as u64,
            clock,
            state: AtomicU64::new(0),
        }
    }

    pub fn node(&self) -> u16 {
        self.node as u16
    }

    pub fn next_id(&self) -> Id {
        let now = (self.clock.now_ms() - EPOCH_MS).max(0) as u64;
        let mut current = self.state.load(Ordering::Relaxed);
        loop {
            let last_ms = current >> SEQUENCE_BITS;
            let next = if now > last_ms {
                now << SEQUENCE_BITS
            } else {
                // Same millisecond, or the clock went back: the next slot after the
                // last one. A full sequence rolls into the following millisecond.
                current + 1
            };
            match self.state.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    let ms = next >> SEQUENCE_BITS;
                    let seq = next & SEQUENCE_MASK;
                    let raw =
                        (ms << (NODE_BITS + SEQUENCE_BITS)) | (self.node << SEQUENCE_BITS) | seq;
                    return Id(raw as i64);
                }
                Err(seen) => current = seen,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::collections::HashSet;
    use std::sync::Arc;

    #[test]
    fn ids_increase_and_carry_node_and_time() {
        let clock = ManualClock::new(EPOCH_MS + 5_000);
        let gen = Snowflake::new(42, clock.clone());
        let a = gen.next_id();
        let b = gen.next_id();
        assert!(b > a);
        assert_eq!(a.node(), 42);
        assert_eq!(a.timestamp_ms(), EPOCH_MS + 5_000);
        clock.advance_ms(3);
        let c = gen.next_id();
        assert_eq!(c.timestamp_ms(), EPOCH_MS + 5_003);
        assert_eq!(c.0 & SEQUENCE_MASK as i64, 0);
    }

    #[test]
    fn clock_stepping_back_never_repeats_or_decreases() {
        let clock = ManualClock::new(EPOCH_MS + 1_000_000);
        let gen = Snowflake::new(1, clock.clone());
        let mut last = gen.next_id();
        let mut seen = HashSet::new();
        seen.insert(last);
        for step in 0..20_000 {
            if step % 1000 == 0 {
                clock.set_ms(EPOCH_MS + 1_000_000 - step as i64);
            }
            let id = gen.next_id();
            assert!(id > last, "{id:?} after {last:?}");
            assert!(seen.insert(id));
            last = id;
        }
    }

    #[test]
    fn sequence_overflow_moves_to_next_millisecond() {
        let clock = ManualClock::new(EPOCH_MS + 10);
        let gen = Snowflake::new(0, clock);
        let ids: Vec<Id> = (0..5000).map(|_| gen.next_id()).collect();
        assert!(ids.windows(2).all(|w| w[1] > w[0]));
        assert_eq!(ids[4096].timestamp_ms(), EPOCH_MS + 11);
    }

    #[test]
    fn concurrent_generation_is_unique() {
        let gen = Arc::new(Snowflake::new(7, crate::clock::SystemClock));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let gen = gen.clone();
                std::thread::spawn(move || (0..50_000).map(|_| gen.next_id()).collect::<Vec<_>>())
            })
            .collect();
        let mut all = HashSet::new();
        for h in handles {
            for id in h.join().unwrap() {
                assert!(all.insert(id));
            }
        }
        assert_eq!(all.len(), 200_000);
    }

    #[test]
    fn parsing_is_strict() {
        assert_eq!("123".parse::<Id>(), Ok(Id(123)));
        for bad in [
            "",
            "-1",
            "+1",
            "01",
            "1.0",
            "abc",
            "99999999999999999999",
            " 1",
        ] {
            assert!(bad.parse::<Id>().is_err(), "{bad}");
        }
        let json = serde_json::to_string(&Id(9_007_199_254_740_993)).unwrap();
        assert_eq!(json, "\"9007199254740993\"");
        let back: Id = serde_json::from_str(&json).unwrap();
        assert_eq!(back, Id(9_007_199_254_740_993));
    }

    #[test]
    fn binary_formats_keep_ids_as_integers() {
        let id = Id(9_007_199_254_740_993);
        let bytes = postcard::to_allocvec(&id).unwrap();
        assert!(
            bytes.len() <= 9,
            "a varint, not a decimal string: {bytes:?}"
        );
        assert_eq!(postcard::from_bytes::<Id>(&bytes).unwrap(), id);
        let some = postcard::to_allocvec(&Some(id)).unwrap();
        assert_eq!(postcard::from_bytes::<Option<Id>>(&some).unwrap(), Some(id));
    }
}
