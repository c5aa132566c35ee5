//! The final answer of a worked response, as GSM8K marks it (`... #### 42`), normalised so that
//! exact match compares numbers rather than their spelling: `1,000`, `+1000` and `1000.0` are
//! all `1000`.

/// The marker GSM8K puts before the final answer.
pub const ANSWER_MARKER: &str = "####";

/// The final answer of `text`: the first number after the last `####`, else (no marker, or
/// nothing numeric after it, as in a generation cut off at the marker) the last number in the
/// text. Normalised: commas between digit groups stripped, a leading `+` dropped, trailing zeros
/// of a decimal part (and then a bare `.`) removed, `-0` written `0`. `None` when the text holds
/// no number.
pub fn answer_of(text: &str) -> Option<String> {
    let after_marker = text
        .rfind(ANSWER_MARKER)
        .and_then(|at| numbers(&text[at + ANSWER_MARKER.len()..]).next());
    after_marker
        .or_else(|| numbers(text).last())
        .map(|n| normalise(&n))
}

/// `text` as one number and nothing else (surrounding whitespace aside), normalised like
/// [`answer_of`]; how a reader checks the answer written after `####`.
pub(crate) fn exact_number(text: &str) -> Option<String> {
    let text = text.trim();
    let mut found = numbers(text);
    let number = found.next()?;
    let only_number = found.next().is_none()
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b',' | b'.' | b'+' | b'-'));
    // The scan drops a leading `+` and digit-group commas; anything else it skipped (a stray
    // comma or dot) means the text was not one well-formed number.
    let written = text.trim_start_matches('+').replace(',', "");
    (only_number && written == number).then(|| normalise(&number))
}

/// Every number in `text`, in order, as written minus its digit-group commas: an optional sign
/// (only where it cannot be a binary minus, so `5-3` is `5` and `3`), digits with optional
/// `,ddd` groups, and an optional decimal part (a `.` counts only when a digit follows, so the
/// full stop of `is 42.` is not part of the number).
fn numbers(text: &str) -> impl Iterator<Item = String> + '_ {
    let bytes = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            // Letters glued to digits (`x2`, `R2D2`) make an identifier, not a number: skip
            // the whole run.
            if is_word_byte(bytes[i]) {
                while bytes
                    .get(i)
                    .is_some_and(|&b| is_word_byte(b) || b.is_ascii_digit())
                {
                    i += 1;
                }
                continue;
            }
            let start = i;
            let signed = matches!(bytes[i], b'+' | b'-')
                && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
                && (i == 0 || !is_operand_end(bytes[i - 1]));
            let digits_at = if signed { i + 1 } else { i };
            if !bytes.get(digits_at).is_some_and(u8::is_ascii_digit) {
                i += 1;
                continue;
            }
            let mut out = String::new();
            if signed && bytes[start] == b'-' {
                out.push('-');
            }
            i = digits_at;
            i = take_digits(bytes, i, &mut out);
            // Digit groups: a comma followed by exactly three digits.
            while bytes.get(i) == Some(&b',')
                && bytes
                    .get(i + 1..i + 4)
                    .is_some_and(|g| g.iter().all(u8::is_ascii_digit))
                && !bytes.get(i + 4).is_some_and(u8::is_ascii_digit)
            {
                i = take_digits(bytes, i + 1, &mut out);
            }
            if bytes.get(i) == Some(&b'.') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
                out.push('.');
                i = take_digits(bytes, i + 1, &mut out);
            }
            return Some(out);
        }
        None
    })
}

/// Appends the run of ASCII digits at `i` to `out`; returns where it ends.
fn take_digits(bytes: &[u8], mut i: usize, out: &mut String) -> usize {
    while let Some(&b) = bytes.get(i).filter(|b| b.is_ascii_digit()) {
        out.push(b as char);
        i += 1;
    }
    i
}

/// Whether a byte can end the left operand of a binary `+`/`-` (so a sign after it is an
/// operator, not part of the next number).
fn is_operand_end(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b')' || b == b'_'
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn normalise(number: &str) -> String {
    let mut n = number.to_string();
    if n.contains('.') {
        let kept = n.trim_end_matches('0').trim_end_matches('.').len();
        n.truncate(kept);
    }
    if n == "-0" { "0".to_string() } else { n }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_numbers_accept_only_one_well_formed_number() {
        assert_eq!(exact_number(" 1,000 ").as_deref(), Some("1000"));
        assert_eq!(exact_number("-7.50").as_deref(), Some("-7.5"));
        assert_eq!(exact_number("+3").as_deref(), Some("3"));
        for bad in ["", "12 apples", "1,00", "3.", "5-3", "--2", "$5"] {
            assert_eq!(exact_number(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn numbers_are_split_where_signs_are_operators() {
        let found: Vec<String> = numbers("5-3 = 2, and -4 + +6 x2 1,000,000 3,14").collect();
        assert_eq!(found, ["5", "3", "2", "-4", "6", "1000000", "3", "14"]);
    }
}
