//! The small, shared checks every section uses; each records a violation with its path
//! and returns the parsed value when the input is good.

use url::Url;

use crate::error::{Reason, Violation, Violations};
use crate::path::FieldPath;

/// Collects violations while sections validate.
#[derive(Debug, Default)]
pub struct Check {
    problems: Violations,
}

impl Check {
    /// Records a violation.
    pub fn fail(
        &mut self,
        path: FieldPath,
        reason: Reason,
        message: impl Into<String>,
        allowed: impl Into<String>,
    ) {
        self.problems
            .push(Violation::new(path, reason, message).allowed(allowed));
    }

    /// For tests: what a section returned when nothing was recorded, or the (path,
    /// reason) of every violation.
    #[cfg(test)]
    pub(crate) fn outcome<T>(self, returned: Option<T>) -> Result<T, Vec<(String, Reason)>> {
        match self.into_result() {
            Ok(()) => returned.ok_or_else(Vec::new),
            Err(problems) => Err(problems
                .0
                .into_iter()
                .map(|v| (v.path.to_string(), v.reason))
                .collect()),
        }
    }

    /// How many violations were recorded so far.
    pub fn len(&self) -> usize {
        self.problems.len()
    }

    /// Whether none was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// Records a prepared violation.
    pub fn push(&mut self, violation: Violation) {
        self.problems.push(violation);
    }

    /// `Ok` when nothing was recorded.
    pub fn into_result(self) -> Result<(), Violations> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(self.problems)
        }
    }

    /// A port number, 1–65535.
    pub fn port(&mut self, path: &FieldPath, port: i64) -> Option<u16> {
        match u16::try_from(port) {
            Ok(p) if p > 0 => Some(p),
            _ => {
                self.fail(
                    path.clone(),
                    Reason::OutOfRange,
                    format!("port {port} is out of range"),
                    "a port from 1 to 65535",
                );
                None
            }
        }
    }

    /// A non-empty workload name usable as a Kubernetes object name (RFC 1123 label).
    pub fn name(&mut self, path: &FieldPath, name: &str) {
        if !is_dns_label(name) {
            self.fail(path.clone(), Reason::InvalidFormat, format!("{name:?} is not a valid name"), "lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters");
        }
    }

    /// An absolute URL. `https` is required unless `allow_http`; the error says how to allow http.
    pub fn url(
        &mut self,
        path: &FieldPath,
        text: &str,
        allow_http: bool,
        insecure_flag: &str,
    ) -> Option<Url> {
        let url = match Url::parse(text) {
            Ok(url) => url,
            Err(e) => {
                self.fail(
                    path.clone(),
                    Reason::InvalidFormat,
                    format!("{text:?} is not a URL: {e}"),
                    "an absolute URL such as https://idp.example.com",
                );
                return None;
            }
        };
        match url.scheme() {
            "https" => Some(url),
            "http" if allow_http => Some(url),
            "http" => {
                self.fail(
                    path.clone(),
                    Reason::InsecureUrl,
                    format!("{text:?} uses http; tokens and keys would travel unencrypted"),
                    format!("an https URL, or set {insecure_flag} for development"),
                );
                None
            }
            other => {
                self.fail(
                    path.clone(),
                    Reason::InvalidFormat,
                    format!("scheme {other:?} is not supported"),
                    "an https URL",
                );
                None
            }
        }
    }

    /// An OAuth scope (RFC 6749 §3.3: `1*( %x21 / %x23-5B / %x5D-7E )`).
    pub fn scope(&mut self, path: &FieldPath, scope: &str) -> bool {
        let valid = !scope.is_empty()
            && scope
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if !valid {
            self.fail(
                path.clone(),
                Reason::InvalidFormat,
                format!("{scope:?} is not a valid OAuth scope"),
                "printable ASCII without spaces, quotes or backslashes (RFC 6749 §3.3)",
            );
        }
        valid
    }

    /// A browser origin (`scheme://host[:port]`).
    pub fn origin(&mut self, path: &FieldPath, text: &str) -> Option<Url> {
        match Url::parse(text) {
            Ok(url)
                if matches!(url.scheme(), "http" | "https")
                    && url.path() == "/"
                    && url.query().is_none() =>
            {
                Some(url)
            }
            _ => {
                self.fail(
                    path.clone(),
                    Reason::InvalidFormat,
                    format!("{text:?} is not an origin"),
                    "scheme://host[:port], e.g. https://app.example.com",
                );
                None
            }
        }
    }

    /// An endpoint prefix: empty (none) or `/segment[/segment…]`, no trailing slash kept.
    pub fn endpoint_prefix(&mut self, path: &FieldPath, prefix: &str) -> Option<Option<String>> {
        let trimmed = prefix.trim_end_matches('/');
        if trimmed.is_empty() {
            return Some(None);
        }
        let valid = trimmed.starts_with('/')
            && !trimmed.contains("//")
            && trimmed
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/-._~".contains(c));
        if valid {
            Some(Some(trimmed.to_owned()))
        } else {
            self.fail(
                path.clone(),
                Reason::InvalidFormat,
                format!("{prefix:?} is not a URL path prefix"),
                "a path such as /mcp/github: starts with '/', letters, digits and -._~",
            );
            None
        }
    }

    /// An environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
    pub fn env_name(&mut self, path: &FieldPath, name: &str) -> bool {
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            self.fail(
                path.clone(),
                Reason::InvalidFormat,
                format!("{name:?} is not a valid environment variable name"),
                "letters, digits and '_', not starting with a digit",
            );
        }
        valid
    }

    /// A non-empty string.
    pub fn required(&mut self, path: &FieldPath, value: Option<&str>, what: &str) -> bool {
        let present = value.is_some_and(|v| !v.trim().is_empty());
        if !present {
            self.fail(
                path.clone(),
                Reason::Required,
                format!("{what} is required"),
                format!("set {what}"),
            );
        }
        present
    }
}

/// RFC 1123 label: what Kubernetes accepts as most object names.
pub fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Parses a Go duration (`1h30m`, `1.5h`, `90s`, `500ms`): the format the Go operator
/// and ToolHive users write. Units: ns, us (µs), ms, s, m, h; no sign, no days.
pub fn go_duration(text: &str) -> Option<std::time::Duration> {
    const UNITS: &[(&str, f64)] = &[
        ("ns", 1e-9),
        ("us", 1e-6),
        ("µs", 1e-6),
        ("ms", 1e-3),
        ("s", 1.0),
        ("m", 60.0),
        ("h", 3600.0),
    ];
    let mut rest = text;
    let mut seconds = 0.0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = UNITS.iter().find(|(u, _)| *u == &rest[..unit_len])?.1;
        rest = &rest[unit_len..];
        seconds += value * factor;
    }
    std::time::Duration::try_from_secs_f64(seconds).ok()
}
