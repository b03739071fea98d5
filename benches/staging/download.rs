//! Figure 4: downloading with the sha256 check against curl piped to sha256sum.

use super::*;

pub(crate) fn bench_download(config: &Config, scratch: &Path, report: &mut Report) {
    progress(&format!(
        "== download of {} MiB over loopback",
        config.download_mib
    ));
    let file = download_file(config.download_mib);
    let sha256 = {
        let output = Command::new("sha256sum").arg(&file).output().unwrap();
        String::from_utf8_lossy(&output.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    let server = FileServer::start(&file);
    let dir = scratch.join("download");
    fs::create_dir_all(&dir).unwrap();
    // A manifest whose one dependency is the big file: `package --cached` fetches it with
    // `download::fetch_verified`, exactly as staging fetches an installer.
    let manifest = dir.join("manifest.yml");
    fs::write(
        &manifest,
        format!(
            "---\nlanguage: conda\ndefault_versions:\n  - name: miniconda3-py39\n    version: 25.7.x\n\
             dependencies:\n  - name: miniconda3-py39\n    version: 25.7.0\n    \
             uri: {}/Miniconda3-py39_25.7.0-2-Linux-x86_64.sh\n    sha256: {sha256}\n    \
             cf_stacks:\n      - cflinuxfs4\ninclude_files:\n  - README.md\n  - VERSION\n  \
             - bin/supply\n  - manifest.yml\n",
            server.url()
        ),
    )
    .unwrap();
    let mut product = Vec::new();
    let mut curl = Vec::new();
    let mut curl_wall = Vec::new();
    let mut curl_alone = Vec::new();
    for _ in 0..config.runs {
        let cache = dir.join("download-cache");
        let _ = fs::remove_dir_all(&cache);
        package(&manifest, &dir.join("zips"), Some(&cache));
        product.push(server.last_transfer());
        let _ = fs::remove_dir_all(dir.join("zips"));
        let _ = fs::remove_dir_all(&cache);

        let started = Instant::now();
        let output = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "curl -sS {}/Miniconda3-py39_25.7.0-2-Linux-x86_64.sh | sha256sum",
                server.url()
            ))
            .output()
            .unwrap();
        curl_wall.push(started.elapsed());
        assert!(
            String::from_utf8_lossy(&output.stdout).starts_with(&sha256),
            "curl | sha256sum disagrees"
        );
        curl.push(server.last_transfer());

        // The transfer alone, for scale: what the network path allows without a hash.
        let status = Command::new("curl")
            .arg("-sS")
            .arg("-o")
            .arg("/dev/null")
            .arg(format!(
                "{}/Miniconda3-py39_25.7.0-2-Linux-x86_64.sh",
                server.url()
            ))
            .status()
            .unwrap();
        assert!(status.success(), "curl failed");
        curl_alone.push(server.last_transfer());
    }
    report.download(
        config.download_mib,
        &product,
        &curl,
        &curl_wall,
        &curl_alone,
    );
}

/// A deterministic incompressible file of `mib` MiB, kept under target/ between runs.
pub(crate) fn download_file(mib: u64) -> PathBuf {
    let dir = support::repo().join("target/bench-fixtures");
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("download-{mib}m.bin"));
    if fs::metadata(&path).is_ok_and(|metadata| metadata.len() == mib << 20) {
        return path;
    }
    let partial = path.with_extension("partial");
    let mut writer = std::io::BufWriter::new(fs::File::create(&partial).unwrap());
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut block = vec![0_u8; 1 << 20];
    for _ in 0..mib {
        for chunk in block.chunks_exact_mut(8) {
            // xorshift64*: fast, fixed, and nothing a compressor can shrink.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            chunk.copy_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        writer.write_all(&block).unwrap();
    }
    writer.flush().unwrap();
    drop(writer);
    fs::rename(&partial, &path).unwrap();
    path
}

/// A loopback server for one file that gets out of the way: `sendfile(2)` via `io::copy`, and
/// the time from the request to the last byte handed to the socket, measured on the server so
/// the two clients are timed by the same clock and the same rule.
pub(crate) struct FileServer {
    pub(crate) port: u16,
    pub(crate) transfers: Arc<Mutex<Vec<Duration>>>,
}

impl FileServer {
    pub(crate) fn start(file: &Path) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let transfers = Arc::new(Mutex::new(Vec::new()));
        let (file, record) = (file.to_path_buf(), Arc::clone(&transfers));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 2 {
                    line.clear();
                }
                let started = Instant::now();
                let mut body = fs::File::open(&file).unwrap();
                let length = body.metadata().unwrap().len();
                let sent = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\
                     Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
                )
                .and_then(|()| std::io::copy(&mut body, &mut stream));
                if sent.is_ok() {
                    record.lock().unwrap().push(started.elapsed());
                }
                let _ = stream.shutdown(std::net::Shutdown::Write);
                // Let the client close first, so no reset cuts the last bytes.
                let _ = reader.read_to_end(&mut Vec::new());
            }
        });
        Self { port, transfers }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub(crate) fn last_transfer(&self) -> Duration {
        *self
            .transfers
            .lock()
            .unwrap()
            .last()
            .expect("the server saw the download")
    }
}
