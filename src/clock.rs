//! The clock of this process, injected at the edges: commands and the engine take the time as a
//! value, so a test or a reproducible run can pin it with `ELICENCE_NOW`.

use chrono::{DateTime, Utc};

/// The current time, or `ELICENCE_NOW` (RFC 3339) when set: same input, keys and `ELICENCE_NOW`
/// give byte-identical artefacts. Fails when `ELICENCE_NOW` is not an RFC 3339 time.
pub fn now() -> anyhow::Result<DateTime<Utc>> {
    match std::env::var("ELICENCE_NOW") {
        Ok(s) if !s.is_empty() => Ok(DateTime::parse_from_rfc3339(&s)
            .map_err(|e| anyhow::anyhow!("ELICENCE_NOW={s:?} is not an RFC 3339 time: {e}"))?
            .with_timezone(&Utc)),
        _ => Ok(Utc::now()),
    }
}
