//! RFC 3339 timestamps and their canonical stored form.
//!
//! SQLite has no timestamp type, so instants are stored as TEXT. Text only
//! orders like time when every value has one shape, so every timestamp a
//! client writes or filters by is rewritten to UTC with exactly three
//! fractional digits: `2024-05-01T12:00:00.000Z` (the shape of JavaScript's
//! `Date.prototype.toISOString`, and of SQLite's
//! `strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`, which makes a good column
//! default).

/// Parses an RFC 3339 timestamp and returns it in canonical form:
/// UTC, `YYYY-MM-DDTHH:MM:SS.mmmZ`.
///
/// Accepted: `T`, `t` or a space between date and time; an optional fraction
/// of any length (digits past milliseconds are truncated); `Z`, `z` or a
/// `±HH:MM` offset. Rejected (returns `None`): anything else, impossible
/// dates (`2023-02-29`), leap seconds (`:60`), and instants whose UTC year
/// falls outside `0000..=9999`.
///
/// ```
/// use channels_binding_sqlx::canonical_timestamp;
///
/// assert_eq!(
///     canonical_timestamp("2024-03-01T01:30:00.123456+02:00").as_deref(),
///     Some("2024-02-29T23:30:00.123Z"),
/// );
/// assert_eq!(canonical_timestamp("yesterday"), None);
/// ```
#[must_use]
pub fn canonical_timestamp(input: &str) -> Option<String> {
    let b = input.as_bytes();
    let year = digits(b, 0, 4)?;
    expect(b, 4, b'-')?;
    let month = digits(b, 5, 2)?;
    expect(b, 7, b'-')?;
    let day = digits(b, 8, 2)?;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let hour = digits(b, 11, 2)?;
    expect(b, 13, b':')?;
    let minute = digits(b, 14, 2)?;
    expect(b, 16, b':')?;
    let second = digits(b, 17, 2)?;

    let mut i = 19;
    let mut millis = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
        for k in 0..3 {
            let digit = if start + k < i {
                i64::from(b[start + k] - b'0')
            } else {
                0
            };
            millis = millis * 10 + digit;
        }
    }

    let offset_seconds = match b.get(i) {
        Some(b'Z' | b'z') => {
            i += 1;
            0
        }
        Some(sign @ (b'+' | b'-')) => {
            let sign = if *sign == b'+' { 1 } else { -1 };
            let oh = digits(b, i + 1, 2)?;
            expect(b, i + 3, b':')?;
            let om = digits(b, i + 4, 2)?;
            if oh > 23 || om > 59 {
                return None;
            }
            i += 6;
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    if i != b.len() {
        return None;
    }

    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }

    let local = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    format_utc(local - offset_seconds, millis)
}

/// The canonical form of an instant given in microseconds since
/// 1970-01-01T00:00:00Z, as PostgreSQL's `timestamptz` holds it; digits past
/// milliseconds are truncated (towards the past), as in
/// [`canonical_timestamp`]. `None` when the UTC year is outside
/// `0000..=9999`.
#[cfg(feature = "postgres")]
pub(crate) fn format_unix_micros(micros: i64) -> Option<String> {
    format_utc(micros.div_euclid(1_000_000), micros.rem_euclid(1_000_000) / 1000)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` of `utc` seconds since the Unix epoch.
fn format_utc(utc: i64, millis: i64) -> Option<String> {
    let (y, mo, d) = civil_from_days(utc.div_euclid(86_400));
    if !(0..=9999).contains(&y) {
        return None;
    }
    let sod = utc.rem_euclid(86_400);
    Some(format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    ))
}

/// `len` ASCII digits at `at`, as a number.
fn digits(b: &[u8], at: usize, len: usize) -> Option<i64> {
    let slice = b.get(at..at.checked_add(len)?)?;
    slice.iter().try_fold(0_i64, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

fn expect(b: &[u8], at: usize, want: u8) -> Option<()> {
    (b.get(at) == Some(&want)).then_some(())
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

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn canon(s: &str) -> Option<String> {
        canonical_timestamp(s)
    }

    #[test]
    fn canonicalizes_utc() {
        assert_eq!(
            canon("2024-05-01T12:00:00Z").as_deref(),
            Some("2024-05-01T12:00:00.000Z")
        );
        assert_eq!(
            canon("2024-05-01t12:00:00.5z").as_deref(),
            Some("2024-05-01T12:00:00.500Z")
        );
        assert_eq!(
            canon("2024-05-01 12:00:00.123999Z").as_deref(),
            Some("2024-05-01T12:00:00.123Z")
        );
    }

    #[test]
    fn applies_offsets_across_days_and_years() {
        assert_eq!(
            canon("2024-01-01T00:30:00+01:00").as_deref(),
            Some("2023-12-31T23:30:00.000Z")
        );
        assert_eq!(
            canon("2023-12-31T23:30:00-01:00").as_deref(),
            Some("2024-01-01T00:30:00.000Z")
        );
        assert_eq!(
            canon("2024-02-28T23:00:00-02:00").as_deref(),
            Some("2024-02-29T01:00:00.000Z")
        );
    }

    #[test]
    fn rejects_bad_input() {
        for s in [
            "",
            "2024-05-01",
            "2024-05-01T12:00:00",
            "2024-05-01T12:00Z",
            "2024-13-01T00:00:00Z",
            "2024-00-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-04-31T00:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T12:60:00Z",
            "2024-05-01T12:00:60Z",
            "2024-05-01T12:00:00.Z",
            "2024-05-01T12:00:00+2:00",
            "2024-05-01T12:00:00+24:00",
            "2024-05-01T12:00:00Z ",
            "0000-01-01T00:00:00+01:00",
            "9999-12-31T23:30:00-01:00",
            "2024-05-01X12:00:00Z",
            "２024-05-01T12:00:00Z",
        ] {
            assert_eq!(canon(s), None, "{s:?}");
        }
    }

    #[test]
    fn accepts_leap_day_and_extremes() {
        assert!(canon("2000-02-29T00:00:00Z").is_some());
        assert!(canon("1900-02-29T00:00:00Z").is_none());
        assert!(canon("0000-01-01T00:00:00Z").is_some());
        assert!(canon("9999-12-31T23:59:59.999Z").is_some());
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn formats_microseconds() {
        assert_eq!(format_unix_micros(0).as_deref(), Some("1970-01-01T00:00:00.000Z"));
        assert_eq!(
            format_unix_micros(1_704_067_199_999_999).as_deref(),
            Some("2023-12-31T23:59:59.999Z")
        );
        assert_eq!(format_unix_micros(-1).as_deref(), Some("1969-12-31T23:59:59.999Z"));
        assert_eq!(format_unix_micros(i64::MAX), None);
        assert_eq!(format_unix_micros(i64::MIN), None);
    }

    proptest! {
        #[cfg(feature = "postgres")]
        #[test]
        fn microseconds_agree_with_canonical_form(
            y in 0i64..=9999, mo in 1i64..=12, d in 1i64..=28,
            h in 0i64..24, mi in 0i64..60, s in 0i64..60, us in 0i64..1_000_000,
        ) {
            let text = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{us:06}Z");
            let micros = (days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s) * 1_000_000 + us;
            prop_assert_eq!(format_unix_micros(micros), canonical_timestamp(&text));
        }

        #[test]
        fn never_panics(s in ".{0,40}") {
            let _ = canonical_timestamp(&s);
        }

        #[test]
        fn canonical_form_is_a_fixed_point(
            y in 1i64..9999, mo in 1i64..=12, d in 1i64..=28,
            h in 0i64..24, mi in 0i64..60, s in 0i64..60, ms in 0i64..1000,
        ) {
            let text = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z");
            prop_assert_eq!(canonical_timestamp(&text), Some(text));
        }

        #[test]
        fn days_round_trip(days in -800_000i64..3_000_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
