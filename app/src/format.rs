//! Pure formatting and parsing for the portal: money, token counts, times, durations. Shared by
//! the server and the browser, so both render the same text (no hydration mismatch), and
//! deterministic: times are shown in UTC.

/// Nano-USD as dollars: `$12.34`, small amounts with more digits (`$0.0042`).
pub fn usd(nanos: i64) -> String {
    let neg = nanos < 0;
    let n = nanos.unsigned_abs();
    let dollars = n / 1_000_000_000;
    let frac = n % 1_000_000_000;
    let s = if dollars >= 100 {
        format!("{dollars}.{:02}", frac / 10_000_000)
    } else if dollars >= 1 || frac >= 10_000_000 {
        format!("{dollars}.{:02}", (frac + 5_000_000) / 10_000_000)
    } else if frac == 0 {
        "0.00".to_owned()
    } else {
        // Under a cent: four significant decimals.
        let mut digits = format!("{frac:09}");
        let first = digits.find(|c| c != '0').unwrap_or(8);
        digits.truncate((first + 2).min(9));
        format!("0.{}", digits.trim_end_matches('0'))
    };
    format!("{}${s}", if neg { "-" } else { "" })
}

/// Nano-USD as exact dollars for a form field (`1.234`, `0.000001`): what [`parse_usd`] reads
/// back to the same amount, unlike the rounded [`usd`].
pub fn usd_exact(nanos: i64) -> String {
    let n = nanos.unsigned_abs();
    let sign = if nanos < 0 { "-" } else { "" };
    let frac = format!("{:09}", n % 1_000_000_000);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{sign}{}", n / 1_000_000_000)
    } else {
        format!("{sign}{}.{frac}", n / 1_000_000_000)
    }
}

/// Exact dollars (as typed in a form) to nano-USD. Empty means "no limit".
pub fn parse_usd(text: &str) -> Result<Option<i64>, String> {
    let t = text.trim().trim_start_matches('$').replace(',', "");
    if t.is_empty() {
        return Ok(None);
    }
    let (whole, frac) = t.split_once('.').unwrap_or((&t, ""));
    if whole.is_empty() && frac.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err("Enter an amount in dollars, like 25 or 0.50.".into());
    }
    if frac.len() > 9 {
        return Err("Use at most nine decimals.".into());
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| "Amount too large.".to_owned())?
    };
    let frac_n: i64 = format!("{frac:0<9}")
        .parse()
        .map_err(|_| "Invalid amount.".to_owned())?;
    whole
        .checked_mul(1_000_000_000)
        .and_then(|w| w.checked_add(frac_n))
        .filter(|n| *n <= 1_000_000_000 * 1_000_000_000)
        .map(Some)
        .ok_or_else(|| "Amount too large.".into())
}

/// A whole number for a form field. Empty means "no limit".
pub fn parse_count(text: &str) -> Result<Option<i64>, String> {
    let t = text.trim().replace(',', "");
    if t.is_empty() {
        return Ok(None);
    }
    match t.parse::<i64>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => Err("Enter a whole number greater than 0.".into()),
    }
}

/// A whole number with thousands separators: `1,234,567`.
pub fn int(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A price in pico-USD per token as dollars per million tokens: `$2.50/M`.
pub fn per_mtok(pico: u64) -> String {
    // Pico-USD per token is exactly micro-USD per million tokens.
    let (whole, frac) = (pico / 1_000_000, pico % 1_000_000);
    let mut frac = format!("{frac:06}");
    while frac.len() > 2 && frac.ends_with('0') {
        frac.pop();
    }
    format!("${whole}.{frac}/M")
}

/// Token counts: 950, 12.3K, 4.5M.
pub fn tokens(n: i64) -> String {
    let a = n.abs() as f64;
    if a >= 1e9 {
        format!("{:.1}B", n as f64 / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", n as f64 / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}K", n as f64 / 1e3)
    } else {
        n.to_string()
    }
}

/// Milliseconds since the epoch as `2026-11-29 14:05 UTC`.
pub fn datetime(ms: i64) -> String {
    let (y, mo, d, h, mi, _) = civil(ms);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02} UTC")
}

/// Milliseconds since the epoch as `2026-11-29 14:05:09`.
pub fn datetime_seconds(ms: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(ms);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

/// `Nov 29` (for chart axes).
pub fn month_day(ms: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (_, mo, d, ..) = civil(ms);
    format!("{} {d}", MONTHS[(mo as usize).saturating_sub(1).min(11)])
}

/// Milliseconds since the epoch as `2026-11-29`.
pub fn date(ms: i64) -> String {
    let (y, mo, d, ..) = civil(ms);
    format!("{y:04}-{mo:02}-{d:02}")
}

/// `14:05:09` (UTC).
pub fn time_of_day(ms: i64) -> String {
    let (.., h, mi, s) = civil(ms);
    format!("{h:02}:{mi:02}:{s:02}")
}

/// A duration in microseconds: `850 µs`, `12.3 ms`, `4.20 s`.
pub fn micros(us: i64) -> String {
    if us < 1000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        format!("{:.1} ms", us as f64 / 1000.0)
    } else {
        format!("{:.2} s", us as f64 / 1e6)
    }
}

/// `2026-11-29T14:05`, the value of an `<input type=datetime-local>` (in UTC here).
pub fn datetime_local(ms: i64) -> String {
    let (y, mo, d, h, mi, _) = civil(ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}")
}

/// Parses `YYYY-MM-DDTHH:MM` (seconds optional; a space may replace the `T`) as UTC.
pub fn parse_datetime_local(text: &str) -> Option<i64> {
    let t = text.trim();
    let (date, time) = t.split_once(['T', ' ']).unwrap_or((t, "00:00"));
    let mut dp = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (dp.next()??, dp.next()??, dp.next()??);
    let mut tp = time.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (h, mi) = (tp.next()??, tp.next().flatten().unwrap_or(0));
    let s = tp.next().flatten().unwrap_or(0);
    if !(1..=12).contains(&m)
        || !(1..=31).contains(&d)
        || !(0..24).contains(&h)
        || !(0..60).contains(&mi)
        || !(0..60).contains(&s)
    {
        return None;
    }
    // Days from civil (Howard Hinnant), the inverse of `civil`.
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let ms = ((days * 86_400) + h * 3600 + mi * 60 + s) * 1000;
    // Reject dates like 02-31 that roll over.
    (date_parts(ms) == (y, m as u32, d as u32)).then_some(ms)
}

fn date_parts(ms: i64) -> (i64, u32, u32) {
    let (y, m, d, ..) = civil(ms);
    (y, m, d)
}

/// A duration in milliseconds, short: `850 ms`, `12.3 s`, `4m 05s`, `2h 10m`.
pub fn duration_ms(ms: i64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{}m {:02}s", ms / 60_000, (ms % 60_000) / 1000)
    } else {
        format!("{}h {:02}m", ms / 3_600_000, (ms % 3_600_000) / 60_000)
    }
}

/// Proleptic Gregorian date and time from Unix milliseconds (Howard Hinnant's algorithm), so
/// the browser needs no time-zone database.
fn civil(ms: i64) -> (i64, u32, u32, u32, u32, u32) {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        ((rem % 3600) / 60) as u32,
        (rem % 60) as u32,
    )
}

/// "1 call", "2 calls", "1,200 calls": a count with its noun, singular for one.
pub fn count(n: i64, singular: &str, plural: &str) -> String {
    if n == 1 {
        format!("1 {singular}")
    } else {
        format!("{} {plural}", int(n))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn exact_dollars_round_trip() {
        for n in [0, 1, 500_000_000, 1_234_000_000, 1_000_000_000_000, 123] {
            assert_eq!(super::parse_usd(&super::usd_exact(n)), Ok(Some(n)), "{n}");
        }
    }

    #[test]
    fn counts_agree_with_their_noun() {
        assert_eq!(super::count(1, "call", "calls"), "1 call");
        assert_eq!(super::count(0, "error", "errors"), "0 errors");
        assert_eq!(super::count(2, "lane", "lanes"), "2 lanes");
        assert_eq!(super::count(1200, "call", "calls"), "1,200 calls");
    }

    use super::*;

    #[test]
    fn money() {
        assert_eq!(usd(12_345_000_000), "$12.35");
        assert_eq!(usd(1_000_000_000), "$1.00");
        assert_eq!(usd(0), "$0.00");
        assert_eq!(usd(4_200_000), "$0.0042");
        assert_eq!(usd(250_000_000), "$0.25");
        assert_eq!(usd(123_456_000_000), "$123.45");
        assert_eq!(parse_usd("25").unwrap(), Some(25_000_000_000));
        assert_eq!(parse_usd("$0.50").unwrap(), Some(500_000_000));
        assert_eq!(parse_usd(".001").unwrap(), Some(1_000_000));
        assert_eq!(parse_usd(" ").unwrap(), None);
        assert!(
            parse_usd("-1").is_err() && parse_usd("1.2.3").is_err() && parse_usd("abc").is_err()
        );
        assert!(parse_usd("99999999999999999999").is_err());
        assert_eq!(parse_count("60").unwrap(), Some(60));
        assert!(parse_count("0").is_err() && parse_count("1.5").is_err());
    }

    #[test]
    fn times() {
        assert_eq!(datetime(0), "1970-01-01 00:00 UTC");
        assert_eq!(datetime(1_795_910_400_000), "2026-11-29 00:00 UTC");
        assert_eq!(date(951_782_400_000), "2000-02-29");
        assert_eq!(time_of_day(1_795_910_409_000), "00:00:09");
        assert_eq!(micros(850), "850 µs");
        assert_eq!(micros(12_345), "12.3 ms");
        assert_eq!(tokens(12_345), "12.3K");
        assert_eq!(
            parse_datetime_local("2026-11-29T00:00"),
            Some(1_795_910_400_000)
        );
        assert_eq!(
            parse_datetime_local("2000-02-29 12:30:05"),
            Some(951_827_405_000)
        );
        assert_eq!(datetime_local(1_795_910_460_000), "2026-11-29T00:01");
        assert_eq!(parse_datetime_local("2026-02-31T00:00"), None);
        assert_eq!(parse_datetime_local("yesterday"), None);
        assert_eq!(parse_datetime_local("2026-11-29T25:00"), None);
        assert_eq!(duration_ms(125_000), "2m 05s");
        assert_eq!(int(1_234_567), "1,234,567");
        assert_eq!(int(-12), "-12");
        assert_eq!(per_mtok(2_500_000), "$2.50/M");
        assert_eq!(per_mtok(75_000), "$0.075/M");
    }
}
