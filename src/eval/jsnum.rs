//! JavaScript number ↔ string conversions, bit for bit.
//!
//! Flattening stringifies numbers with JS `String(n)` and GT/LT/AFTER/BEFORE coerce strings with JS
//! `Number(s)`; both differ from Rust's formatting and parsing (exponent layout, hex literals,
//! whitespace, `Infinity`), and any difference changes hashes or comparison results.

/// JS `String(n)` (ECMA-262 Number::toString with radix 10).
pub fn number_to_string(n: f64) -> String {
    if n.is_nan() {
        return "NaN".to_owned();
    }
    if n == 0.0 {
        // Covers -0, which JS prints as "0".
        return "0".to_owned();
    }
    if n.is_infinite() {
        return if n > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    if n.fract() == 0.0 && n.abs() < 1e15 {
        // Fast path for the common integral attributes (ids, counts): exact in i64, and JS prints
        // integers below 1e21 without exponent or fraction.
        return (n as i64).to_string();
    }
    // Rust's `{:e}` yields the shortest round-trip digits, the same digits JS picks; only the
    // layout differs, so re-lay them out per the spec.
    let sci = format!("{:e}", n.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let e: i32 = exp.parse().unwrap_or(0);
    let k = digits.len() as i32;
    let point = e + 1; // the spec's n: value = 0.digits × 10^point
    let mut out = String::with_capacity(k as usize + 8);
    if n < 0.0 {
        out.push('-');
    }
    if k <= point && point <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (point - k) as usize));
    } else if 0 < point && point <= 21 {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    } else if -6 < point && point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if point > 0 { '+' } else { '-' });
        out.push_str(&(point - 1).abs().to_string());
    }
    out
}

/// JS white space and line terminators, as trimmed by `Number()` (StrWhiteSpaceChar).
pub fn is_js_whitespace(c: char) -> bool {
    matches!(
        c,
        '\u{9}' | '\u{A}' | '\u{B}' | '\u{C}' | '\u{D}' | ' ' | '\u{A0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200A}' | '\u{2028}' | '\u{2029}' | '\u{202F}' | '\u{205F}' | '\u{3000}' | '\u{FEFF}'
    )
}

/// JS `Number(s)` for a string (StringToNumber); NaN when the text is not a numeric literal.
pub fn parse_js_number(s: &str) -> f64 {
    let t = s.trim_matches(is_js_whitespace);
    if t.is_empty() {
        return 0.0;
    }
    let b = t.as_bytes();
    if b.len() > 2 && b[0] == b'0' {
        let radix = match b[1] {
            b'x' | b'X' => 16,
            b'o' | b'O' => 8,
            b'b' | b'B' => 2,
            _ => 0,
        };
        if radix != 0 {
            return parse_radix(&t[2..], radix);
        }
    }
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    if unsigned == "Infinity" {
        return if t.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
    }
    if !is_decimal_literal(unsigned) {
        return f64::NAN;
    }
    // Validated above, so Rust's (correctly rounded) parser sees only forms JS accepts too.
    t.parse::<f64>().unwrap_or(f64::NAN)
}

/// StrUnsignedDecimalLiteral: `digits [. digits?]` or `. digits`, then optional `e[±]digits`.
fn is_decimal_literal(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    let mut frac_digits = 0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let fs = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        frac_digits = i - fs;
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let es = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == es {
            return false;
        }
    }
    i == b.len()
}

fn parse_radix(digits: &str, radix: u32) -> f64 {
    if digits.is_empty() {
        return f64::NAN;
    }
    let mut acc: u128 = 0;
    let mut overflow_acc = 0.0_f64;
    let mut overflowed = false;
    for c in digits.chars() {
        let Some(d) = c.to_digit(radix) else {
            return f64::NAN;
        };
        if !overflowed {
            match acc
                .checked_mul(u128::from(radix))
                .and_then(|a| a.checked_add(u128::from(d)))
            {
                Some(a) => acc = a,
                None => {
                    overflowed = true;
                    overflow_acc = acc as f64 * f64::from(radix) + f64::from(d);
                }
            }
        } else {
            // Beyond 128 bits only the magnitude matters for comparisons; JS rounds similarly.
            overflow_acc = overflow_acc * f64::from(radix) + f64::from(d);
        }
    }
    if overflowed {
        overflow_acc
    } else {
        acc as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_js() {
        for (n, s) in [
            (100.0, "100"),
            (123456789012345680000.0, "123456789012345680000"),
            (1e21, "1e+21"),
            (1e-7, "1e-7"),
            (0.000001, "0.000001"),
            (-0.0, "0"),
            (2.5e-3, "0.0025"),
            (-42.0, "-42"),
            (0.1, "0.1"),
            (1.5e-10, "1.5e-10"),
            (2.5e25, "2.5e+25"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(number_to_string(n), s, "{n:e}");
        }
    }

    #[test]
    fn parses_like_js() {
        let nan = |s: &str| parse_js_number(s).is_nan();
        assert_eq!(parse_js_number(""), 0.0);
        assert_eq!(parse_js_number(" \u{A0}12\n"), 12.0);
        assert_eq!(parse_js_number("0x10"), 16.0);
        assert_eq!(parse_js_number("0b101"), 5.0);
        assert_eq!(parse_js_number("0o17"), 15.0);
        assert_eq!(parse_js_number(".5"), 0.5);
        assert_eq!(parse_js_number("5."), 5.0);
        assert_eq!(parse_js_number("-1e3"), -1000.0);
        assert_eq!(parse_js_number("+Infinity"), f64::INFINITY);
        assert!(nan("1_000") && nan("12px") && nan("-0x10") && nan("1e") && nan("infinity"));
        assert!(nan("0x") && nan(".") && nan("inf") && nan("NaN") && nan("1 2"));
    }
}
