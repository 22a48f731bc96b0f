//! `key=value` options as taken by `--property`, `--config` and friends.

use anyhow::{bail, Result};

/// Splits `key=value` (the value may itself contain `=`).
pub fn parse_pair(raw: &str, flag: &str) -> Result<(String, String)> {
    match raw.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => bail!("invalid {flag} '{raw}': expected key=value"),
    }
}

/// Parses every entry of a repeated `key=value` flag.
pub fn parse_pairs(raw: &[String], flag: &str) -> Result<Vec<(String, String)>> {
    raw.iter().map(|r| parse_pair(r, flag)).collect()
}

/// Last value given for `key`, if any.
pub fn lookup<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Boolean property with Kafka's leniency (case-insensitive "true").
pub fn flag(pairs: &[(String, String)], key: &str, default: bool) -> bool {
    lookup(pairs, key).map_or(default, |v| v.trim().eq_ignore_ascii_case("true"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs() {
        assert_eq!(
            parse_pair("a=b=c", "--property").unwrap(),
            ("a".into(), "b=c".into())
        );
        assert_eq!(
            parse_pair("sep=", "--property").unwrap(),
            ("sep".into(), "".into())
        );
        assert!(parse_pair("novalue", "--config").is_err());
        assert!(parse_pair("=x", "--config").is_err());
        let all =
            parse_pairs(&["x=1".into(), "x=2".into(), "p=TRUE".into()], "--property").unwrap();
        assert_eq!(lookup(&all, "x"), Some("2"));
        assert!(flag(&all, "p", false));
        assert!(!flag(&all, "missing", false));
    }
}
