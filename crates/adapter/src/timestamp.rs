//! Lenient RFC 3339 / ISO-8601 timestamps, as the CDPs actually send them.
//!
//! Accepted: `Z`, `z`, `±hh:mm`, `±hhmm`, `±hh` or no offset (read as UTC);
//! `T`, `t` or a space between date and time; 0 to 9 fractional digits (more
//! are truncated to nanoseconds), `.` or `,` as the decimal mark; seconds
//! optional; non-padded months, days and hours (`2015-2-02T3:04:05Z`, seen in
//! Segment's docs); a bare date (midnight UTC). Anything else is `None`.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use serde_json::Value;

/// Parses a timestamp string leniently.
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let mut p = Cursor {
        s: text.trim().as_bytes(),
        i: 0,
    };
    let year = p.digits(4, 4)?;
    p.expect(b'-')?;
    let month = p.digits(1, 2)?;
    p.expect(b'-')?;
    let day = p.digits(1, 2)?;
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    if p.done() {
        return Some(Utc.from_utc_datetime(&date.and_time(NaiveTime::MIN)));
    }
    match p.next()? {
        b'T' | b't' | b' ' => {}
        _ => return None,
    }
    let hour = p.digits(1, 2)?;
    p.expect(b':')?;
    let minute = p.digits(2, 2)?;
    let mut second = 0;
    let mut nanos = 0;
    if p.peek() == Some(b':') {
        p.i += 1;
        second = p.digits(2, 2)?;
        if matches!(p.peek(), Some(b'.' | b',')) {
            p.i += 1;
            nanos = p.fraction()?;
        }
    }
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?;
    let local = NaiveDateTime::new(date, time);
    let offset = match p.next() {
        None | Some(b'Z' | b'z') => 0,
        Some(sign @ (b'+' | b'-')) => {
            let hh = p.digits(2, 2)?;
            if p.peek() == Some(b':') {
                p.i += 1;
            }
            let mm = if p.done() { 0 } else { p.digits(2, 2)? };
            let secs = i32::try_from(hh * 3600 + mm * 60).ok()?;
            if sign == b'-' { -secs } else { secs }
        }
        Some(_) => return None,
    };
    if !p.done() {
        return None;
    }
    let offset = FixedOffset::east_opt(offset)?;
    offset
        .from_local_datetime(&local)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// A timestamp from JSON: a string as [`parse_timestamp`], or (when
/// `epochs` is set) a Unix epoch number, in seconds, or in milliseconds when
/// it is larger than 10^11 (past the year 5138 in seconds).
pub fn timestamp_from_json(value: &Value, epochs: bool) -> Option<DateTime<Utc>> {
    match value {
        Value::String(s) => parse_timestamp(s),
        Value::Number(n) if epochs => {
            let f = n.as_f64()?;
            if !f.is_finite() || f < 0.0 {
                return None;
            }
            let ms = if f > 1e11 { f } else { f * 1000.0 };
            if ms > 253_402_300_799_999.0 {
                return None;
            }
            // In range by the check above, so the cast cannot saturate.
            #[allow(clippy::cast_possible_truncation)]
            DateTime::from_timestamp_millis(ms.round() as i64)
        }
        _ => None,
    }
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.i += 1;
        Some(b)
    }

    fn done(&self) -> bool {
        self.i >= self.s.len()
    }

    fn expect(&mut self, b: u8) -> Option<()> {
        (self.next()? == b).then_some(())
    }

    fn digits(&mut self, min: usize, max: usize) -> Option<u32> {
        let mut n = 0u32;
        let mut count = 0;
        while count < max {
            match self.peek() {
                Some(d @ b'0'..=b'9') => {
                    n = n * 10 + u32::from(d - b'0');
                    self.i += 1;
                    count += 1;
                }
                _ => break,
            }
        }
        (count >= min).then_some(n)
    }

    /// Fractional seconds: at least one digit; digits past the ninth are dropped.
    fn fraction(&mut self) -> Option<u32> {
        let mut nanos = 0u32;
        let mut count = 0;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            if count < 9 {
                nanos = nanos * 10 + u32::from(d - b'0');
            }
            count += 1;
            self.i += 1;
        }
        if count == 0 {
            return None;
        }
        for _ in count..9 {
            nanos *= 10;
        }
        Some(nanos)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn ts(s: &str) -> Option<String> {
        parse_timestamp(s).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
    }

    #[test]
    fn the_shapes_senders_use_are_read() {
        let cases = [
            ("2025-03-01T10:00:00Z", "2025-03-01T10:00:00.000000000Z"),
            ("2025-03-01T10:00:00.1Z", "2025-03-01T10:00:00.100000000Z"),
            ("2025-03-01T10:00:00.123Z", "2025-03-01T10:00:00.123000000Z"),
            (
                "2025-03-01T10:00:00.123456Z",
                "2025-03-01T10:00:00.123456000Z",
            ),
            (
                "2025-03-01T10:00:00.123456789Z",
                "2025-03-01T10:00:00.123456789Z",
            ),
            (
                "2025-03-01T10:00:00.1234567891234Z",
                "2025-03-01T10:00:00.123456789Z",
            ),
            (
                "2025-03-01T12:30:00+02:30",
                "2025-03-01T10:00:00.000000000Z",
            ),
            ("2025-03-01T05:00:00-0500", "2025-03-01T10:00:00.000000000Z"),
            ("2025-03-01T11:00:00+01", "2025-03-01T10:00:00.000000000Z"),
            ("2025-03-01 10:00:00", "2025-03-01T10:00:00.000000000Z"),
            ("2025-03-01t10:00:00,5z", "2025-03-01T10:00:00.500000000Z"),
            ("2015-2-02T3:04:05Z", "2015-02-02T03:04:05.000000000Z"),
            ("2025-03-01T10:00Z", "2025-03-01T10:00:00.000000000Z"),
            ("2025-03-01", "2025-03-01T00:00:00.000000000Z"),
            (" 2025-03-01T10:00:00Z ", "2025-03-01T10:00:00.000000000Z"),
        ];
        for (input, want) in cases {
            assert_eq!(ts(input).as_deref(), Some(want), "{input}");
        }
    }

    #[test]
    fn garbage_is_none() {
        for bad in [
            "",
            "yesterday",
            "2025-13-01T00:00:00Z",
            "2025-02-30T00:00:00Z",
            "2025-03-01T24:00:00Z",
            "2025-03-01T10:00:00.Z",
            "2025-03-01T10:00:00Zjunk",
            "2025-03-01T10:00:00+2",
            "25-03-01",
            "1740823200",
        ] {
            assert_eq!(ts(bad), None, "{bad}");
        }
    }

    #[test]
    fn epochs_are_read_only_when_allowed() {
        let want = parse_timestamp("2025-03-01T10:00:00Z");
        assert_eq!(timestamp_from_json(&json!(1_740_823_200), true), want);
        assert_eq!(
            timestamp_from_json(&json!(1_740_823_200_000u64), true),
            want
        );
        assert_eq!(timestamp_from_json(&json!(1_740_823_200), false), None);
        assert_eq!(timestamp_from_json(&json!(-5), true), None);
        assert_eq!(timestamp_from_json(&json!(1e300), true), None);
        assert_eq!(timestamp_from_json(&json!(null), true), None);
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = parse_timestamp(&s);
        }

        #[test]
        fn rfc3339_round_trips(secs in 0i64..253_402_300_799, nanos in 0u32..1_000_000_000) {
            let t = DateTime::from_timestamp(secs, nanos).unwrap();
            for format in [chrono::SecondsFormat::Nanos, chrono::SecondsFormat::AutoSi] {
                let text = t.to_rfc3339_opts(format, true);
                prop_assert_eq!(parse_timestamp(&text), Some(t));
            }
            let offset = FixedOffset::east_opt(-5 * 3600 - 1800).unwrap();
            prop_assert_eq!(parse_timestamp(&t.with_timezone(&offset).to_rfc3339()), Some(t));
        }
    }
}
