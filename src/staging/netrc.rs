//! The staging's `~/.netrc`: the credentials of every channel and index URL, by host.
//!
//! A password in a channel URL reaches conda's repodata requests, but not always its package
//! downloads: with the rattler solver (Miniforge >= 26.5), the records it solves carry URLs
//! without the userinfo, and the mirror answers 401 (measured with conda 26.7.1 and
//! conda-rattler-solver 0.1.0). conda's `CondaHttpAuth` and pip both fall back to `~/.netrc`
//! for a request without credentials, so every host's credentials are written there too:
//! in conda's scratch home (the cache's work dir, never the droplet), readable by its owner
//! only, and removed as soon as conda is done.
//!
//! anaconda.org's `/t/<token>/` path is lost the same way; conda adds a token to a request
//! that has none from anaconda-client's token files (`$BINSTAR_CONFIG_DIR/data/<url>.token`,
//! for every URL under `<url>`), so each token is written there as well.

use std::fs;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::staging::secrets::Credentials;

/// `~/.netrc`, removed when dropped: it holds credentials.
pub(crate) struct StagingNetrc {
    path: PathBuf,
}

impl Drop for StagingNetrc {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Writes `home/.netrc` with the user and password of every URL in `texts` (the first for a
/// host wins); nothing when none has both.
pub(crate) fn write<'a>(
    home: &Path,
    texts: impl IntoIterator<Item = &'a str>,
) -> io::Result<Option<StagingNetrc>> {
    let text = render(texts);
    if text.is_empty() {
        return Ok(None);
    }
    let path = home.join(".netrc");
    crate::io::fsutil::write_owner_only(&path, text.as_bytes())?;
    Ok(Some(StagingNetrc { path }))
}

/// The token files directory (`BINSTAR_CONFIG_DIR`), removed when dropped.
pub(crate) struct StagingTokens {
    pub(crate) dir: PathBuf,
}

impl Drop for StagingTokens {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Writes a token file under `dir/data` for every URL in `texts` with a `/t/<token>` path:
/// named after the URL before `/t/`, so conda adds the token to every URL beneath it.
pub(crate) fn write_tokens<'a>(
    dir: &Path,
    texts: impl IntoIterator<Item = &'a str>,
) -> io::Result<Option<StagingTokens>> {
    let mut tokens: Vec<(String, String)> = Vec::new();
    for source in texts {
        for url in crate::staging::secrets::urls_in(source) {
            let Some(token) = Credentials::of(url).and_then(|credentials| credentials.token) else {
                continue;
            };
            let Some(at) = url.find(&format!("/t/{token}")) else {
                continue;
            };
            let prefix = crate::staging::secrets::without_credentials(&url[..at]);
            if !tokens.iter().any(|(known, _)| *known == prefix) {
                tokens.push((prefix, token.to_string()));
            }
        }
    }
    if tokens.is_empty() {
        return Ok(None);
    }
    let data = dir.join("data");
    fs::create_dir_all(&data)?;
    let guard = StagingTokens {
        dir: dir.to_path_buf(),
    };
    for (prefix, token) in tokens {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(data.join(format!("{}.token", quote_plus(&prefix))))?;
        io::Write::write_all(&mut file, token.as_bytes())?;
    }
    Ok(Some(guard))
}

/// Python's `urllib.parse.quote_plus`, which conda undoes to read a token file's URL.
fn quote_plus(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        match byte {
            b' ' => out.push('+'),
            _ if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') => {
                out.push(char::from(byte));
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

fn render<'a>(texts: impl IntoIterator<Item = &'a str>) -> String {
    let mut hosts: Vec<String> = Vec::new();
    let mut text = String::new();
    for source in texts {
        for url in crate::staging::secrets::urls_in(source) {
            let Some(Credentials {
                user: Some(user),
                password: Some(password),
                ..
            }) = Credentials::of(url)
            else {
                continue;
            };
            let Some(host) = host_of(url) else { continue };
            let (user, password) = (
                crate::staging::secrets::percent_decode(user),
                crate::staging::secrets::percent_decode(password),
            );
            // netrc's words end at white space; a quote would need escapes Python's reader
            // does not share with every other.
            let plain = |word: &str| {
                !word.is_empty() && !word.contains(char::is_whitespace) && !word.contains('"')
            };
            if hosts.contains(&host) || !plain(&user) || !plain(&password) {
                continue;
            }
            text.push_str(&format!(
                "machine {host} login {user} password {password}\n"
            ));
            hosts.push(host);
        }
    }
    text
}

/// The host of a URL, without userinfo or port: what netrc readers look up.
fn host_of(url: &str) -> Option<String> {
    let rest = &url[url.find("://")? + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = if host_port.starts_with('[') {
        &host_port[..host_port.find(']').map_or(host_port.len(), |end| end + 1)]
    } else {
        host_port.split(':').next().unwrap_or(host_port)
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_host_gets_the_first_user_and_password_decoded() {
        assert_eq!(
            render([
                "https://u:p%40ss@Mirror.corp:8443/conda",
                "https://mirror.corp/other,https://x:y@mirror.corp/z",
                "https://anaconda.org/t/token/c",
                "http://bob:two@127.0.0.1:1234/channels",
            ]),
            "machine mirror.corp login u password p@ss\nmachine 127.0.0.1 login bob password two\n"
        );
    }

    #[test]
    fn a_token_file_is_named_after_the_url_before_its_token_path() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("binstar");
        let written = write_tokens(&tokens, ["http://127.0.0.1:8/channels/t/tok-1/conda-forge"])
            .unwrap()
            .unwrap();
        let file = tokens.join("data/http%3A%2F%2F127.0.0.1%3A8%2Fchannels.token");
        assert_eq!(fs::read_to_string(&file).unwrap(), "tok-1");
        drop(written);
        assert!(!tokens.exists());
        assert!(write_tokens(&tokens, ["http://h/c"]).unwrap().is_none());
    }

    #[test]
    fn the_file_is_private_and_removed_when_dropped() {
        use std::os::unix::fs::PermissionsExt;
        let home = tempfile::tempdir().unwrap();
        let written = write(home.path(), ["http://a:b@h/c"]).unwrap().unwrap();
        let path = home.path().join(".netrc");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        drop(written);
        assert!(!path.exists());
        assert!(write(home.path(), ["http://h/c"]).unwrap().is_none());
    }
}
