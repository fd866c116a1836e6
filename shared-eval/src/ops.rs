//! The operators of a [`Test`](crate::Test): one attribute value against one operand.
//!
//! Rules common to all operators (the semantics users write flags against):
//! - A missing attribute and a JSON `null` are the same: every operator is false on them,
//!   except `not_equals` and `not_in`, which are true ("is not x"). `exists` is false.
//! - No type coercion: a string is never compared as a number, nor a number as a date string.
//!   An operator meeting a value of a type it does not handle is false (and its negated form
//!   true).
//! - Numbers are compared as numbers: `1`, `1.0` and `1e0` are equal.

use core::fmt::{self, Write};

use alloc::string::String;
use serde_json::{Number, Value};

use crate::{Body, Op, datetime, index::HashIndex, regex::CompiledRegex, semver};

/// Whether `value` (the attribute, `None` when missing) satisfies `op`. `list_indexes` holds
/// the snapshot's hash index of each of `body.lists` (empty: search the sorted lists).
pub(crate) fn holds(
    op: &Op,
    value: Option<&Value>,
    body: &Body,
    regexes: &[CompiledRegex],
    list_indexes: &[HashIndex],
) -> bool {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return matches!(op, Op::NotEquals(_) | Op::NotIn(_));
    };
    match op {
        Op::Equals(operand) => json_equal(value, operand),
        Op::NotEquals(operand) => !json_equal(value, operand),
        Op::In(list) => in_list(value, body, list_indexes, *list),
        Op::NotIn(list) => !in_list(value, body, list_indexes, *list),
        Op::Contains(operand) => match (value, operand) {
            (Value::String(text), Value::String(needle)) => text.contains(needle.as_str()),
            (Value::Array(items), _) => items.iter().any(|item| json_equal(item, operand)),
            _ => false,
        },
        Op::StartsWith(prefix) => value
            .as_str()
            .is_some_and(|s| s.starts_with(prefix.as_str())),
        Op::EndsWith(suffix) => value.as_str().is_some_and(|s| s.ends_with(suffix.as_str())),
        Op::Matches(id) => match (
            value.as_str(),
            usize::try_from(*id).ok().and_then(|i| regexes.get(i)),
        ) {
            (Some(text), Some(regex)) => regex.is_match(text),
            _ => false,
        },
        Op::Lt(bound) => value.as_f64().is_some_and(|n| n < *bound),
        Op::Le(bound) => value.as_f64().is_some_and(|n| n <= *bound),
        Op::Gt(bound) => value.as_f64().is_some_and(|n| n > *bound),
        Op::Ge(bound) => value.as_f64().is_some_and(|n| n >= *bound),
        Op::SemVer(cmp, wanted) => value
            .as_str()
            .and_then(semver::parse_semver)
            .is_some_and(|actual| semver::compare(&actual, *cmp, wanted)),
        Op::Before(ms) => datetime::value_to_millis(value).is_some_and(|t| t < *ms as f64),
        Op::After(ms) => datetime::value_to_millis(value).is_some_and(|t| t > *ms as f64),
        Op::Exists => true,
    }
}

/// JSON equality, with numbers compared by value (`1 == 1.0`), also inside arrays and objects.
pub(crate) fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => number_equal(x, y),
        (Value::Array(xs), Value::Array(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| json_equal(x, y))
        }
        (Value::Object(xs), Value::Object(ys)) => {
            xs.len() == ys.len()
                && xs
                    .iter()
                    .all(|(k, x)| ys.get(k).is_some_and(|y| json_equal(x, y)))
        }
        _ => a == b,
    }
}

fn number_equal(x: &Number, y: &Number) -> bool {
    match (integer(x), integer(y)) {
        (Some(i), Some(j)) => i == j,
        _ => x.as_f64() == y.as_f64(),
    }
}

fn integer(n: &Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

/// Whether `value` is in list `list` (a string as is, a number in canonical form; any other
/// type never is). `ops::holds` of `in` is `value.is_some_and(in_list)`, of `not_in` its negation.
pub(crate) fn in_list(value: &Value, body: &Body, list_indexes: &[HashIndex], list: u32) -> bool {
    let Some(list_id) = usize::try_from(list).ok() else {
        return false;
    };
    let Some(list) = body.lists.get(list_id) else {
        return false;
    };
    // Only numbers need the buffer (not zeroed for strings: this runs per `in` test).
    let mut buf;
    let key = match value {
        Value::String(s) => s.as_str(),
        Value::Number(n) => {
            buf = StackStr::new();
            match write_canonical_number(&mut buf, n) {
                Ok(()) => buf.as_str(),
                Err(_) => return false,
            }
        }
        _ => return false,
    };
    match list_indexes.get(list_id) {
        Some(index) => index
            .find(key, |i| list.get(i).map(String::as_str))
            .is_some(),
        None => list
            .binary_search_by(|entry| entry.as_str().cmp(key))
            .is_ok(),
    }
}

/// The text an `in` list must contain for `value` to be in it: a string as is, a number in its
/// canonical form (see [`write_canonical_number`]); `None` for other types, which are never in
/// a list. The compiler uses this to store numeric list entries.
pub fn list_key(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => {
            let mut out = String::new();
            write_canonical_number(&mut out, n).ok()?;
            Some(out)
        }
        _ => None,
    }
}

/// A number's canonical text: integers (and floats with no fractional part whose magnitude is
/// below 2^53) in plain decimal (`42`, `-7`); other floats in their shortest round-trip
/// decimal form, never with an exponent (`0.5`, `1e-7` as `0.0000001`: [`write_plain_f64`]).
pub(crate) fn write_canonical_number(out: &mut impl Write, n: &Number) -> fmt::Result {
    if let Some(i) = n.as_i64() {
        return write!(out, "{i}");
    }
    if let Some(u) = n.as_u64() {
        return write!(out, "{u}");
    }
    let f = n.as_f64().ok_or(fmt::Error)?;
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if f.abs() < EXACT && (f as i64) as f64 == f {
        write!(out, "{}", f as i64)
    } else {
        write_plain_f64(out, f)
    }
}

/// An `f64` as core's `{}` writes it (the shortest round-tripping digits, never an exponent:
/// `0.0000001`, `-0`, `inf`), from zmij's digits instead of core's Grisu and Dragon code,
/// which would add ~9 KB gzipped to the worker (serde_json prints with zmij, so it is linked
/// anyway). One difference: when two shortest texts are exactly as close to the value, zmij
/// ends on the even digit, as Go's `FormatFloat` (flagd) and JavaScript do, where core
/// rounds up (`84418043664819.125` is `...819.12` here, `...819.13` in core).
/// `plain_f64_is_core_display` holds the two to that.
pub(crate) fn write_plain_f64(out: &mut impl Write, f: f64) -> fmt::Result {
    if !f.is_finite() {
        return out.write_str(match f {
            f if f.is_nan() => "NaN",
            f if f > 0.0 => "inf",
            _ => "-inf",
        });
    }
    let mut buffer = zmij::Buffer::new();
    let shortest = buffer.format_finite(f);
    // `-1.5e-7`: a sign, digits around an optional point, an optional exponent.
    let (sign, unsigned) = match shortest.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", shortest),
    };
    let (mantissa, exponent) = match unsigned.split_once('e') {
        Some((mantissa, exponent)) => (mantissa, exponent.parse::<i32>().map_err(|_| fmt::Error)?),
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits = [0u8; 40];
    let mut len = 0;
    for &d in whole.as_bytes().iter().chain(fraction.as_bytes()) {
        *digits.get_mut(len).ok_or(fmt::Error)? = d;
        len += 1;
    }
    // Where the point falls in `digits`, then without leading and trailing zeros.
    let mut point = whole.len() as i32 + exponent;
    let mut digits = digits.get(..len).ok_or(fmt::Error)?;
    while let [b'0', rest @ ..] = digits {
        digits = rest;
        point -= 1;
    }
    while let [rest @ .., b'0'] = digits {
        digits = rest;
    }
    let digits = core::str::from_utf8(digits).map_err(|_| fmt::Error)?;
    out.write_str(sign)?;
    let zeros = |out: &mut dyn Write, n: i32| (0..n).try_for_each(|_| out.write_char('0'));
    if digits.is_empty() {
        out.write_char('0')
    } else if point <= 0 {
        out.write_str("0.")?;
        zeros(out, -point)?;
        out.write_str(digits)
    } else if point as usize >= digits.len() {
        out.write_str(digits)?;
        zeros(out, point - digits.len() as i32)
    } else {
        let (whole, fraction) = digits.split_at(point as usize);
        write!(out, "{whole}.{fraction}")
    }
}

/// A small fixed buffer to format a number into without allocating; formatting fails (and the
/// caller treats the value as absent) beyond its capacity.
pub(crate) struct StackStr {
    buf: [u8; 64],
    len: usize,
}

impl StackStr {
    pub(crate) fn new() -> StackStr {
        StackStr {
            buf: [0; 64],
            len: 0,
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        self.buf
            .get(..self.len)
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or("")
    }
}

impl Write for StackStr {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        self.buf
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SemVerCmp, parse_semver};
    use alloc::{string::ToString, vec, vec::Vec};
    use serde_json::json;

    fn body_with_list(items: &[&str]) -> Body {
        let mut list: Vec<String> = items.iter().map(|s| s.to_string()).collect();
        list.sort();
        Body {
            lists: vec![list],
            ..Body::default()
        }
    }

    fn check(op: Op, value: Option<Value>) -> bool {
        let body = body_with_list(&["42", "-7", "0.5", "ann", "bob"]);
        let regexes =
            [
                CompiledRegex::load(
                    &crate::regex::compile_regex(r"^[a-z]+@example\.com$").unwrap(),
                )
                .unwrap(),
            ];
        let indexes: alloc::vec::Vec<HashIndex> = body
            .lists
            .iter()
            .map(|list| HashIndex::new(list.iter().map(String::as_str)))
            .collect();
        let searched = holds(&op, value.as_ref(), &body, &regexes, &[]);
        let indexed = holds(&op, value.as_ref(), &body, &regexes, &indexes);
        assert_eq!(searched, indexed, "sorted search and hash index disagree");
        searched
    }

    #[test]
    fn plain_f64_is_core_display() {
        let (mut checked, mut ties) = (0, 0);
        let mut check = |f: f64| {
            let mut plain = String::new();
            write_plain_f64(&mut plain, f).unwrap();
            let core = alloc::format!("{f}");
            checked += 1;
            if plain == core {
                return;
            }
            // A tie between two shortest texts: `f` is exactly halfway between them (its
            // exact expansion is ours followed by a 5), they differ in the last digit only,
            // which is even here and one more in core.
            let why = alloc::format!("bits {:#018x}: {plain} against core's {core}", f.to_bits());
            let exact = alloc::format!("{f:.1100}");
            let exact = exact.trim_end_matches('0');
            let midpoint = alloc::format!("{plain}{}5", if plain.contains('.') { "" } else { "." });
            assert_eq!(exact, midpoint, "{why}");
            assert_eq!(plain.len(), core.len(), "{why}");
            let (ours, last) = plain.split_at(plain.len() - 1);
            let (cores, core_last) = core.split_at(core.len() - 1);
            assert_eq!(ours, cores, "{why}");
            let (last, core_last) = (last.as_bytes()[0], core_last.as_bytes()[0]);
            assert!(last % 2 == 0 && core_last == last + 1, "{why}");
            ties += 1;
        };
        for f in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            0.1,
            1e-7,
            1.5e-7,
            1e21,
            1e22,
            123456789012345680000.0,
            f64::MIN_POSITIVE,
            5e-324,
            f64::MAX,
            f64::MIN,
            f64::EPSILON,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            9_007_199_254_740_994.0,
            56.471748161487724,
            100.0,
            0.001,
            f64::from_bits(0x42d3_31c6_e056_6cc8), // 84418043664819.125, a tie
        ] {
            check(f);
        }
        // Random bit patterns (every exponent), and short decimals (the values flags hold).
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..100_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            check(f64::from_bits(state));
            check((state % 2_000_000) as f64 / 1000.0 - 1000.0);
            check((state >> 11) as f64 * 10f64.powi((state % 40) as i32 - 20));
        }
        assert_eq!(checked, 300_024);
        // Exact ties are rare (under 0.1% here), and the one listed above is one.
        assert!(ties > 0 && ties < checked / 1000, "{ties} ties");
    }

    #[test]
    fn missing_and_null_are_false_except_negations() {
        for value in [None, Some(Value::Null)] {
            assert!(!check(Op::Equals(json!(1)), value.clone()));
            assert!(check(Op::NotEquals(json!(1)), value.clone()));
            assert!(!check(Op::In(0), value.clone()));
            assert!(check(Op::NotIn(0), value.clone()));
            assert!(!check(Op::Exists, value.clone()));
            assert!(!check(Op::Lt(10.0), value.clone()));
            assert!(!check(Op::Before(i64::MAX), value.clone()));
        }
    }

    #[test]
    fn numbers_compare_by_value_and_never_as_strings() {
        assert!(check(Op::Equals(json!(1)), Some(json!(1.0))));
        assert!(check(
            Op::Equals(json!([1, {"a": 2}])),
            Some(json!([1.0, {"a": 2.0}]))
        ));
        assert!(!check(Op::Equals(json!(1)), Some(json!("1"))));
        assert!(check(Op::NotEquals(json!(1)), Some(json!("1"))));
        assert!(!check(Op::Equals(json!(u64::MAX)), Some(json!(-1))));
        assert!(check(Op::Lt(10.0), Some(json!(9.5))));
        assert!(!check(Op::Lt(10.0), Some(json!("9"))));
        assert!(check(Op::Le(10.0), Some(json!(10))));
        assert!(check(Op::Gt(-1.0), Some(json!(0))));
        assert!(!check(Op::Ge(0.0), Some(json!(true))));
    }

    #[test]
    fn in_lists_take_strings_and_canonical_numbers() {
        assert!(check(Op::In(0), Some(json!("ann"))));
        assert!(!check(Op::In(0), Some(json!("Ann"))));
        assert!(check(Op::In(0), Some(json!(42))));
        assert!(check(Op::In(0), Some(json!(42.0))));
        assert!(check(Op::In(0), Some(json!(-7))));
        assert!(check(Op::In(0), Some(json!(0.5))));
        assert!(!check(Op::In(0), Some(json!(true))));
        assert!(check(Op::NotIn(0), Some(json!(true))));
        assert!(!check(Op::NotIn(0), Some(json!("bob"))));
        assert!(
            !check(Op::In(7), Some(json!("ann"))),
            "a dangling list is empty, never a panic"
        );
        assert_eq!(
            list_key(&json!(1e21)).as_deref(),
            Some("1000000000000000000000")
        );
        assert_eq!(list_key(&json!(0.0000001)).as_deref(), Some("0.0000001"));
        assert!(
            !check(Op::In(0), Some(json!(1e300))),
            "too long to format: not in any list"
        );
    }

    #[test]
    fn strings_and_arrays() {
        assert!(check(
            Op::Contains(json!("@corp")),
            Some(json!("ann@corp.com"))
        ));
        assert!(check(
            Op::Contains(json!("beta")),
            Some(json!(["alpha", "beta"]))
        ));
        assert!(check(Op::Contains(json!(2)), Some(json!([1, 2.0]))));
        assert!(!check(Op::Contains(json!("a")), Some(json!({"a": 1}))));
        assert!(check(Op::StartsWith("ios-".into()), Some(json!("ios-17"))));
        assert!(!check(Op::StartsWith("ios-".into()), Some(json!(17))));
        assert!(check(Op::EndsWith(".com".into()), Some(json!("x.com"))));
        assert!(check(Op::Matches(0), Some(json!("ann@example.com"))));
        assert!(!check(Op::Matches(0), Some(json!("ann@example.com.evil"))));
        assert!(!check(Op::Matches(1), Some(json!("ann@example.com"))));
        assert!(check(Op::Exists, Some(json!(false))));
    }

    #[test]
    fn semver_and_dates() {
        let v = parse_semver("2.1.0").unwrap();
        assert!(check(
            Op::SemVer(SemVerCmp::Ge, v.clone()),
            Some(json!("v2.1.0"))
        ));
        assert!(check(
            Op::SemVer(SemVerCmp::Lt, v.clone()),
            Some(json!("2.1.0-beta.1"))
        ));
        assert!(!check(
            Op::SemVer(SemVerCmp::Ne, v.clone()),
            Some(json!("not a version"))
        ));
        assert!(!check(Op::SemVer(SemVerCmp::Eq, v), Some(json!(2))));
        let jan_2024 = 1_704_067_200_000;
        assert!(check(
            Op::After(jan_2024),
            Some(json!("2024-06-01T00:00:00Z"))
        ));
        assert!(check(Op::Before(jan_2024), Some(json!(1_700_000_000))));
        assert!(check(
            Op::Before(jan_2024),
            Some(json!(1_700_000_000_000_i64))
        ));
        assert!(
            !check(Op::After(jan_2024), Some(json!(jan_2024))),
            "after is strict"
        );
        assert!(
            !check(Op::Before(jan_2024), Some(json!("2023-06-01"))),
            "bare dates are refused"
        );
    }
}
