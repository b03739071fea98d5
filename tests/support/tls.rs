//! A company's private certificate authority and a mirror it signed: a CA and a server
//! certificate for 127.0.0.1 made with the `openssl` command at test time, and a loopback
//! HTTPS file server (python3's http.server behind ssl) over a directory.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub(crate) struct PrivateCa {
    /// The CA's certificate, alone in its directory (what `CF_SYSTEM_CERT_PATH` names).
    pub(crate) cert_dir: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
}

impl PrivateCa {
    /// Made in `dir` (which the staging container must be able to read).
    pub(crate) fn new(dir: &Path) -> Self {
        let cert_dir = dir.join("trusted");
        std::fs::create_dir_all(&cert_dir).unwrap();
        let openssl = |args: &[&str]| {
            let output = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=Example Corp Root CA",
            "-keyout",
            "ca.key",
            "-out",
            "trusted/corp-ca.pem",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "trusted/corp-ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ]);
        Self {
            cert_dir,
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
        }
    }
}

/// An HTTPS server over `root`, signed by the private CA; stopped when dropped.
pub(crate) struct TlsServer {
    child: Child,
    port: u16,
}

const SERVE: &str = r#"
import http.server, ssl, sys, os, functools
root, cert, key = sys.argv[1], sys.argv[2], sys.argv[3]
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass
handler = functools.partial(Quiet, directory=root)
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

impl TlsServer {
    pub(crate) fn start(root: &Path, ca: &PrivateCa) -> Self {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(SERVE)
            .arg(root)
            .arg(&ca.server_cert)
            .arg(&ca.server_key)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the TLS server's port");
        Self { child, port }
    }

    pub(crate) fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
