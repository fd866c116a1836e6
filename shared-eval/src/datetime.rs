//! Dates and times for the `before` / `after` operators: RFC 3339 text or Unix epoch numbers,
//! both turned into milliseconds since the Unix epoch. No clock is read here.

use serde_json::Value;

/// Epoch numbers whose magnitude is above this are milliseconds, at or below it seconds.
/// 1e11 seconds is the year 5138, 1e11 milliseconds is March 1973, so the two readings only
/// overlap for dates no dashboard compares against.
pub const EPOCH_MILLIS_THRESHOLD: f64 = 1e11;

/// Parses an RFC 3339 date-time (`2024-01-31T12:00:00Z`, `2024-01-31t12:00:00.250+02:00`)
/// into milliseconds since the Unix epoch.
///
/// Strict to the RFC's `date-time` production: four-digit year, two-digit fields, `T`, `t` or
/// a space between date and time (RFC 3339 section 5.6 allows the space), optional fraction
/// (digits after the third are truncated), and an offset `Z`, `z` or `+hh:mm` / `-hh:mm`.
/// Dates are checked against the month's length (leap years included); a leap second (`:60`)
/// is accepted and counts as the next second. A bare date, or a date-time without offset, is
/// refused, because its instant would depend on a time zone nobody wrote down.
///
/// # Example
/// ```
/// assert_eq!(shared_eval::parse_rfc3339("1970-01-01T00:00:01.5Z"), Some(1500));
/// assert_eq!(shared_eval::parse_rfc3339("2024-02-30T00:00:00Z"), None);
/// ```
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let year = digits(b, 0, 4)?;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    let second = digits(b, 17, 2)?;
    if b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !matches!(b.get(10), Some(b'T' | b't' | b' '))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return None;
    }
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }

    let mut at = 19;
    let mut millis = 0;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            if at - start < 3 {
                millis = millis * 10 + i64::from(b[at] - b'0');
            }
            at += 1;
        }
        let fraction_digits = at - start;
        if fraction_digits == 0 {
            return None;
        }
        for _ in fraction_digits..3 {
            millis *= 10;
        }
    }

    let offset_minutes = match b.get(at)? {
        b'Z' | b'z' if at + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if at + 6 == b.len() && b.get(at + 3) == Some(&b':') => {
            let hours = digits(b, at + 1, 2)?;
            let minutes = digits(b, at + 4, 2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let total = hours * 60 + minutes;
            if *sign == b'-' { -total } else { total }
        }
        _ => return None,
    };

    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
}

/// A context value as milliseconds since the epoch: an RFC 3339 string, or a number of
/// seconds (or of milliseconds when above [`EPOCH_MILLIS_THRESHOLD`] in magnitude).
pub(crate) fn value_to_millis(value: &Value) -> Option<f64> {
    match value {
        Value::String(text) => parse_rfc3339(text).map(|ms| ms as f64),
        Value::Number(number) => {
            let n = number.as_f64()?;
            if !n.is_finite() {
                None
            } else if n.abs() > EPOCH_MILLIS_THRESHOLD {
                Some(n)
            } else {
                Some(n * 1000.0)
            }
        }
        _ => None,
    }
}

fn digits(b: &[u8], start: usize, len: usize) -> Option<i64> {
    let mut n = 0i64;
    for byte in b.get(start..start + len)? {
        if !byte.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i64::from(byte - b'0');
    }
    Some(n)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let shifted_month = (month + 9) % 12; // March = 0
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_rfc3339_to_epoch_millis() {
        // Reference values from `date -u -d ... +%s` (GNU coreutils).
        let cases = [
            ("1970-01-01T00:00:00Z", 0),
            ("1970-01-01T00:00:00.001Z", 1),
            ("1969-12-31T23:59:59Z", -1_000),
            ("2000-02-29T00:00:00Z", 951_782_400_000),
            ("2024-01-01T00:00:00Z", 1_704_067_200_000),
            ("2024-01-01T01:00:00+01:00", 1_704_067_200_000),
            ("2023-12-31T19:00:00-05:00", 1_704_067_200_000),
            ("2024-01-01 00:00:00z", 1_704_067_200_000),
            ("2024-03-15t12:34:56.789123Z", 1_710_506_096_789),
            ("2024-03-15T12:34:56.7Z", 1_710_506_096_700),
            ("2016-12-31T23:59:60Z", 1_483_228_800_000),
            ("0001-01-01T00:00:00Z", -62_135_596_800_000),
            ("9999-12-31T23:59:59Z", 253_402_300_799_000),
        ];
        for (text, want) in cases {
            assert_eq!(parse_rfc3339(text), Some(want), "{text}");
        }
    }

    #[test]
    fn refuses_what_is_not_an_rfc3339_instant() {
        for bad in [
            "",
            "2024-01-01",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-00-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2024-04-31T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:60:00Z",
            "2024-01-01T00:00:61Z",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00+0100",
            "2024-01-01T00:00:00+24:00",
            "2024-01-01T00:00:00Zjunk",
            "2024-01-01X00:00:00Z",
            "+2024-01-01T00:00:00Z",
            "2024-1-01T00:00:00Z",
            "２０２４-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?} should not parse");
        }
    }

    #[test]
    fn epoch_numbers_are_seconds_or_millis_by_magnitude() {
        assert_eq!(
            value_to_millis(&json!(1_704_067_200)),
            Some(1_704_067_200_000.0)
        );
        assert_eq!(
            value_to_millis(&json!(1_704_067_200_000_i64)),
            Some(1_704_067_200_000.0)
        );
        assert_eq!(value_to_millis(&json!(1.5)), Some(1500.0));
        assert_eq!(
            value_to_millis(&json!(100_000_000_000_i64)),
            Some(1e14),
            "1e11 itself is seconds"
        );
        assert_eq!(
            value_to_millis(&json!("2024-01-01T00:00:00Z")),
            Some(1_704_067_200_000.0)
        );
        assert_eq!(value_to_millis(&json!(true)), None);
        assert_eq!(value_to_millis(&json!("yesterday")), None);
    }
}
