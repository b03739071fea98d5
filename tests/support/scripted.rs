//! Scripted buildpacks, for the stories about the local Cloud Foundry itself: zips written
//! byte by byte (so a test controls exactly which Unix modes a zip stores, or that it stores
//! none), a tiny app in a workspace, `local-cf stage` run on them, and the droplet's members
//! read with their modes.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::{LOCAL_CF, world};

/// One entry of a hand-written zip.
struct ZipEntry {
    name: String,
    data: Vec<u8>,
    /// Full Unix mode (type and permission bits); `None` writes the entry as a DOS-made zip
    /// without Unix attributes, like zips made on Windows or by careless tools.
    mode: Option<u32>,
}

/// A scripted buildpack, written as a zip on demand.
pub struct Buildpack {
    file_name: String,
    entries: Vec<ZipEntry>,
    store_modes: bool,
    top_folder: Option<String>,
}

impl Buildpack {
    pub fn new(file_name: &str) -> Self {
        Self {
            file_name: file_name.to_owned(),
            entries: Vec::new(),
            store_modes: true,
            top_folder: None,
        }
    }

    /// An executable bash script under `bin/`, e.g. `script("supply", "echo hi")`.
    pub fn script(mut self, name: &str, body: &str) -> Self {
        let text = format!("#!/bin/bash\nset -e\n{body}\n");
        self.entries.push(ZipEntry {
            name: format!("bin/{name}"),
            data: text.into_bytes(),
            mode: Some(0o100_755),
        });
        self
    }

    /// `bin/release` printing `web: COMMAND` as default process type.
    pub fn release_web(self, command: &str) -> Self {
        let body = format!("cat <<'YAML'\n---\ndefault_process_types:\n  web: {command}\nYAML");
        self.script("release", &body)
    }

    pub fn file(mut self, name: &str, content: &str, mode: u32) -> Self {
        self.entries.push(ZipEntry {
            name: name.to_owned(),
            data: content.as_bytes().to_vec(),
            mode: Some(0o100_000 | mode),
        });
        self
    }

    pub fn symlink(mut self, name: &str, target: &str) -> Self {
        self.entries.push(ZipEntry {
            name: name.to_owned(),
            data: target.as_bytes().to_vec(),
            mode: Some(0o120_777),
        });
        self
    }

    /// An entry with exactly this name, bytes and full Unix mode (type bits included): for
    /// the entries no sane tool writes (a device, `../x`).
    pub fn raw_entry(mut self, name: &str, data: &[u8], mode: u32) -> Self {
        self.entries.push(ZipEntry {
            name: name.to_owned(),
            data: data.to_vec(),
            mode: Some(mode),
        });
        self
    }

    /// Write the zip without any Unix mode, as CF then leaves `bin/*` non-executable.
    pub fn without_modes(mut self) -> Self {
        self.store_modes = false;
        self
    }

    /// Put everything under one top folder, as `zip -r bp.zip bp/` does.
    pub fn under_folder(mut self, folder: &str) -> Self {
        self.top_folder = Some(folder.to_owned());
        self
    }

    pub fn write(&self, dir: &Path) -> PathBuf {
        let path = dir.join(&self.file_name);
        let entries: Vec<ZipEntry> = self
            .entries
            .iter()
            .map(|entry| ZipEntry {
                name: match &self.top_folder {
                    Some(folder) => format!("{folder}/{}", entry.name),
                    None => entry.name.clone(),
                },
                data: entry.data.clone(),
                mode: if self.store_modes { entry.mode } else { None },
            })
            .collect();
        fs::write(&path, zip_bytes(&entries)).expect("write zip");
        path
    }
}

/// A zip with a single raw entry name, for names no sane tool writes (`../evil`).
pub fn zip_with_entry(dir: &Path, file_name: &str, entry: &str) -> PathBuf {
    let path = dir.join(file_name);
    let entries = [
        ZipEntry {
            name: "bin/compile".into(),
            data: b"#!/bin/bash\n".to_vec(),
            mode: Some(0o100_755),
        },
        ZipEntry {
            name: entry.into(),
            data: b"escaped".to_vec(),
            mode: Some(0o100_644),
        },
    ];
    fs::write(&path, zip_bytes(&entries)).expect("write zip");
    path
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFF_u32;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A minimal zip: stored (uncompressed) entries, a central directory, and Unix attributes
/// only where an entry has a mode ("version made by" 3 = Unix, else 0 = DOS with none).
fn zip_bytes(entries: &[ZipEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    let u16le = |v: usize| u16::try_from(v).expect("fits u16").to_le_bytes();
    let u32le = |v: usize| u32::try_from(v).expect("fits u32").to_le_bytes();
    for entry in entries {
        let offset = out.len();
        let crc = crc32(&entry.data).to_le_bytes();
        let name = entry.name.as_bytes();
        out.extend_from_slice(&0x0403_4b50_u32.to_le_bytes());
        out.extend_from_slice(&20_u16.to_le_bytes()); // version needed
        out.extend_from_slice(&0_u16.to_le_bytes()); // flags
        out.extend_from_slice(&0_u16.to_le_bytes()); // stored
        out.extend_from_slice(&0_u32.to_le_bytes()); // DOS time and date
        out.extend_from_slice(&crc);
        out.extend_from_slice(&u32le(entry.data.len()));
        out.extend_from_slice(&u32le(entry.data.len()));
        out.extend_from_slice(&u16le(name.len()));
        out.extend_from_slice(&0_u16.to_le_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(&entry.data);

        let (made_by, external): (u16, u32) = match entry.mode {
            Some(mode) => ((3 << 8) | 0x14, mode << 16),
            None => (0x14, 0),
        };
        central.extend_from_slice(&0x0201_4b50_u32.to_le_bytes());
        central.extend_from_slice(&made_by.to_le_bytes());
        central.extend_from_slice(&20_u16.to_le_bytes());
        central.extend_from_slice(&0_u16.to_le_bytes());
        central.extend_from_slice(&0_u16.to_le_bytes());
        central.extend_from_slice(&0_u32.to_le_bytes());
        central.extend_from_slice(&crc);
        central.extend_from_slice(&u32le(entry.data.len()));
        central.extend_from_slice(&u32le(entry.data.len()));
        central.extend_from_slice(&u16le(name.len()));
        central.extend_from_slice(&0_u16.to_le_bytes()); // extra
        central.extend_from_slice(&0_u16.to_le_bytes()); // comment
        central.extend_from_slice(&0_u16.to_le_bytes()); // disk
        central.extend_from_slice(&0_u16.to_le_bytes()); // internal attributes
        central.extend_from_slice(&external.to_le_bytes());
        central.extend_from_slice(&u32le(offset));
        central.extend_from_slice(name);
    }
    let central_offset = out.len();
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50_u32.to_le_bytes());
    out.extend_from_slice(&0_u16.to_le_bytes());
    out.extend_from_slice(&0_u16.to_le_bytes());
    out.extend_from_slice(&u16le(entries.len()));
    out.extend_from_slice(&u16le(entries.len()));
    out.extend_from_slice(&u32le(central.len()));
    out.extend_from_slice(&u32le(central_offset));
    out.extend_from_slice(&0_u16.to_le_bytes());
    out
}

/// A test workspace: a temp dir holding the app, the zips, the output and a TMPDIR for the
/// staging root (so a test can see what `stage` leaves behind).
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let workspace = Self { dir };
        fs::create_dir_all(workspace.app()).expect("app dir");
        fs::write(workspace.app().join("app.py"), "print('hello')\n").expect("app file");
        fs::create_dir_all(workspace.tmpdir()).expect("tmpdir");
        workspace
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn app(&self) -> PathBuf {
        self.path().join("app")
    }

    pub fn output(&self) -> PathBuf {
        self.path().join("out")
    }

    /// The TMPDIR `stage` runs with: the staging root is created in it.
    pub fn tmpdir(&self) -> PathBuf {
        self.path().join("tmpdir")
    }

    pub fn zip(&self, buildpack: &Buildpack) -> PathBuf {
        buildpack.write(self.path())
    }

    /// `local-cf stage APP --buildpack Z... --output OUT EXTRA...`
    pub fn stage(&self, zips: &[PathBuf], extra: &[&str]) -> Outcome {
        let mut command = Command::new(LOCAL_CF);
        command
            .arg("stage")
            .arg(self.app())
            .arg("--output")
            .arg(self.output());
        for zip in zips {
            command.arg("--buildpack").arg(zip);
        }
        command
            .args(world::stage_args())
            .args(extra)
            .env("TMPDIR", self.tmpdir());
        Outcome::of(&command.output().expect("run local-cf stage"))
    }

    pub fn droplet(&self) -> PathBuf {
        self.output().join("droplet.tgz")
    }

    pub fn result_json(&self) -> serde_json::Value {
        let text = fs::read_to_string(self.output().join("result.json")).expect("result.json");
        serde_json::from_str(&text).expect("result.json is JSON")
    }
}

/// What a run of the tool showed the user.
pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn of(output: &Output) -> Self {
        Self {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Panics with the whole log when the exit code differs.
    #[track_caller]
    pub fn assert_code(&self, expected: i32) -> &Self {
        assert_eq!(self.code, Some(expected), "unexpected exit code\n{self}");
        self
    }

    /// The staging log as a user reads it: Diego streams the builder's stdout and stderr
    /// into one log (the real builder writes its failure lines to stderr).
    #[track_caller]
    pub fn assert_log_contains(&self, text: &str) -> &Self {
        assert!(
            self.stdout.contains(text) || self.stderr.contains(text),
            "the log lacks {text:?}\n{self}"
        );
        self
    }

    #[track_caller]
    pub fn assert_stderr_contains(&self, text: &str) -> &Self {
        assert!(self.stderr.contains(text), "stderr lacks {text:?}\n{self}");
        self
    }

    #[track_caller]
    pub fn assert_no_panic(&self) -> &Self {
        assert!(
            !self.stderr.contains("panicked"),
            "the tool panicked\n{self}"
        );
        self
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit code: {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A droplet's members: name -> (mode, entry type, link target, content).
pub struct Member {
    pub mode: u32,
    pub kind: tar::EntryType,
    pub link: Option<String>,
    pub content: String,
}

pub fn droplet_members(droplet: &Path) -> BTreeMap<String, Member> {
    let file = fs::File::open(droplet).expect("droplet exists");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut members = BTreeMap::new();
    for entry in archive.entries().expect("tar entries") {
        let mut entry = entry.expect("tar entry");
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let header = entry.header();
        let mode = header.mode().expect("mode");
        let kind = header.entry_type();
        let link = entry
            .link_name_bytes()
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
        let mut content = String::new();
        let _ = entry.read_to_string(&mut content);
        members.insert(
            name,
            Member {
                mode,
                kind,
                link,
                content,
            },
        );
    }
    members
}
