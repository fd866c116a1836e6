//! The evaluation context: signed identity attributes plus, optionally, unsigned ones.

use alloc::string::String;
use serde_json::{Map, Value};

/// Attributes a flag is evaluated against.
///
/// `signed` holds what the caller vouches for (at the edge: the claims of a verified token,
/// including `targetingKey`; in the publisher CLI: the whole context). `unsigned` holds
/// attributes sent by the browser; a flag reads one only if it lists the attribute in
/// [`crate::Flag::unsigned_attrs`].
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub(crate) signed: &'a Map<String, Value>,
    pub(crate) unsigned: Option<&'a Map<String, Value>>,
    pub(crate) identity_signed: bool,
}

impl<'a> Context<'a> {
    /// A fully trusted context (local evaluation, tests, benchmarks).
    pub fn new(attrs: &'a Map<String, Value>) -> Self {
        Context {
            signed: attrs,
            unsigned: None,
            identity_signed: true,
        }
    }

    /// A context whose `signed` part came from a verified token (`identity_signed = true`) or
    /// from nowhere (anonymous: `signed` is empty and `identity_signed = false`), plus unsigned
    /// attributes from the request body.
    pub fn with_unsigned(
        signed: &'a Map<String, Value>,
        unsigned: &'a Map<String, Value>,
        identity_signed: bool,
    ) -> Self {
        Context {
            signed,
            unsigned: Some(unsigned),
            identity_signed,
        }
    }

    /// Whether the identity was verified (permission flags require it).
    pub fn identity_signed(&self) -> bool {
        self.identity_signed
    }

    /// Looks up a path in the signed attributes, then (if `allow_unsigned`) in the unsigned ones.
    pub fn lookup(&self, path: &[String], allow_unsigned: bool) -> Option<&'a Value> {
        lookup_in(self.signed, path).or_else(|| {
            if allow_unsigned {
                self.unsigned.and_then(|m| lookup_in(m, path))
            } else {
                None
            }
        })
    }
}

fn lookup_in<'a>(map: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut value = get(map, first)?;
    for segment in rest {
        value = get(value.as_object()?, segment)?;
    }
    Some(value)
}

/// Maps up to this many keys are scanned rather than searched.
const SCAN_LIMIT: usize = 16;

/// `map.get(key)`, faster on the small maps contexts are: one pass comparing lengths first
/// rejects most keys without touching their bytes, where the map's ordered search calls
/// `memcmp` for every key it passes (a third of an evaluation's instructions, measured).
pub(crate) fn get<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    if map.len() <= SCAN_LIMIT {
        map.iter()
            .find(|(k, _)| k.len() == key.len() && k.as_bytes() == key.as_bytes())
            .map(|(_, v)| v)
    } else {
        map.get(key)
    }
}
