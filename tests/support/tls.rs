//! A company's private certificate authority and a mirror it signed: a CA and a server
//! certificate for 127.0.0.1 made with the `openssl` command at test time, and a loopback
//! file server (python3's http.server, behind ssl, with basic auth if asked) over a directory.

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

/// A mirror over `root` (python3's http.server): HTTPS signed by a private CA when given
/// one, and, when given passwords, demanding basic auth (`401` without it) or one of them as
/// an anaconda.org token (`/t/<token>/` anywhere in the path). Stopped when dropped.
pub(crate) struct TlsServer {
    child: Child,
    port: u16,
    scheme: &'static str,
}

const SERVE: &str = r#"
import base64, functools, http.server, ssl, sys
root, cert, key, user = sys.argv[1:5]
passwords = sys.argv[5:]
accepted = {"Basic " + base64.b64encode(f"{user}:{p}".encode()).decode() for p in passwords}
class Mirror(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        self.authorised(super().do_GET)
    def do_HEAD(self):
        self.authorised(super().do_HEAD)
    def authorised(self, serve):
        if passwords:
            parts = self.path.split("/")
            if "t" in parts and parts.index("t") + 1 < len(parts):
                at = parts.index("t")
                token = parts[at + 1]
                del parts[at:at + 2]
                self.path = "/".join(parts)
                if token not in passwords:
                    self.send_error(403)
                    return
            elif self.headers.get("Authorization") not in accepted:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="mirror"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        serve()
    def log_message(self, *args):
        pass
handler = functools.partial(Mirror, directory=root)
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
if cert != "-":
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

impl TlsServer {
    /// An HTTPS server over `root`, signed by `ca`, open to all.
    pub(crate) fn start(root: &Path, ca: &PrivateCa) -> Self {
        Self::mirror(root, Some(ca), "", &[])
    }

    /// A mirror over `root` that wants `user` with one of `passwords` (or one of them as a
    /// token), over HTTPS when `ca` is given.
    pub(crate) fn mirror(
        root: &Path,
        ca: Option<&PrivateCa>,
        user: &str,
        passwords: &[&str],
    ) -> Self {
        let mut command = Command::new("python3");
        command.arg("-c").arg(SERVE).arg(root);
        match ca {
            Some(ca) => command.arg(&ca.server_cert).arg(&ca.server_key),
            None => command.arg("-").arg("-"),
        };
        let mut child = command
            .arg(user)
            .args(passwords)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the mirror's port");
        Self {
            child,
            port,
            scheme: if ca.is_some() { "https" } else { "http" },
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
