//! Checks on what a consumer types: department codes, reasons (事由), notes, search keys. Every
//! value is bounded and free of control characters before it reaches the registry or the audit
//! trail; SQL is always parameterised, so an injection-shaped value is just a value that fails
//! these checks or matches nothing. Pure: no I/O.

use thiserror::Error;

use crate::codes::{CodeError, check_uscc};

/// Longest reason, note, department name (characters).
pub const MAX_TEXT: usize = 200;
/// Longest search key or credential (characters).
pub const MAX_KEY: usize = 128;

/// A value that cannot be accepted, with the flag it came from.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InputError {
    #[error("{field} is required")]
    Missing { field: &'static str },
    #[error("{field} is {found} characters, at most {max}")]
    TooLong { field: &'static str, max: usize, found: usize },
    #[error("{field} has a control character (U+{code:04X}) at position {position}")]
    ControlChar { field: &'static str, position: usize, code: u32 },
    #[error("{field} is not a unified social credit code: {source}")]
    BadCode {
        field: &'static str,
        #[source]
        source: CodeError,
    },
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

/// A free-text value (reason, note, name): trimmed, non-empty, at most `max` characters, no
/// control characters.
pub fn text(field: &'static str, value: Option<&str>, max: usize) -> Result<String, InputError> {
    let value = value.map(str::trim).unwrap_or_default();
    if value.is_empty() {
        return Err(InputError::Missing { field });
    }
    bounded(field, value, max)?;
    Ok(value.to_string())
}

/// Fails when `value` is longer than `max` characters or holds a control character.
pub fn bounded(field: &'static str, value: &str, max: usize) -> Result<(), InputError> {
    let found = value.chars().count();
    if found > max {
        return Err(InputError::TooLong { field, max, found });
    }
    if let Some((position, c)) = value.chars().enumerate().find(|(_, c)| c.is_control()) {
        return Err(InputError::ControlChar { field, position, code: u32::from(c) });
    }
    Ok(())
}

/// A department code: an 18-character USCC with a correct check character.
pub fn department_code(field: &'static str, value: &str) -> Result<String, InputError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(InputError::Missing { field });
    }
    bounded(field, value, MAX_KEY)?;
    check_uscc(value).map_err(|source| InputError::BadCode { field, source })?;
    Ok(value.to_string())
}

/// A search key (holder code, printed number): bounded, no control characters, no spaces or
/// quotes (no real code or number has them).
pub fn search_key(field: &'static str, value: &str) -> Result<String, InputError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(InputError::Missing { field });
    }
    bounded(field, value, MAX_KEY)?;
    if let Some(c) = value.chars().find(|c| c.is_whitespace() || "'\";`\\".contains(*c)) {
        return Err(InputError::Invalid {
            field,
            reason: format!("character {c:?} is not allowed"),
        });
    }
    Ok(value.to_string())
}

/// A value shortened for an audit entry about a refused input (at most 64 characters, control
/// characters shown as `\u{..}`), so a hostile value neither bloats nor garbles the trail.
pub fn for_audit(value: &str) -> String {
    let mut out = String::new();
    for (i, c) in value.chars().enumerate() {
        if i == 64 {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_required_bounded_and_printable() {
        assert_eq!(text("--reason", Some("  办理医保定点  "), MAX_TEXT).unwrap(), "办理医保定点");
        assert_eq!(
            text("--reason", None, MAX_TEXT),
            Err(InputError::Missing { field: "--reason" })
        );
        assert_eq!(
            text("--reason", Some("  "), MAX_TEXT),
            Err(InputError::Missing { field: "--reason" })
        );
        let long = "事".repeat(201);
        assert!(matches!(
            text("--reason", Some(&long), MAX_TEXT),
            Err(InputError::TooLong { found: 201, .. })
        ));
        assert!(matches!(
            text("--reason", Some("a\u{1b}[2Jb"), MAX_TEXT),
            Err(InputError::ControlChar { position: 1, code: 0x1b, .. })
        ));
    }

    #[test]
    fn department_codes_are_usccs() {
        assert!(department_code("--as", "11220100MB18300819").is_ok());
        assert!(matches!(department_code("--as", "' OR 1=1 --"), Err(InputError::BadCode { .. })));
        assert!(matches!(
            department_code("--as", "11220100MB18300818"),
            Err(InputError::BadCode { source: CodeError::BadCheckChar { .. }, .. })
        ));
    }

    #[test]
    fn search_keys_refuse_quotes_and_spaces() {
        assert!(search_key("--number", "JY12201040000016").is_ok());
        assert!(matches!(search_key("--number", "' OR 1=1 --"), Err(InputError::Invalid { .. })));
    }

    #[test]
    fn audit_copies_are_short_and_printable() {
        let s = for_audit(&format!("a\u{7}{}", "x".repeat(100)));
        assert!(s.starts_with("a\\u{7}x"));
        assert!(s.chars().count() < 80);
    }
}
