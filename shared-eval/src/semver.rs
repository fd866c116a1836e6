//! Semantic versions: parsing (for the compiler's operands and the context's values) and
//! precedence as semver.org 2.0.0 defines it.

use alloc::{string::String, vec::Vec};
use core::cmp::Ordering;

use crate::model::{SemVer, SemVerCmp};

/// Parses a version, leniently in two ways only:
/// - a leading `v` or `V` is skipped (`v1.2.3`, as Git tags and flagd's `sem_ver` write it);
/// - missing minor/patch count as 0 (`1` and `1.2` mean `1.0.0` and `1.2.0`), but only for
///   plain releases: `1.2-beta` is refused, as it is ambiguous.
///
/// Everything else follows semver.org strictly: numeric parts are ASCII digits without leading
/// zeros (and fit in `u64`); pre-release identifiers are non-empty `[0-9A-Za-z-]+`, numeric
/// ones without leading zeros; build metadata (`+...`) is checked and dropped. Returns `None`
/// when the text is not a version.
///
/// # Example
/// ```
/// let v = shared_eval::parse_semver("v2.1.0-rc.1+build.5").unwrap();
/// assert_eq!((v.major, v.minor, v.patch), (2, 1, 0));
/// assert_eq!(v.pre, ["rc", "1"]);
/// assert_eq!(shared_eval::parse_semver("1.2").unwrap().patch, 0);
/// assert!(shared_eval::parse_semver("1.02.3").is_none());
/// ```
pub fn parse_semver(text: &str) -> Option<SemVer> {
    // One pass over the bytes: this runs per request on the context's version string.
    let bytes = text.as_bytes();
    let mut at = usize::from(matches!(bytes.first(), Some(b'v' | b'V')));
    let major = number(bytes, &mut at)?;
    let mut parts = 1;
    let mut minor = 0;
    let mut patch = 0;
    if bytes.get(at) == Some(&b'.') {
        at += 1;
        minor = number(bytes, &mut at)?;
        parts = 2;
        if bytes.get(at) == Some(&b'.') {
            at += 1;
            patch = number(bytes, &mut at)?;
            parts = 3;
        }
    }
    let mut pre = Vec::new();
    if bytes.get(at) == Some(&b'-') {
        at += 1;
        loop {
            let start = at;
            while bytes.get(at).copied().is_some_and(is_identifier_byte) {
                at += 1;
            }
            let id = text.get(start..at)?;
            let numeric = id.bytes().all(|b| b.is_ascii_digit());
            if id.is_empty() || (numeric && id.len() > 1 && id.starts_with('0')) {
                return None;
            }
            pre.push(String::from(id));
            if bytes.get(at) != Some(&b'.') {
                break;
            }
            at += 1;
        }
    }
    let mut has_build = false;
    if bytes.get(at) == Some(&b'+') {
        has_build = true;
        at += 1;
        loop {
            let start = at;
            while bytes.get(at).copied().is_some_and(is_identifier_byte) {
                at += 1;
            }
            if at == start {
                return None;
            }
            if bytes.get(at) != Some(&b'.') {
                break;
            }
            at += 1;
        }
    }
    // Shorthand (`1`, `1.2`) only for plain releases; nothing may follow.
    if at != bytes.len() || (parts < 3 && (!pre.is_empty() || has_build)) {
        return None;
    }
    Some(SemVer {
        major,
        minor,
        patch,
        pre,
    })
}

fn is_identifier_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

/// A numeric part at `*at`: ASCII digits, no leading zero, fits in `u64`.
fn number(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let start = *at;
    let mut value: u64 = 0;
    while let Some(digit) = bytes.get(*at).filter(|b| b.is_ascii_digit()) {
        value = value
            .checked_mul(10)?
            .checked_add(u64::from(digit - b'0'))?;
        *at += 1;
    }
    let len = *at - start;
    if len == 0 || (len > 1 && bytes.get(start) == Some(&b'0')) {
        return None;
    }
    Some(value)
}

/// semver.org precedence: major, minor, patch numerically; then a pre-release sorts before the
/// release; pre-release identifiers compare numerically when both are numeric, in ASCII order
/// otherwise, numeric before alphanumeric, and a longer list wins when one is a prefix.
#[inline(always)]
pub(crate) fn precedence(a: &SemVer, b: &SemVer) -> Ordering {
    (a.major, a.minor, a.patch)
        .cmp(&(b.major, b.minor, b.patch))
        .then_with(|| match (a.pre.is_empty(), b.pre.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => {
                for (x, y) in a.pre.iter().zip(&b.pre) {
                    let order = compare_identifier(x, y);
                    if order != Ordering::Equal {
                        return order;
                    }
                }
                a.pre.len().cmp(&b.pre.len())
            }
        })
}

fn compare_identifier(a: &str, b: &str) -> Ordering {
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    match (numeric(a), numeric(b)) {
        // No leading zeros (checked when parsing), so the longer number is the larger; this
        // also orders numbers too big for any integer type.
        (true, true) => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.cmp(b),
    }
}

/// How `^` and `~` read. The two formats agree on every other comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeRules {
    /// The native format, as npm ranges: `^` is same major and `>=`, `~` same major and minor
    /// and `>=`.
    Native,
    /// flagd's `sem_ver` (its Go and JS evaluators): `^` is same major, `~` same major and
    /// minor; the rest of the version is not compared.
    Flagd,
}

/// `actual cmp wanted` in the native format: `^` means same major and `>=`, `~` same major
/// and minor and `>=`.
#[inline(always)]
pub(crate) fn compare(actual: &SemVer, cmp: SemVerCmp, wanted: &SemVer) -> bool {
    compare_with(actual, cmp, wanted, RangeRules::Native)
}

/// `actual cmp wanted`, with `^` and `~` read by `rules`.
#[inline(always)]
pub(crate) fn compare_with(
    actual: &SemVer,
    cmp: SemVerCmp,
    wanted: &SemVer,
    rules: RangeRules,
) -> bool {
    let order = precedence(actual, wanted);
    let at_least = rules == RangeRules::Flagd || order != Ordering::Less;
    match cmp {
        SemVerCmp::Eq => order == Ordering::Equal,
        SemVerCmp::Ne => order != Ordering::Equal,
        SemVerCmp::Lt => order == Ordering::Less,
        SemVerCmp::Le => order != Ordering::Greater,
        SemVerCmp::Gt => order == Ordering::Greater,
        SemVerCmp::Ge => order != Ordering::Less,
        SemVerCmp::Caret => actual.major == wanted.major && at_least,
        SemVerCmp::Tilde => {
            actual.major == wanted.major && actual.minor == wanted.minor && at_least
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> SemVer {
        parse_semver(text).unwrap_or_else(|| panic!("{text} should parse"))
    }

    #[test]
    fn parses_strictly_with_two_documented_leniencies() {
        assert_eq!(
            v("1.2.3"),
            SemVer {
                major: 1,
                minor: 2,
                patch: 3,
                pre: Vec::new()
            }
        );
        assert_eq!(v("v1.2.3"), v("1.2.3"));
        assert_eq!(v("V1"), v("1.0.0"));
        assert_eq!(v("1.2"), v("1.2.0"));
        assert_eq!(v("1.0.0-alpha.1+sha.5114f85").pre, ["alpha", "1"]);
        assert_eq!(v("1.0.0+build"), v("1.0.0"));
        assert_eq!(v("1.0.0-x-y-z.--").pre, ["x-y-z", "--"]);
        assert_eq!(
            v("1.2.3-0a").pre,
            ["0a"],
            "alphanumeric identifiers may start with 0"
        );
        for bad in [
            "",
            "v",
            "1.",
            "1..2",
            "1.2.3.4",
            "01.2.3",
            "1.02.3",
            "1.2.03",
            "1.2.3-",
            "1.2.3-01",
            "1.2.3-a..b",
            "1.2.3+",
            "1.2.3+a..b",
            "1.2-beta",
            "1-beta",
            "1.2+b",
            "-1.2.3",
            "1.2.x",
            " 1.2.3",
            "1.2.3 ",
            "1.2.3-é",
            "99999999999999999999.0.0",
            "x1.2.3",
            "vv1.0.0",
        ] {
            assert_eq!(parse_semver(bad), None, "{bad:?} should not parse");
        }
    }

    #[test]
    fn precedence_follows_semver_org_example_chain() {
        // The chain given in semver.org, section 11.
        let chain = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.1.0",
            "2.0.0",
        ];
        for pair in chain.windows(2) {
            assert_eq!(
                precedence(&v(pair[0]), &v(pair[1])),
                Ordering::Less,
                "{} < {}",
                pair[0],
                pair[1]
            );
            assert_eq!(precedence(&v(pair[1]), &v(pair[0])), Ordering::Greater);
        }
        assert_eq!(precedence(&v("1.0.0+a"), &v("1.0.0+b")), Ordering::Equal);
        assert_eq!(
            precedence(
                &v("1.0.0-99999999999999999999999"),
                &v("1.0.0-100000000000000000000000")
            ),
            Ordering::Less
        );
    }

    #[test]
    fn caret_and_tilde_stay_within_major_and_minor() {
        let base = v("1.2.3");
        assert!(compare(&v("1.2.3"), SemVerCmp::Caret, &base));
        assert!(compare(&v("1.9.0"), SemVerCmp::Caret, &base));
        assert!(!compare(&v("2.0.0"), SemVerCmp::Caret, &base));
        assert!(!compare(&v("1.2.2"), SemVerCmp::Caret, &base));
        assert!(!compare(&v("1.2.3-rc.1"), SemVerCmp::Caret, &base));
        assert!(compare(&v("1.2.9"), SemVerCmp::Tilde, &base));
        assert!(!compare(&v("1.3.0"), SemVerCmp::Tilde, &base));
        assert!(!compare(&v("1.2.0"), SemVerCmp::Tilde, &base));
        assert!(compare(&v("1.2.3-rc.1"), SemVerCmp::Lt, &base));
        assert!(compare(&v("1.2.3"), SemVerCmp::Le, &base));
        assert!(compare(&v("1.2.3"), SemVerCmp::Ge, &base));
        assert!(!compare(&v("1.2.3"), SemVerCmp::Gt, &base));
        assert!(compare(&v("1.2.4"), SemVerCmp::Ne, &base));
        assert!(compare(&v("v1.2.3+build"), SemVerCmp::Eq, &base));
    }

    #[test]
    fn flagd_ranges_compare_only_major_and_minor() {
        let base = v("1.2.3");
        let flagd = |actual: &str, cmp| compare_with(&v(actual), cmp, &base, RangeRules::Flagd);
        assert!(
            flagd("1.0.0", SemVerCmp::Caret),
            "below the base, same major"
        );
        assert!(flagd("1.9.0", SemVerCmp::Caret));
        assert!(!flagd("2.0.0", SemVerCmp::Caret));
        assert!(
            flagd("1.2.0", SemVerCmp::Tilde),
            "below the base, same minor"
        );
        assert!(flagd("1.2.3-rc.1", SemVerCmp::Tilde));
        assert!(!flagd("1.3.0", SemVerCmp::Tilde));
        assert!(
            flagd("1.2.2", SemVerCmp::Lt),
            "other comparisons as in the native format"
        );
    }
}
