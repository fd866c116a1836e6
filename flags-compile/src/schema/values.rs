//! Leaf values of the flag format whose shape serde's types do not say: keys, attribute
//! paths, dates, variant names and values, operands, durations.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::limits::{MAX_KEY_LEN, MAX_VARIANTS};

/// Implements [`JsonSchema`] for a newtype over `serde_json::Value` (or `String`) with a
/// hand-written schema.
macro_rules! leaf {
    ($(#[$doc:meta])* $name:ident($inner:ty) => $schema:tt) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

leaf! {
    /// A flag or segment key: 1 to 128 characters among a-z, A-Z, 0-9, `-`, `_`, `.`.
    FlagKey(String) => {
        "description": "A key: 1 to 128 characters among a-z, A-Z, 0-9, `-`, `_`, `.`.",
        "type": "string",
        "pattern": format!("^[A-Za-z0-9._-]{{1,{MAX_KEY_LEN}}}$")
    }
}

leaf! {
    /// A dot-separated attribute path (`user.plan`), at most 16 parts.
    AttrPath(String) => {
        "description": "A dot-separated attribute path like `user.plan` (at most 16 non-empty parts).",
        "type": "string",
        "pattern": "^[^.]+(\\.[^.]+){0,15}$"
    }
}

leaf! {
    /// A date `YYYY-MM-DD`.
    Date(String) => {
        "description": "A date written YYYY-MM-DD.",
        "type": "string",
        "format": "date",
        "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
    }
}

leaf! {
    /// A variant name (or rule id): a string, or an unquoted `true`/`1` read as its text.
    VariantName(serde_json::Value) => {
        "description": "A name: a string (an unquoted boolean or integer is read as its text).",
        "anyOf": [
            { "type": "string", "minLength": 1 },
            { "type": "boolean" },
            { "type": "integer" }
        ]
    }
}

leaf! {
    /// The operand of `equals`, `not-equals`, `contains`: a string, number or boolean.
    Scalar(serde_json::Value) => {
        "type": ["string", "number", "boolean"]
    }
}

leaf! {
    /// The operand of `before`/`after`: an RFC 3339 time, a date, or epoch seconds
    /// (milliseconds above 10^11).
    TimeOperand(serde_json::Value) => {
        "description": "An RFC 3339 time (\"2024-01-01T00:00:00Z\"), a date (2024-01-01, midnight UTC), or epoch seconds (milliseconds above 10^11).",
        "anyOf": [
            {
                "type": "string",
                "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2}))?$"
            },
            { "type": "integer" }
        ]
    }
}

leaf! {
    /// A split percentage: 0 to 100, at most 3 decimals.
    Weight(f64) => {
        "description": "A percentage from 0 to 100 with at most 3 decimals.",
        "type": "number",
        "minimum": 0,
        "maximum": 100
    }
}

leaf! {
    /// A soak time: `90s`, `30m`, `2h`, `1d`, or plain seconds.
    Duration(serde_json::Value) => {
        "description": "A duration like 90s, 30m, 2h or 1d, or plain seconds (default 0).",
        "anyOf": [
            { "type": "string", "pattern": "^\\s*[0-9]+[smhd]?\\s*$" },
            { "type": "integer", "minimum": 0 }
        ]
    }
}

leaf! {
    /// `variants:`: 1 to 256 names to values, all of one type.
    Variants(serde_json::Map<String, serde_json::Value>) => {
        "description": "Mapping of variant name to value (1 to 256). Values are all booleans, all strings, all numbers, or all mappings (JSON objects).",
        "type": "object",
        "minProperties": 1,
        "maxProperties": MAX_VARIANTS,
        "anyOf": [
            { "additionalProperties": { "type": "boolean" } },
            { "additionalProperties": { "type": "string" } },
            { "additionalProperties": { "type": "number" } },
            { "additionalProperties": { "type": "object" } }
        ]
    }
}
