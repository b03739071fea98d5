//! The staging log, in Cloud Foundry's conventions (libbuildpack's logger): `-----> ` step
//! lines, detail lines indented by seven spaces, red `**WARNING**`/`**ERROR**` labels and
//! blue `DEBUG:` lines that only appear with `BP_DEBUG`. Operators grep for exactly these.
//!
//! Everything goes to stdout: the builder streams stdout and stderr into one log, and keeping
//! one stream keeps our lines in order.

use std::io::Write;
use std::sync::OnceLock;
use std::time::Duration;

pub(crate) mod filter;
pub(crate) mod heartbeat;

const INDENT: &str = "       ";
const RED: &str = "\x1b[31;1m";
const BLUE: &str = "\x1b[34;1m";
const RESET: &str = "\x1b[0m";

/// `BP_DEBUG` set to anything but empty, `0` or `false` turns debug lines on, as in the CF
/// buildpacks.
pub(crate) fn debug_enabled() -> bool {
    static DEBUG: OnceLock<bool> = OnceLock::new();
    *DEBUG.get_or_init(|| {
        std::env::var("BP_DEBUG")
            .map(|value| !matches!(value.trim(), "" | "0" | "false" | "FALSE" | "False"))
            .unwrap_or(false)
    })
}

fn emit(text: &str) {
    // Every line the buildpack writes passes here: ours, conda's and pip's relayed output,
    // error messages, debug command lines. None may show a credential.
    let text = crate::staging::secrets::scrub(text);
    let mut out = std::io::stdout().lock();
    // A closed stdout (the builder went away) must not turn into a panic mid-staging.
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

fn indented(first_prefix: &str, message: &str) -> String {
    let mut text = String::new();
    for (number, line) in message.lines().enumerate() {
        if number == 0 {
            text.push_str(first_prefix);
        } else {
            text.push_str(INDENT);
        }
        text.push_str(line);
        text.push('\n');
    }
    if message.is_empty() {
        text.push_str(first_prefix.trim_end());
        text.push('\n');
    }
    text
}

/// A step line: `-----> Installing miniconda3 25.7.0`.
pub(crate) fn step(message: &str) {
    emit(&indented("-----> ", message));
}

/// A detail line under the current step, seven spaces in.
pub(crate) fn detail(message: &str) {
    emit(&indented(INDENT, message));
}

pub(crate) fn warning(message: &str) {
    emit(&indented(
        &format!("{INDENT}{RED}**WARNING**{RESET} "),
        message,
    ));
}

pub(crate) fn error(message: &str) {
    emit(&indented(
        &format!("{INDENT}{RED}**ERROR**{RESET} "),
        message,
    ));
}

pub(crate) fn debug(message: &str) {
    if debug_enabled() {
        emit(&indented(&format!("{INDENT}{BLUE}DEBUG:{RESET} "), message));
    }
}

/// `1m 05s`, `3.2s`, `120ms`: durations as a person reads them in a log.
pub(crate) fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1_000 {
        format!("{millis}ms")
    } else if millis < 60_000 {
        #[allow(clippy::cast_precision_loss)]
        let seconds = millis as f64 / 1_000.0;
        format!("{seconds:.1}s")
    } else {
        let seconds = duration.as_secs();
        format!("{}m {:02}s", seconds / 60, seconds % 60)
    }
}

/// `512 B`, `3.4 KiB`, `1.2 GiB`.
pub(crate) fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    #[allow(clippy::cast_precision_loss)]
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Hides the password (and a token-like user) of a URL before it reaches the log:
/// `https://user:secret@host/x` becomes `https://user:-redacted-@host/x`, the form
/// libbuildpack uses, and anaconda.org's token path `/t/<token>/` becomes `/t/-redacted-/`.
pub(crate) fn redact_url(url: &str) -> String {
    let Some(credentials) = crate::staging::secrets::Credentials::of(url) else {
        return url.to_string();
    };
    let mut shown = url.to_string();
    if let Some(token) = credentials.token {
        shown = shown.replacen(&format!("/t/{token}"), "/t/-redacted-", 1);
    }
    if let Some(userinfo) = credentials.userinfo {
        let redacted = match (credentials.user, credentials.password) {
            (Some(user), Some(_)) => format!("{user}:-redacted-"),
            _ => "-redacted-".to_string(),
        };
        shown = shown.replacen(&format!("{userinfo}@"), &format!("{redacted}@"), 1);
    }
    shown
}

/// [`redact_url`] for every URL in a text (a command line, a tool's output).
pub(crate) fn redact_urls(text: &str) -> String {
    crate::staging::secrets::map_urls(text, redact_url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_messages_keep_the_seven_space_indent() {
        assert_eq!(indented("-----> ", "one\ntwo"), "-----> one\n       two\n");
    }

    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(
            redact_url("https://alice:s3cret@proxy.example.com:8080/path?q=1"),
            "https://alice:-redacted-@proxy.example.com:8080/path?q=1"
        );
        assert_eq!(
            redact_url("https://tok3n@host/x"),
            "https://-redacted-@host/x"
        );
        assert_eq!(redact_url("https://host/a@b"), "https://host/a@b");
        assert_eq!(redact_url("file:///tmp/x"), "file:///tmp/x");
        assert_eq!(
            redact_url("https://conda.anaconda.org/t/ab-123/private/noarch"),
            "https://conda.anaconda.org/t/-redacted-/private/noarch"
        );
        assert_eq!(
            redact_urls("CONDA_DEFAULT_CHANNELS=http://a:one@h/main,http://b:two@h/r"),
            "CONDA_DEFAULT_CHANNELS=http://a:-redacted-@h/main,http://b:-redacted-@h/r"
        );
        assert_eq!(
            redact_urls("pip -i https://u:pw@idx/simple x\nsee git+https://t@h/r.git"),
            "pip -i https://u:-redacted-@idx/simple x\nsee git+https://-redacted-@h/r.git"
        );
    }

    #[test]
    fn sizes_and_durations_read_naturally() {
        assert_eq!(format_size(512), "512 B");
        assert_eq!(format_size(3 * 1024 * 1024 + 200_000), "3.2 MiB");
        assert_eq!(format_duration(Duration::from_millis(120)), "120ms");
        assert_eq!(format_duration(Duration::from_millis(3_240)), "3.2s");
        assert_eq!(format_duration(Duration::from_secs(65)), "1m 05s");
    }
}
