//! UTC calendar formatting of epoch milliseconds (RFC 3339 for the health endpoint, SigV4's
//! `YYYYMMDD'T'HHMMSS'Z'`), without a date crate: the runtime gives only `Date.now()`.

/// `(year, month, day, hour, minute, second)` in UTC.
pub fn utc_parts(epoch_ms: u64) -> (i64, u32, u32, u32, u32, u32) {
    let secs = (epoch_ms / 1000) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400) as u32;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `2026-11-21T06:24:55.123Z`.
pub fn rfc3339(epoch_ms: u64) -> String {
    let (y, mo, d, h, mi, s) = utc_parts(epoch_ms);
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z",
        epoch_ms % 1000
    )
}

/// SigV4's `x-amz-date`: `20261121T062455Z`.
pub fn amz_date(epoch_ms: u64) -> String {
    let (y, mo, d, h, mi, s) = utc_parts(epoch_ms);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_440_938_160_123), "2015-08-30T12:36:00.123Z");
        assert_eq!(amz_date(1_369_353_600_000), "20130524T000000Z");
        assert_eq!(rfc3339(4_102_444_799_000), "2099-12-31T23:59:59.000Z");
    }
}
