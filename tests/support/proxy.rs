//! A corporate HTTP proxy that wants credentials: `407 Proxy Authentication Required` unless
//! the request carries `Proxy-Authorization: Basic <user:password>`, and with them forwards
//! absolute-form GETs (`GET http://host:port/path`) to their server and relays the answer. It
//! counts what it forwarded and what it refused.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

pub(crate) struct Proxy {
    port: u16,
    forwarded: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    /// A proxy that lets through requests with these credentials.
    pub(crate) fn start(user: &str, password: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let expected = format!("Basic {}", base64(format!("{user}:{password}").as_bytes()));
        let forwarded = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (forwarded_count, refused_count, accept_stop) = (
            Arc::clone(&forwarded),
            Arc::clone(&refused),
            Arc::clone(&stop),
        );
        thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let expected = expected.clone();
                let (forwarded, refused) =
                    (Arc::clone(&forwarded_count), Arc::clone(&refused_count));
                thread::spawn(move || {
                    let _ = handle(stream, &expected, &forwarded, &refused);
                });
            }
        });
        Self {
            port,
            forwarded,
            refused,
            stop,
        }
    }

    /// The proxy's URL with credentials, as an operator writes `HTTP_PROXY`.
    pub(crate) fn url_with(&self, user: &str, password: &str) -> String {
        format!("http://{user}:{password}@127.0.0.1:{}", self.port)
    }

    pub(crate) fn forwarded(&self) -> usize {
        self.forwarded.load(Ordering::SeqCst)
    }

    pub(crate) fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn handle(
    mut client: TcpStream,
    expected: &str,
    forwarded: &AtomicUsize,
    refused: &AtomicUsize,
) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut authorization = None;
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" || header == "\n" {
            break;
        }
        let (name, value) = header.split_once(':').unwrap_or((header.as_str(), ""));
        let name = name.trim().to_ascii_lowercase();
        if name == "proxy-authorization" {
            authorization = Some(value.trim().to_string());
        } else if !matches!(name.as_str(), "host" | "connection" | "proxy-connection") {
            headers.push(header.trim_end().to_string());
        }
    }
    if authorization.as_deref() != Some(expected) {
        refused.fetch_add(1, Ordering::SeqCst);
        write!(
            client,
            "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"fixture\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )?;
        return Ok(());
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("");
    let Some(rest) = target.strip_prefix("http://") else {
        // CONNECT (https) and origin-form requests are not what this proxy is for.
        write!(
            client,
            "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )?;
        return Ok(());
    };
    let (authority, path) = rest.find('/').map_or((rest, "/"), |at| rest.split_at(at));
    let mut upstream = TcpStream::connect(authority)?;
    write!(
        upstream,
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n"
    )?;
    for header in headers {
        write!(upstream, "{header}\r\n")?;
    }
    write!(upstream, "\r\n")?;
    forwarded.fetch_add(1, Ordering::SeqCst);
    let mut answer = Vec::new();
    upstream.read_to_end(&mut answer)?;
    client.write_all(&answer)?;
    let _ = client.shutdown(Shutdown::Write);
    Ok(())
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::new();
    for chunk in bytes.chunks(3) {
        let value = chunk
            .iter()
            .enumerate()
            .fold(0_u32, |value, (index, byte)| {
                value | u32::from(*byte) << (16 - 8 * index)
            });
        for index in 0..4 {
            if index <= chunk.len() {
                text.push(char::from(
                    ALPHABET[(value >> (18 - 6 * index) & 63) as usize],
                ));
            } else {
                text.push('=');
            }
        }
    }
    text
}
