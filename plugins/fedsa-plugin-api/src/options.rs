//! Reading an aggregator plugin's options without a TOML dependency. The host hands a plugin
//! the `[strategy.aggregator_options]` table serialised as flat TOML (`key = value` lines);
//! this reads numbers, booleans and basic strings from it and names the offending key,
//! `strategy.aggregator_options.<key>`, in every error.

/// Where options live in a fedsa config, for error messages.
pub const OPTIONS_FIELD: &str = "strategy.aggregator_options";

/// One option's value.
#[derive(Debug, Clone, PartialEq)]
pub enum OptionValue {
    Number(f64),
    Bool(bool),
    Text(String),
    /// Anything else (arrays, inline tables, dates), kept as written.
    Other(String),
}

/// Flat options parsed from TOML text. Read each known key once, then call
/// [`Options::finish`] so a misspelt key is an error rather than silently ignored.
#[derive(Debug, Clone, Default)]
pub struct Options {
    entries: Vec<(String, OptionValue, bool)>,
}

impl Options {
    /// Parses `key = value` lines; blank lines and `#` comments are skipped. Table headers
    /// (nested tables) are refused.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut entries: Vec<(String, OptionValue, bool)> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = || format!("{OPTIONS_FIELD} (line {})", i + 1);
            if line.starts_with('[') {
                return Err(format!("{}: nested tables are not supported", at()));
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(format!("{}: expected `key = value`, got `{line}`", at()));
            };
            let key = key.trim().trim_matches('"').to_string();
            if key.is_empty() {
                return Err(format!("{}: empty key", at()));
            }
            if entries.iter().any(|(k, _, _)| *k == key) {
                return Err(format!("{OPTIONS_FIELD}.{key}: given twice"));
            }
            let value =
                parse_value(value.trim()).map_err(|e| format!("{OPTIONS_FIELD}.{key}: {e}"))?;
            entries.push((key, value, false));
        }
        Ok(Self { entries })
    }

    /// The value of `key`, marking it as read.
    pub fn take(&mut self, key: &str) -> Option<OptionValue> {
        self.entries
            .iter_mut()
            .find(|(k, _, _)| k == key)
            .map(|(_, v, used)| {
                *used = true;
                v.clone()
            })
    }

    /// A number option, or `default` when absent.
    pub fn f64_or(&mut self, key: &str, default: f64) -> Result<f64, String> {
        match self.take(key) {
            None => Ok(default),
            Some(OptionValue::Number(v)) => Ok(v),
            Some(other) => Err(format!(
                "{OPTIONS_FIELD}.{key}: expected a number, got {other:?}"
            )),
        }
    }

    /// A boolean option, or `default` when absent.
    pub fn bool_or(&mut self, key: &str, default: bool) -> Result<bool, String> {
        match self.take(key) {
            None => Ok(default),
            Some(OptionValue::Bool(v)) => Ok(v),
            Some(other) => Err(format!(
                "{OPTIONS_FIELD}.{key}: expected true or false, got {other:?}"
            )),
        }
    }

    /// A text option, or `default` when absent.
    pub fn text_or(&mut self, key: &str, default: &str) -> Result<String, String> {
        match self.take(key) {
            None => Ok(default.to_string()),
            Some(OptionValue::Text(v)) => Ok(v),
            Some(other) => Err(format!(
                "{OPTIONS_FIELD}.{key}: expected a quoted string, got {other:?}"
            )),
        }
    }

    /// Fails on the first key that was never read, listing what `known` options exist.
    pub fn finish(self, known: &[&str]) -> Result<(), String> {
        match self.entries.iter().find(|(_, _, used)| !used) {
            None => Ok(()),
            Some((key, _, _)) => Err(format!(
                "{OPTIONS_FIELD}.{key}: unknown option (known: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )),
        }
    }
}

fn parse_value(v: &str) -> Result<OptionValue, String> {
    if v.is_empty() {
        return Err("missing value".into());
    }
    if let Some(rest) = v.strip_prefix('"') {
        return parse_basic_string(rest).map(OptionValue::Text);
    }
    if let Some(rest) = v.strip_prefix('\'') {
        let end = rest.find('\'').ok_or("unterminated string")?;
        return Ok(OptionValue::Text(rest[..end].to_string()));
    }
    let bare = strip_comment(v);
    match bare {
        "true" => return Ok(OptionValue::Bool(true)),
        "false" => return Ok(OptionValue::Bool(false)),
        "inf" | "+inf" => return Ok(OptionValue::Number(f64::INFINITY)),
        "-inf" => return Ok(OptionValue::Number(f64::NEG_INFINITY)),
        "nan" | "+nan" | "-nan" => return Ok(OptionValue::Number(f64::NAN)),
        _ => {}
    }
    let digits: String = bare.chars().filter(|c| *c != '_').collect();
    if let Ok(n) = digits.parse::<f64>() {
        return Ok(OptionValue::Number(n));
    }
    Ok(OptionValue::Other(bare.to_string()))
}

fn strip_comment(v: &str) -> &str {
    v.split_once('#').map_or(v, |(before, _)| before).trim()
}

/// The body of a `"..."` string after its opening quote, with the common escapes.
fn parse_basic_string(rest: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Ok(out),
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('"') => out.push('"'),
                Some('\\') => out.push('\\'),
                Some(other) => return Err(format!("unsupported escape `\\{other}`")),
                None => break,
            },
            c => out.push(c),
        }
    }
    Err("unterminated string".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_host_writes() {
        let mut o =
            Options::parse("trim = 0.25\nlr = 1e-2\nsteps = 1_000\nname = \"a \\\"b\\\"\"\nnesterov = false # why\n")
                .unwrap();
        assert_eq!(o.f64_or("trim", 0.0).unwrap(), 0.25);
        assert_eq!(o.f64_or("lr", 0.0).unwrap(), 0.01);
        assert_eq!(o.f64_or("steps", 0.0).unwrap(), 1000.0);
        assert_eq!(o.text_or("name", "").unwrap(), "a \"b\"");
        assert!(!o.bool_or("nesterov", true).unwrap());
        assert_eq!(o.f64_or("absent", 3.0).unwrap(), 3.0);
        o.finish(&[]).unwrap();
    }

    #[test]
    fn errors_name_the_key() {
        let mut o = Options::parse("trim = \"x\"\ntirm = 0.1").unwrap();
        let e = o.f64_or("trim", 0.1).unwrap_err();
        assert!(
            e.starts_with("strategy.aggregator_options.trim: expected a number"),
            "{e}"
        );
        let e = o.finish(&["trim"]).unwrap_err();
        assert_eq!(
            e,
            "strategy.aggregator_options.tirm: unknown option (known: trim)"
        );
        let e = Options::parse("[nested]\nx = 1").unwrap_err();
        assert!(e.contains("nested tables"), "{e}");
        let e = Options::parse("a = 1\na = 2").unwrap_err();
        assert!(e.contains(".a: given twice"), "{e}");
    }
}
