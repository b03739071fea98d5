//! Credentials the staging knows about, kept out of everything it shows and stores.
//!
//! They come in three shapes: the userinfo of a URL (`https://user:secret@mirror/conda`),
//! anaconda.org's token path (`https://conda.anaconda.org/t/<token>/channel`), and the bare
//! values of a bound service's credentials. Every URL in every line we write is redacted by
//! shape (see [`crate::staging::log::redact_url`]); on top of that, every secret registered here is
//! replaced wherever it appears, so a secret conda or pip prints outside a URL (or
//! percent-encoded inside one) is hidden too.
//!
//! The registry is process-wide because the log is: every line reaches stdout through
//! `log::emit`, which calls [`scrub`].

use std::sync::RwLock;

const REDACTED: &str = "-redacted-";

/// Shorter values are not searched for as plain text: a two-letter password would blank out
/// every word that contains it. In a URL they are still redacted by shape.
const SHORTEST_SEARCHED: usize = 4;

/// A lone user shorter than this is taken for a name, not a token.
const TOKEN_LENGTH: usize = 8;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Remembers `secret` (and its percent-encoded form, as it appears in a URL) for [`scrub`].
pub(crate) fn register(secret: &str) {
    let secret = secret.trim();
    if secret.chars().count() < SHORTEST_SEARCHED {
        return;
    }
    let mut secrets = SECRETS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for form in [
        secret.to_string(),
        percent_encode(secret),
        percent_decode(secret),
    ] {
        if !secrets.contains(&form) {
            secrets.push(form);
        }
    }
    // The longest first, so that a secret containing another is replaced whole.
    secrets.sort_by_key(|known| std::cmp::Reverse(known.len()));
}

/// Registers the credentials of every URL in `text` (a setting's value, a list of URLs).
pub(crate) fn register_urls_in(text: &str) {
    for url in urls_in(text) {
        if let Some(credentials) = Credentials::of(url) {
            if let Some(password) = credentials.password {
                register(password);
            } else if let Some(user) = credentials.user.filter(|user| user.len() >= TOKEN_LENGTH) {
                // A user with no password is a token (GitHub, Artifactory API keys); a short
                // one is a name (`git@`, `vcap@`) that must not blank out the log's paths.
                register(user);
            }
            if let Some(token) = credentials.token {
                register(token);
            }
        }
    }
}

/// Registers the credentials in every variable of the staging's environment: the documented
/// ones (`CONDA_CHANNEL_ALIAS`, `PIP_INDEX_URL`, `HTTPS_PROXY`...) and any other a user may
/// have put a URL in.
pub(crate) fn register_environment() {
    for (_, value) in std::env::vars_os() {
        let value = value.to_string_lossy();
        if value.contains("://") {
            register_urls_in(&value);
        }
    }
}

/// `text` as it may be shown: URLs redacted by shape, registered secrets replaced.
pub(crate) fn scrub(text: &str) -> String {
    let mut text = crate::staging::log::redact_urls(text);
    let secrets = SECRETS
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for secret in secrets.iter() {
        if text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), REDACTED);
        }
    }
    text
}

/// Every URL in `text` without its credentials (no userinfo, no `/t/<token>`): what a
/// setting means, whichever password it carries. The cache fingerprint hashes this, so a
/// rotated password does not force a rebuild.
pub(crate) fn without_credentials(text: &str) -> String {
    map_urls(text, |url| {
        let Some(credentials) = Credentials::of(url) else {
            return url.to_string();
        };
        let mut plain = url.to_string();
        if let Some(token) = credentials.token {
            plain = plain.replacen(&format!("/t/{token}"), "", 1);
        }
        if let Some(userinfo) = credentials.userinfo {
            plain = plain.replacen(&format!("{userinfo}@"), "", 1);
        }
        plain
    })
}

/// The parts of one URL that are credentials.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Credentials<'a> {
    /// `user:password`, or a lone user (a token).
    pub(crate) userinfo: Option<&'a str>,
    pub(crate) user: Option<&'a str>,
    pub(crate) password: Option<&'a str>,
    /// anaconda.org's `/t/<token>` path segment.
    pub(crate) token: Option<&'a str>,
}

impl<'a> Credentials<'a> {
    /// `None` when `url` carries none.
    pub(crate) fn of(url: &'a str) -> Option<Self> {
        let scheme_end = url.find("://")?;
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        let mut credentials = Self::default();
        if let Some(at) = authority.rfind('@') {
            let userinfo = &authority[..at];
            credentials.userinfo = Some(userinfo);
            match userinfo.split_once(':') {
                Some((user, password)) => {
                    credentials.user = Some(user);
                    credentials.password = Some(password);
                }
                None => credentials.user = Some(userinfo),
            }
        }
        let path = &rest[authority_end..];
        let path = &path[..path.find(['?', '#']).unwrap_or(path.len())];
        if let Some(start) = path.find("/t/") {
            let token = &path[start + 3..];
            let token = &token[..token.find('/').unwrap_or(token.len())];
            if !token.is_empty() {
                credentials.token = Some(token);
            }
        }
        (credentials != Self::default()).then_some(credentials)
    }
}

/// The URLs in a text, as `log::redact_urls` finds them.
pub(crate) fn urls_in(text: &str) -> Vec<&str> {
    url_spans(text)
        .into_iter()
        .map(|(start, end)| &text[start..end])
        .collect()
}

/// Where each URL of `text` starts and ends: from its scheme to the end [`url_end`] finds.
fn url_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut offset = 0;
    while let Some(at) = text[offset..].find("://") {
        let rest = &text[offset..];
        let start = rest[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-')))
            .map_or(0, |before| before + 1);
        let end = url_end(rest, at);
        spans.push((offset + start, offset + end));
        offset += end;
    }
    spans
}

/// Where the URL whose `://` is at `at` ends: at white space, a quote, a bracket or a comma
/// (lists in `CONDA_*` settings are comma-separated).
fn url_end(text: &str, at: usize) -> usize {
    text[at..]
        .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ',' | '`'))
        .map_or(text.len(), |after| at + after)
}

/// `text` with every URL replaced by `change(url)`.
pub(crate) fn map_urls(text: &str, change: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (start, end) in url_spans(text) {
        out.push_str(&text[copied..start]);
        out.push_str(&change(&text[start..end]));
        copied = end;
    }
    out.push_str(&text[copied..]);
    out
}

/// What a URL's userinfo cannot hold as is, percent-encoded.
pub(crate) fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `%XX` escapes decoded, as a URL's user and password are written.
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' && index + 3 <= bytes.len() {
            let digits = std::str::from_utf8(&bytes[index + 1..index + 3]).unwrap_or("");
            if let Ok(byte) = u8::from_str_radix(digits, 16) {
                out.push(byte);
                index += 3;
                continue;
            }
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trailing_escape_is_decoded() {
        assert_eq!(percent_decode("p%40ss%21"), "p@ss!");
        assert_eq!(percent_decode("100%"), "100%");
    }

    #[test]
    fn a_url_names_its_credentials_in_every_shape() {
        let basic = Credentials::of("https://alice:s3cret@mirror/conda").unwrap();
        assert_eq!(
            (basic.user, basic.password, basic.token),
            (Some("alice"), Some("s3cret"), None)
        );
        let token = Credentials::of("https://conda.anaconda.org/t/ab-12cd/private").unwrap();
        assert_eq!(token.token, Some("ab-12cd"));
        assert_eq!(token.userinfo, None);
        assert_eq!(Credentials::of("https://mirror/conda/t"), None);
        assert_eq!(Credentials::of("https://mirror/a@b"), None);
    }

    #[test]
    fn registered_secrets_are_scrubbed_everywhere_even_percent_encoded() {
        register("redact-canary/p@ss");
        assert_eq!(
            scrub("conda said redact-canary/p@ss and redact-canary%2Fp%40ss"),
            "conda said -redacted- and -redacted-"
        );
        register_urls_in("x=http://bob:redact-Canary2@h/c, https://h/t/redact-token-3/c");
        assert_eq!(
            scrub("password redact-Canary2; token redact-token-3"),
            "password -redacted-; token -redacted-"
        );
        // A short lone user is a name: `/home/vcap` stays readable.
        register_urls_in("ssh://vcap@host/x");
        assert_eq!(scrub("/home/vcap/deps"), "/home/vcap/deps");
        // Too short to search for in prose, still hidden inside a URL.
        register("pw");
        assert_eq!(scrub("pwd http://u:pw@h/x"), "pwd http://u:-redacted-@h/x");
    }

    #[test]
    fn without_credentials_a_rotated_password_reads_the_same() {
        assert_eq!(
            without_credentials("https://u:old@mirror/conda,https://mirror/t/tok1/main"),
            "https://mirror/conda,https://mirror/main"
        );
        assert_eq!(
            without_credentials("https://u:old@mirror/conda"),
            without_credentials("https://u:new@mirror/conda")
        );
        assert_eq!(without_credentials("plain value"), "plain value");
    }
}
