//! A loopback HTTP server for the fixtures: `/installers/...` from the installers directory,
//! every other path from the channels directory (so `CONDA_CHANNEL_ALIAS=<url>` makes
//! `conda-forge` mean `<url>/conda-forge`). It counts every request, and misbehaves on
//! request to reproduce the faults real networks have. A file may carry extra response
//! headers in a `<file>.headers` beside it, `{port}` standing for the server's port.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// A fault served for requests whose path ends with a given suffix.
#[derive(Debug, Clone)]
pub(crate) enum Fault {
    /// Answer with this status for the next `times` requests, then serve normally.
    Status { status: u16, times: usize },
    /// Announce the whole length, send this many bytes, close.
    Truncate(usize),
    /// Close the connection without answering.
    Reset,
    /// Send the headers, then nothing for this long.
    Stall(Duration),
    /// Redirect to the same URL, forever.
    RedirectLoop,
    /// Serve the file with its bytes altered (a tampering mirror).
    Tamper,
    /// Send the body in pieces of this many bytes with this pause between them: a slow link
    /// that never stalls.
    Trickle { bytes: usize, pause: Duration },
}

#[derive(Default)]
struct State {
    counts: HashMap<String, usize>,
    faults: Vec<(String, Fault)>,
}

pub(crate) struct Server {
    port: u16,
    root: PathBuf,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    /// Serves the fixtures at `root` (the fixture build directory).
    pub(crate) fn start(root: &Path) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (accept_state, accept_stop, accept_root) =
            (Arc::clone(&state), Arc::clone(&stop), root.to_path_buf());
        thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let state = Arc::clone(&accept_state);
                let root = accept_root.clone();
                thread::spawn(move || {
                    let _ = handle(stream, &root, &state, port);
                });
            }
        });
        Self {
            port,
            root: root.to_path_buf(),
            state,
            stop,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    pub(crate) fn fault(&self, path_suffix: &str, fault: Fault) {
        self.state
            .lock()
            .unwrap()
            .faults
            .push((path_suffix.to_string(), fault));
    }

    pub(crate) fn clear_faults(&self) {
        self.state.lock().unwrap().faults.clear();
    }

    /// Requests per path so far.
    pub(crate) fn counts(&self) -> HashMap<String, usize> {
        self.state.lock().unwrap().counts.clone()
    }

    /// Requests for conda package files (`.tar.bz2`, `.conda`) so far.
    pub(crate) fn package_downloads(&self) -> HashMap<String, usize> {
        self.counts()
            .into_iter()
            .filter(|(path, _)| path.ends_with(".tar.bz2") || path.ends_with(".conda"))
            .collect()
    }

    pub(crate) fn requests_ending_with(&self, suffix: &str) -> usize {
        self.counts()
            .iter()
            .filter(|(path, _)| path.ends_with(suffix))
            .map(|(_, count)| count)
            .sum()
    }

    pub(crate) fn total_requests(&self) -> usize {
        self.counts().values().sum()
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn handle(stream: TcpStream, root: &Path, state: &Mutex<State>, port: u16) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" || header == "\n" {
            break;
        }
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("/");
    // Absolute-form (through a proxy) or origin-form.
    let path = target.strip_prefix("http://").map_or(target, |rest| {
        rest.find('/').map_or("/", |slash| &rest[slash..])
    });
    let path = path.split('?').next().unwrap_or(path).to_string();
    let fault = {
        let mut state = state.lock().unwrap();
        *state.counts.entry(path.clone()).or_default() += 1;
        let mut chosen = None;
        for (suffix, fault) in &mut state.faults {
            if path.ends_with(suffix.as_str()) {
                match fault {
                    Fault::Status { times, .. } if *times == 0 => continue,
                    Fault::Status { status, times } => {
                        *times -= 1;
                        chosen = Some(Fault::Status {
                            status: *status,
                            times: 0,
                        });
                    }
                    other => chosen = Some(other.clone()),
                }
                break;
            }
        }
        chosen
    };
    let mut stream = stream;
    match fault {
        Some(Fault::Reset) => {
            let _ = stream.shutdown(Shutdown::Both);
            return Ok(());
        }
        Some(Fault::Status { status, .. }) => {
            return write!(
                stream,
                "HTTP/1.1 {status} Fault\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
        Some(Fault::RedirectLoop) => {
            return write!(
                stream,
                "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{port}{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
        _ => {}
    }
    let Some(file) = resolve(root, &path) else {
        return write!(
            stream,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    };
    let mut body = fs::read(&file)?;
    if matches!(fault, Some(Fault::Tamper)) {
        for byte in body.iter_mut().step_by(97) {
            *byte ^= 0x5a;
        }
    }
    // pip reads an index page only when it says it is HTML.
    let content_type = if file
        .extension()
        .is_some_and(|extension| extension == "html")
    {
        "text/html"
    } else {
        "application/octet-stream"
    };
    // A `<file>.headers` beside the file adds its lines to the answer (a `Link:` header, as
    // GitHub's paged API sends).
    let mut sidecar = file.clone().into_os_string();
    sidecar.push(".headers");
    let extra: String = fs::read_to_string(sidecar)
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| format!("{}\r\n", line.replace("{port}", &port.to_string())))
        .collect();
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: {content_type}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    )?;
    if method == "HEAD" {
        return Ok(());
    }
    match fault {
        Some(Fault::Truncate(bytes)) => {
            stream.write_all(&body[..bytes.min(body.len())])?;
            let _ = stream.shutdown(Shutdown::Both);
        }
        Some(Fault::Trickle { bytes, pause }) => {
            for piece in body.chunks(bytes.max(1)) {
                stream.write_all(piece)?;
                stream.flush()?;
                thread::sleep(pause);
            }
        }
        Some(Fault::Stall(duration)) => {
            stream.write_all(&body[..body.len().min(1024)])?;
            stream.flush()?;
            thread::sleep(duration);
        }
        _ => stream.write_all(&body)?,
    }
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Write);
    Ok(())
}

fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let relative = path.trim_start_matches('/');
    if relative.split('/').any(|part| part == "..") {
        return None;
    }
    let file = if let Some(rest) = relative.strip_prefix("installers/") {
        root.join("installers").join(rest)
    } else {
        root.join("channels").join(relative)
    };
    // A folder answers with its index.html, as a PEP 503 simple index does.
    let file = if file.is_dir() {
        file.join("index.html")
    } else {
        file
    };
    file.is_file().then_some(file)
}
