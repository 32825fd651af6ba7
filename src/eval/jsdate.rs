//! JavaScript `Date` arithmetic and V8's `Date` string parser, evaluated in UTC.
//!
//! DATE_AFTER/DATE_BEFORE/AFTER/BEFORE call `new Date(s).getTime()` in the reference, which runs
//! V8's parser: the ES5 ISO form first, then a permissive legacy parser (`01/15/2024`,
//! `Jan 15 2024 10:00 GMT+2`, `2024-01-10 10:00`, …). This is a port of V8's `DateParser`
//! (dateparser.h / dateparser-inl.h) so that the same strings are accepted with the same meaning.
//! Local time is taken to be UTC: servers run the reference with `TZ=UTC`, and the engine has no
//! clock or time zone of its own.

const MS_PER_DAY: f64 = 86_400_000.0;
/// ECMA-262 TimeClip bound.
const MAX_TIME_MS: f64 = 8.64e15;

/// Days from 1970-01-01 to `year-month-01` (month 1..=12), proleptic Gregorian.
fn days_from_civil(year: i64, month: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month 1..=12, day 1..=31) of a day number.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// ECMA-262 MakeDay(year, month0, date) in days, for integral inputs.
fn make_day(year: f64, month0: f64, date: f64) -> f64 {
    if !(year.is_finite() && month0.is_finite() && date.is_finite()) {
        return f64::NAN;
    }
    let ym = year + (month0 / 12.0).floor();
    if ym.abs() > 400_000.0 {
        return f64::NAN;
    }
    let mn = month0.rem_euclid(12.0);
    // Both are small integers here (checked above), so the casts are exact.
    days_from_civil(ym as i64, mn as i64 + 1) as f64 + date - 1.0
}

fn time_clip(t: f64) -> f64 {
    if !t.is_finite() || t.abs() > MAX_TIME_MS {
        f64::NAN
    } else {
        t.trunc() + 0.0
    }
}

/// The `daysAgo` instant of AFTER/BEFORE: `d = new Date(now); d.setDate(d.getDate() - n)`,
/// in UTC. NaN when `n` is NaN/±Infinity or the result leaves the Date range.
pub fn days_ago(now_ms: f64, n: f64) -> f64 {
    if now_ms.is_nan() {
        return f64::NAN;
    }
    let day_number = (now_ms / MS_PER_DAY).floor();
    let time_in_day = now_ms - day_number * MS_PER_DAY;
    // day_number is within the Date range, so it fits i64 exactly.
    let (y, m, d) = civil_from_days(day_number as i64);
    let dt = d as f64 - n;
    if !dt.is_finite() {
        return f64::NAN;
    }
    let day = make_day(y as f64, (m - 1) as f64, dt.trunc());
    time_clip(day * MS_PER_DAY + time_in_day)
}

/// JS `new Date(s).getTime()` with the local time zone fixed to UTC; NaN when V8 rejects `s`.
pub fn parse_js_date(s: &str) -> f64 {
    let chars: Vec<char> = s.chars().collect();
    let mut scanner = Scanner::new(&chars);
    let mut day = DayComposer::default();
    let mut time = TimeComposer::default();
    let mut tz = TimeZoneComposer::default();
    if parse(&mut scanner, &mut day, &mut time, &mut tz).is_none() {
        return f64::NAN;
    }
    let (Some((y, mo, d)), Some((h, mi, sec, ms)), Some(offset)) = (day.write(), time.write(), tz.write())
    else {
        return f64::NAN;
    };
    let day_num = make_day(y as f64, mo as f64, d as f64);
    let time_ms = h as f64 * 3_600_000.0 + mi as f64 * 60_000.0 + sec as f64 * 1000.0 + ms as f64;
    let mut date = day_num * MS_PER_DAY + time_ms;
    if let Some(offset_s) = offset {
        date -= offset_s as f64 * 1000.0;
    }
    time_clip(date)
}

// ---- V8 DateParser port -------------------------------------------------------------------------

const NONE: i32 = i32::MAX;

#[derive(Debug, Clone, Copy, PartialEq)]
enum KeywordType {
    Invalid,
    MonthName,
    TimeZoneName,
    TimeSeparator,
    AmPm,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Token {
    Invalid,
    Unknown,
    Number {
        value: i32,
        length: usize,
    },
    Symbol(char),
    WhiteSpace,
    Keyword {
        kind: KeywordType,
        value: i32,
        length: usize,
    },
    EndOfInput,
}

impl Token {
    fn is_number(self) -> bool {
        matches!(self, Token::Number { .. })
    }
    fn is_fixed_length_number(self, n: usize) -> bool {
        matches!(self, Token::Number { length, .. } if length == n)
    }
    fn number(self) -> i32 {
        match self {
            Token::Number { value, .. } => value,
            _ => 0,
        }
    }
    fn is_symbol(self, c: char) -> bool {
        self == Token::Symbol(c)
    }
    fn is_ascii_sign(self) -> bool {
        self.is_symbol('+') || self.is_symbol('-')
    }
    fn ascii_sign(self) -> i32 {
        if self.is_symbol('-') {
            -1
        } else {
            1
        }
    }
    fn is_keyword_z(self) -> bool {
        matches!(
            self,
            Token::Keyword {
                kind: KeywordType::TimeZoneName,
                value: 0,
                length: 1
            }
        )
    }
}

fn is_v8_whitespace(c: char) -> bool {
    // V8's IsWhiteSpaceOrLineTerminator: the JS WhiteSpace and LineTerminator sets.
    super::jsnum::is_js_whitespace(c)
}

const KEYWORDS: &[(&str, KeywordType, i32)] = &[
    ("jan", KeywordType::MonthName, 1),
    ("feb", KeywordType::MonthName, 2),
    ("mar", KeywordType::MonthName, 3),
    ("apr", KeywordType::MonthName, 4),
    ("may", KeywordType::MonthName, 5),
    ("jun", KeywordType::MonthName, 6),
    ("jul", KeywordType::MonthName, 7),
    ("aug", KeywordType::MonthName, 8),
    ("sep", KeywordType::MonthName, 9),
    ("oct", KeywordType::MonthName, 10),
    ("nov", KeywordType::MonthName, 11),
    ("dec", KeywordType::MonthName, 12),
    ("am", KeywordType::AmPm, 0),
    ("pm", KeywordType::AmPm, 12),
    ("ut", KeywordType::TimeZoneName, 0),
    ("utc", KeywordType::TimeZoneName, 0),
    ("z", KeywordType::TimeZoneName, 0),
    ("gmt", KeywordType::TimeZoneName, 0),
    ("cdt", KeywordType::TimeZoneName, -5),
    ("cst", KeywordType::TimeZoneName, -6),
    ("edt", KeywordType::TimeZoneName, -4),
    ("est", KeywordType::TimeZoneName, -5),
    ("mdt", KeywordType::TimeZoneName, -6),
    ("mst", KeywordType::TimeZoneName, -7),
    ("pdt", KeywordType::TimeZoneName, -7),
    ("pst", KeywordType::TimeZoneName, -8),
    ("t", KeywordType::TimeSeparator, 0),
];

struct Scanner<'a> {
    chars: &'a [char],
    pos: usize,
    next: Token,
}

impl<'a> Scanner<'a> {
    fn new(chars: &'a [char]) -> Self {
        let mut s = Scanner {
            chars,
            pos: 0,
            next: Token::EndOfInput,
        };
        s.next = s.scan();
        s
    }

    fn ch(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Token {
        let t = self.next;
        self.next = self.scan();
        t
    }

    fn peek(&self) -> Token {
        self.next
    }

    fn skip_symbol(&mut self, c: char) -> bool {
        if self.next.is_symbol(c) {
            self.next();
            true
        } else {
            false
        }
    }

    fn scan(&mut self) -> Token {
        let start = self.pos;
        let Some(c) = self.ch() else {
            return Token::EndOfInput;
        };
        if c.is_ascii_digit() {
            // V8 skips leading zeros and keeps at most 9 significant digits in the value, but the
            // token length counts every digit.
            while self.ch() == Some('0') {
                self.pos += 1;
            }
            let mut n: i32 = 0;
            let mut i = 0;
            while let Some(d) = self.ch().and_then(|c| c.to_digit(10)) {
                if i < 9 {
                    n = n * 10 + d as i32;
                }
                i += 1;
                self.pos += 1;
            }
            return Token::Number {
                value: n,
                length: self.pos - start,
            };
        }
        if matches!(c, ':' | '-' | '+' | '.' | ')') {
            self.pos += 1;
            return Token::Symbol(c);
        }
        if c >= 'A' && !is_v8_whitespace(c) {
            let mut prefix = String::new();
            let mut length = 0;
            while let Some(c) = self.ch().filter(|&c| c >= 'A' && !is_v8_whitespace(c)) {
                if length < 3 {
                    // V8 lower-cases ASCII letters only (`c | 0x20`).
                    prefix.push(if c.is_ascii_uppercase() {
                        c.to_ascii_lowercase()
                    } else {
                        c
                    });
                }
                length += 1;
                self.pos += 1;
            }
            for &(word, kind, value) in KEYWORDS {
                if word == prefix && (length <= 3 || kind == KeywordType::MonthName) {
                    return Token::Keyword { kind, value, length };
                }
            }
            return Token::Keyword {
                kind: KeywordType::Invalid,
                value: 0,
                length,
            };
        }
        if is_v8_whitespace(c) {
            while self.ch().is_some_and(is_v8_whitespace) {
                self.pos += 1;
            }
            return Token::WhiteSpace;
        }
        if c == '(' {
            let mut balance = 0;
            loop {
                match self.ch() {
                    Some(')') => balance -= 1,
                    Some('(') => balance += 1,
                    _ => {}
                }
                self.pos += 1;
                if balance <= 0 || self.ch().is_none() {
                    break;
                }
            }
            return Token::Unknown;
        }
        self.pos += 1;
        Token::Unknown
    }
}

#[derive(Default)]
struct DayComposer {
    comp: [i32; 3],
    index: usize,
    named_month: Option<i32>,
    is_iso_date: bool,
}

fn between(x: i32, lo: i32, hi: i32) -> bool {
    (lo..=hi).contains(&x)
}
fn is_month(x: i32) -> bool {
    between(x, 1, 12)
}
fn is_day(x: i32) -> bool {
    between(x, 1, 31)
}
fn is_hour(x: i32) -> bool {
    between(x, 0, 23)
}
fn is_minute(x: i32) -> bool {
    between(x, 0, 59)
}
fn is_second(x: i32) -> bool {
    between(x, 0, 59)
}
fn is_millisecond(x: i32) -> bool {
    between(x, 0, 999)
}

impl DayComposer {
    fn add(&mut self, n: i32) -> bool {
        if self.index < 3 {
            self.comp[self.index] = n;
            self.index += 1;
            true
        } else {
            false
        }
    }

    fn is_empty(&self) -> bool {
        self.index == 0
    }

    /// (year, month0, day)
    fn write(&mut self) -> Option<(i32, i32, i32)> {
        if self.index < 1 {
            return None;
        }
        // Day and month default to 1 — note this also fills the year slot, a V8 quirk that makes
        // "01/15" mean 2001-01-15.
        while self.index < 3 {
            self.comp[self.index] = 1;
            self.index += 1;
        }
        let mut year;
        let month;
        let day;
        match self.named_month {
            None => {
                if self.is_iso_date || !is_day(self.comp[0]) {
                    year = self.comp[0];
                    month = self.comp[1];
                    day = self.comp[2];
                } else {
                    month = self.comp[0];
                    day = self.comp[1];
                    year = self.comp[2];
                }
            }
            Some(m) => {
                month = m;
                if !is_day(self.comp[0]) {
                    year = self.comp[0];
                    day = self.comp[1];
                } else {
                    day = self.comp[0];
                    year = self.comp[1];
                }
            }
        }
        if !self.is_iso_date {
            if between(year, 0, 49) {
                year += 2000;
            } else if between(year, 50, 99) {
                year += 1900;
            }
        }
        if !is_month(month) || !is_day(day) {
            return None;
        }
        Some((year, month - 1, day))
    }
}

#[derive(Default)]
struct TimeComposer {
    comp: [i32; 4],
    index: usize,
    hour_offset: Option<i32>,
}

impl TimeComposer {
    fn is_empty(&self) -> bool {
        self.index == 0
    }
    fn is_expecting(&self, n: i32) -> bool {
        (self.index == 1 && is_minute(n))
            || (self.index == 2 && is_second(n))
            || (self.index == 3 && is_millisecond(n))
    }
    fn add(&mut self, n: i32) -> bool {
        if self.index < 4 {
            self.comp[self.index] = n;
            self.index += 1;
            true
        } else {
            false
        }
    }
    fn add_final(&mut self, n: i32) -> bool {
        if !self.add(n) {
            return false;
        }
        while self.index < 4 {
            self.comp[self.index] = 0;
            self.index += 1;
        }
        true
    }
    fn write(&mut self) -> Option<(i32, i32, i32, i32)> {
        while self.index < 4 {
            self.comp[self.index] = 0;
            self.index += 1;
        }
        let [mut hour, minute, second, ms] = self.comp;
        if let Some(offset) = self.hour_offset {
            if !between(hour, 0, 12) {
                return None;
            }
            hour %= 12;
            hour += offset;
        }
        if !(is_hour(hour) && is_minute(minute) && is_second(second) && is_millisecond(ms))
            && (hour != 24 || minute != 0 || second != 0 || ms != 0)
        {
            return None;
        }
        Some((hour, minute, second, ms))
    }
}

struct TimeZoneComposer {
    sign: i32,
    hour: i32,
    minute: i32,
}

impl Default for TimeZoneComposer {
    fn default() -> Self {
        TimeZoneComposer {
            sign: NONE,
            hour: NONE,
            minute: NONE,
        }
    }
}

impl TimeZoneComposer {
    fn set(&mut self, offset_hours: i32) {
        self.sign = if offset_hours < 0 { -1 } else { 1 };
        self.hour = offset_hours.abs();
        self.minute = 0;
    }
    fn set_sign(&mut self, sign: i32) {
        self.sign = if sign < 0 { -1 } else { 1 };
    }
    fn is_expecting(&self, n: i32) -> bool {
        self.hour != NONE && self.minute == NONE && is_minute(n)
    }
    fn is_utc(&self) -> bool {
        self.hour == 0 && self.minute == 0
    }
    fn is_empty(&self) -> bool {
        self.sign == NONE
    }
    /// Offset in seconds, `None` inside for "local time" (= UTC here); outer `None` = invalid.
    fn write(&mut self) -> Option<Option<i64>> {
        if self.sign == NONE {
            return Some(None);
        }
        let hour = if self.hour == NONE { 0 } else { self.hour };
        let minute = if self.minute == NONE { 0 } else { self.minute };
        let total = i64::from(hour) * 3600 + i64::from(minute) * 60;
        if total > i64::from(i32::MAX >> 1) {
            return None;
        }
        Some(Some(if self.sign < 0 { -total } else { total }))
    }
}

/// V8 `ReadMilliseconds`: the first three significant digits of the numeral.
fn read_milliseconds(token: Token) -> i32 {
    let Token::Number { value, length } = token else {
        return 0;
    };
    let mut number = value;
    if length == 1 {
        number *= 100;
    } else if length == 2 {
        number *= 10;
    } else if length > 3 {
        let mut length = length.min(9);
        let mut factor = 1;
        while length > 3 {
            factor *= 10;
            length -= 1;
        }
        number /= factor;
    }
    number
}

/// ES5 ISO part; returns the first token it did not handle (EndOfInput when fully parsed) or
/// `Token::Invalid` when the string is definitely not a date.
fn parse_es5(
    scanner: &mut Scanner<'_>,
    day: &mut DayComposer,
    time: &mut TimeComposer,
    tz: &mut TimeZoneComposer,
) -> Token {
    if scanner.peek().is_ascii_sign() {
        let sign_token = scanner.next();
        if !scanner.peek().is_fixed_length_number(6) {
            return sign_token;
        }
        let sign = sign_token.ascii_sign();
        let year = scanner.next().number();
        if sign < 0 && year == 0 {
            return sign_token;
        }
        day.add(sign * year);
    } else if scanner.peek().is_fixed_length_number(4) {
        let y = scanner.next().number();
        day.add(y);
    } else {
        return scanner.next();
    }
    if scanner.skip_symbol('-') {
        if !scanner.peek().is_fixed_length_number(2) || !is_month(scanner.peek().number()) {
            return scanner.next();
        }
        let m = scanner.next().number();
        day.add(m);
        if scanner.skip_symbol('-') {
            if !scanner.peek().is_fixed_length_number(2) || !is_day(scanner.peek().number()) {
                return scanner.next();
            }
            let d = scanner.next().number();
            day.add(d);
        }
    }
    if !matches!(
        scanner.peek(),
        Token::Keyword {
            kind: KeywordType::TimeSeparator,
            ..
        }
    ) {
        if scanner.peek() != Token::EndOfInput {
            return scanner.next();
        }
    } else {
        scanner.next();
        if !scanner.peek().is_fixed_length_number(2) || !between(scanner.peek().number(), 0, 24) {
            return Token::Invalid;
        }
        let hour_is_24 = scanner.peek().number() == 24;
        let h = scanner.next().number();
        time.add(h);
        if !scanner.skip_symbol(':') {
            return Token::Invalid;
        }
        if !scanner.peek().is_fixed_length_number(2)
            || !is_minute(scanner.peek().number())
            || (hour_is_24 && scanner.peek().number() > 0)
        {
            return Token::Invalid;
        }
        let m = scanner.next().number();
        time.add(m);
        if scanner.skip_symbol(':') {
            if !scanner.peek().is_fixed_length_number(2)
                || !is_second(scanner.peek().number())
                || (hour_is_24 && scanner.peek().number() > 0)
            {
                return Token::Invalid;
            }
            let s = scanner.next().number();
            time.add(s);
            if scanner.skip_symbol('.') {
                if !scanner.peek().is_number() || (hour_is_24 && scanner.peek().number() > 0) {
                    return Token::Invalid;
                }
                let ms = read_milliseconds(scanner.next());
                time.add(ms);
            }
        }
        if scanner.peek().is_keyword_z() {
            scanner.next();
            tz.set(0);
        } else if scanner.peek().is_symbol('+') || scanner.peek().is_symbol('-') {
            let sign = scanner.next().ascii_sign();
            tz.set_sign(sign);
            if scanner.peek().is_fixed_length_number(4) {
                let hourmin = scanner.next().number();
                let (hour, min) = (hourmin / 100, hourmin % 100);
                if !is_hour(hour) || !is_minute(min) {
                    return Token::Invalid;
                }
                tz.hour = hour;
                tz.minute = min;
            } else {
                if !scanner.peek().is_fixed_length_number(2) || !is_hour(scanner.peek().number()) {
                    return Token::Invalid;
                }
                tz.hour = scanner.next().number();
                if !scanner.skip_symbol(':') {
                    return Token::Invalid;
                }
                if !scanner.peek().is_fixed_length_number(2) || !is_minute(scanner.peek().number()) {
                    return Token::Invalid;
                }
                tz.minute = scanner.next().number();
            }
        }
        if scanner.peek() != Token::EndOfInput {
            return Token::Invalid;
        }
    }
    // Date-only forms are UTC; date-time forms without offset are local (= UTC here anyway).
    if tz.is_empty() && time.is_empty() {
        tz.set(0);
    }
    day.is_iso_date = true;
    Token::EndOfInput
}

fn parse(
    scanner: &mut Scanner<'_>,
    day: &mut DayComposer,
    time: &mut TimeComposer,
    tz: &mut TimeZoneComposer,
) -> Option<()> {
    let mut token = parse_es5(scanner, day, time, tz);
    if token == Token::Invalid {
        return None;
    }
    let mut has_read_number = !day.is_empty();
    while token != Token::EndOfInput {
        match token {
            Token::Number { value: n, .. } => {
                has_read_number = true;
                if scanner.skip_symbol(':') {
                    if scanner.skip_symbol(':') {
                        if !time.is_empty() {
                            return None;
                        }
                        time.add(n);
                        time.add(0);
                    } else {
                        if !time.add(n) {
                            return None;
                        }
                        if scanner.peek().is_symbol('.') {
                            scanner.next();
                        }
                    }
                } else if scanner.skip_symbol('.') && time.is_expecting(n) {
                    time.add(n);
                    if !scanner.peek().is_number() {
                        return None;
                    }
                    let ms = read_milliseconds(scanner.next());
                    if ms < 0 {
                        return None;
                    }
                    time.add_final(ms);
                } else if tz.is_expecting(n) {
                    tz.minute = n;
                } else if time.is_expecting(n) {
                    time.add_final(n);
                    let peek = scanner.peek();
                    if peek != Token::EndOfInput
                        && peek != Token::WhiteSpace
                        && !peek.is_keyword_z()
                        && !peek.is_ascii_sign()
                    {
                        return None;
                    }
                } else {
                    if !day.add(n) {
                        return None;
                    }
                    scanner.skip_symbol('-');
                }
            }
            Token::Keyword { kind, value, .. } => {
                if kind == KeywordType::AmPm && !time.is_empty() {
                    time.hour_offset = Some(value);
                } else if kind == KeywordType::MonthName {
                    day.named_month = Some(value);
                    scanner.skip_symbol('-');
                } else if kind == KeywordType::TimeZoneName && has_read_number {
                    tz.set(value);
                } else {
                    // Garbage words are only allowed before the first number, and must be
                    // separated from it.
                    if has_read_number || scanner.peek().is_number() {
                        return None;
                    }
                }
            }
            t if t.is_ascii_sign() && (tz.is_utc() || !time.is_empty()) => {
                tz.set_sign(t.ascii_sign());
                let mut n = 0;
                let mut length = 0;
                if let Token::Number { value, length: l } = scanner.peek() {
                    scanner.next();
                    n = value;
                    length = l;
                }
                has_read_number = true;
                if scanner.peek().is_symbol(':') {
                    tz.hour = n;
                    tz.minute = NONE;
                } else if length == 1 || length == 2 {
                    tz.hour = n;
                    tz.minute = 0;
                } else if length == 3 || length == 4 {
                    tz.hour = n / 100;
                    tz.minute = n % 100;
                } else {
                    return None;
                }
            }
            t if (t.is_ascii_sign() || t.is_symbol(')')) && has_read_number => return None,
            _ => {}
        }
        token = scanner.next();
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> f64 {
        parse_js_date(s)
    }

    #[test]
    fn iso_forms() {
        assert_eq!(ms("2024-01-10"), 1_704_844_800_000.0);
        assert_eq!(ms("2024-01-10T00:00:00.000Z"), 1_704_844_800_000.0);
        assert_eq!(ms("2024-01-10T00:00:00"), 1_704_844_800_000.0);
        assert_eq!(ms("2024-01-10T01:00:00+01:00"), 1_704_844_800_000.0);
        assert_eq!(ms("2024"), 1_704_067_200_000.0);
        assert_eq!(ms("2024-01-09T24:00"), 1_704_844_800_000.0);
        assert_eq!(ms("1970-01-01T00:00:00.5Z"), 500.0);
        assert_eq!(ms("+002024-01-10"), 1_704_844_800_000.0);
        // V8 drops the rejected "-000000" and reads "01-01" as month/day of (20)01.
        assert_eq!(ms("-000000-01-01"), 978_307_200_000.0);
        assert_eq!(ms("01/15"), 979_516_800_000.0);
        assert_eq!(ms("hello 1"), 978_307_200_000.0);
        assert_eq!(ms("1.5.2024"), 1_704_412_800_000.0);
        assert_eq!(ms("2024-01-10T10:00:00.123456Z"), 1_704_880_800_123.0);
        assert_eq!(ms("12:00 2024-01-10"), 1_704_888_000_000.0);
        assert_eq!(ms("10 Jan 2024 GMT+0130"), 1_704_839_400_000.0);
        assert_eq!(ms("(c) 2024 Jan 5"), 1_704_412_800_000.0);
        assert!(ms("2024-01-10T10:00:00 +01:00").is_nan());
        assert!(ms("2024-13-01").is_nan());
        assert!(ms("2024 ) 5").is_nan());
        assert!(ms("1704844800000").is_nan());
        assert!(ms("invalid-date").is_nan());
        assert!(ms("not a date").is_nan());
        assert!(ms("").is_nan());
    }

    #[test]
    fn legacy_forms() {
        assert_eq!(ms("01/10/2024"), 1_704_844_800_000.0);
        assert_eq!(ms("2024/01/10"), 1_704_844_800_000.0);
        assert_eq!(ms("Jan 10 2024"), 1_704_844_800_000.0);
        assert_eq!(ms("Wed, 10 Jan 2024 01:00:00 +0100"), 1_704_844_800_000.0);
        assert_eq!(ms("2024-01-10 10:00"), 1_704_880_800_000.0);
        assert_eq!(ms("January 10, 2024 10:00 PM GMT"), 1_704_924_000_000.0);
    }

    #[test]
    fn days_ago_follows_set_date() {
        let now = 1_704_844_800_000.0; // 2024-01-10
        assert_eq!(days_ago(now, 5.0), now - 5.0 * MS_PER_DAY);
        assert_eq!(days_ago(now, 1.5), now - 2.0 * MS_PER_DAY);
        assert_eq!(days_ago(now, 1.9), now - 2.0 * MS_PER_DAY);
        assert_eq!(days_ago(now, -5.0), now + 5.0 * MS_PER_DAY);
        assert_eq!(days_ago(now, 40.0), now - 40.0 * MS_PER_DAY);
        assert!(days_ago(now, f64::NAN).is_nan());
        assert!(days_ago(now, f64::INFINITY).is_nan());
    }
}
