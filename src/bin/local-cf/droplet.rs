//! The droplet: a tar.gz of `app/`, `deps/`, `profile.d/`, `tmp/`, `logs/` and
//! `staging_info.yml`, with member names starting with `./` as CF's `tar -czf droplet -C
//! contents .` writes them (so `tar -xzOf droplet.tgz ./staging_info.yml` works on both).
//! Modes, symlinks and hard links are kept: conda environments rely on all three.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use tar::{EntryType, Header};

/// Longest name that fits the classic header field; longer ones get a GNU long-name entry.
const NAME_FIELD: usize = 100;

/// Writes the droplet to `output`: `app/` comes from `app_dir` (the build dir), everything
/// else from `contents_dir`, in name order. Written beside `output` and renamed, so a failed
/// write never leaves a truncated droplet under the final name.
pub(crate) fn write(output: &Path, app_dir: &Path, contents_dir: &Path) -> io::Result<()> {
    let partial = output.with_extension("tgz.partial");
    let result =
        write_to(&partial, app_dir, contents_dir).and_then(|()| fs::rename(&partial, output));
    if result.is_err() {
        let _ = fs::remove_file(&partial);
    }
    result
}

fn write_to(path: &Path, app_dir: &Path, contents_dir: &Path) -> io::Result<()> {
    let encoder = GzEncoder::new(BufWriter::new(File::create(path)?), Compression::default());
    let mut writer = DropletWriter {
        builder: tar::Builder::new(encoder),
        first_names: HashMap::new(),
    };
    writer.add_directory_entry(contents_dir, b"./")?;
    let mut members: Vec<(Vec<u8>, std::path::PathBuf)> =
        vec![(b"app".to_vec(), app_dir.to_path_buf())];
    for entry in fs::read_dir(contents_dir)? {
        let entry = entry?;
        if entry.file_name() != "app" {
            members.push((entry.file_name().as_bytes().to_vec(), entry.path()));
        }
    }
    members.sort();
    for (name, path) in members {
        let mut member = b"./".to_vec();
        member.extend_from_slice(&name);
        writer.add(&path, &member)?;
    }
    let encoder = writer.builder.into_inner()?;
    encoder.finish()?.flush()
}

struct DropletWriter<W: Write> {
    builder: tar::Builder<W>,
    /// The first member name of every multiply-linked file, so later links become tar hard
    /// links instead of copies (conda's package cache and environments share inodes).
    first_names: HashMap<(u64, u64), Vec<u8>>,
}

impl<W: Write> DropletWriter<W> {
    fn add(&mut self, path: &Path, name: &[u8]) -> io::Result<()> {
        let metadata = fs::symlink_metadata(path)?;
        let file_type = metadata.file_type();
        if file_type.is_dir() {
            let mut dir_name = name.to_vec();
            dir_name.push(b'/');
            self.add_directory_entry(path, &dir_name)?;
            let mut children = fs::read_dir(path)?.collect::<io::Result<Vec<_>>>()?;
            children.sort_by_key(fs::DirEntry::file_name);
            for child in children {
                let mut child_name = dir_name.clone();
                child_name.extend_from_slice(child.file_name().as_bytes());
                self.add(&child.path(), &child_name)?;
            }
        } else if file_type.is_symlink() {
            let target = fs::read_link(path)?;
            let header = header_for(&metadata, EntryType::Symlink, 0);
            self.append(
                header,
                name,
                Some(target.as_os_str().as_bytes()),
                io::empty(),
            )?;
        } else if file_type.is_file() {
            let inode = (metadata.dev(), metadata.ino());
            if metadata.nlink() > 1 {
                if let Some(first) = self.first_names.get(&inode).cloned() {
                    let header = header_for(&metadata, EntryType::Link, 0);
                    return self.append(header, name, Some(&first), io::empty());
                }
                self.first_names.insert(inode, name.to_vec());
            }
            let header = header_for(&metadata, EntryType::Regular, metadata.len());
            // `take` guards against a file growing while it is archived, which would
            // corrupt every member after it.
            let file = File::open(path)?.take(metadata.len());
            self.append(header, name, None, file)?;
        }
        // Sockets, fifos and devices have no place in a droplet.
        Ok(())
    }

    fn add_directory_entry(&mut self, path: &Path, name: &[u8]) -> io::Result<()> {
        let metadata = fs::symlink_metadata(path)?;
        self.append(
            header_for(&metadata, EntryType::Directory, 0),
            name,
            None,
            io::empty(),
        )
    }

    fn append(
        &mut self,
        mut header: Header,
        name: &[u8],
        link: Option<&[u8]>,
        data: impl Read,
    ) -> io::Result<()> {
        if name.len() >= NAME_FIELD {
            self.append_long(EntryType::GNULongName, name)?;
        }
        copy_truncated(&mut header.as_old_mut().name, name);
        if let Some(link) = link {
            if link.len() >= NAME_FIELD {
                self.append_long(EntryType::GNULongLink, link)?;
            }
            copy_truncated(&mut header.as_old_mut().linkname, link);
        }
        header.set_cksum();
        self.builder.append(&header, data)
    }

    /// GNU tar's extension for names that do not fit 100 bytes: a `././@LongLink` member
    /// whose data is the full name, followed by the real member.
    fn append_long(&mut self, kind: EntryType, value: &[u8]) -> io::Result<()> {
        let mut header = Header::new_gnu();
        copy_truncated(&mut header.as_old_mut().name, b"././@LongLink");
        header.set_entry_type(kind);
        header.set_mode(0o644);
        header.set_size(u64::try_from(value.len() + 1).unwrap_or(u64::MAX));
        header.set_cksum();
        let mut data = value.to_vec();
        data.push(0);
        self.builder.append(&header, data.as_slice())
    }
}

/// Writes the builder's output cache: a tgz of the whole cache dir (`./final/...`), as the
/// real builder writes `-outputBuildArtifactsCache`.
pub(crate) fn write_cache(output: &Path, cache_dir: &Path) -> io::Result<()> {
    let encoder = GzEncoder::new(
        BufWriter::new(File::create(output)?),
        Compression::default(),
    );
    let mut writer = DropletWriter {
        builder: tar::Builder::new(encoder),
        first_names: HashMap::new(),
    };
    writer.add_directory_entry(cache_dir, b"./")?;
    let mut children = fs::read_dir(cache_dir)?.collect::<io::Result<Vec<_>>>()?;
    children.sort_by_key(fs::DirEntry::file_name);
    for child in children {
        let mut name = b"./".to_vec();
        name.extend_from_slice(child.file_name().as_bytes());
        writer.add(&child.path(), &name)?;
    }
    let encoder = writer.builder.into_inner()?;
    encoder.finish()?.flush()
}

fn header_for(metadata: &fs::Metadata, kind: EntryType, size: u64) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(metadata.mode() & 0o7777);
    header.set_uid(u64::from(metadata.uid()));
    header.set_gid(u64::from(metadata.gid()));
    header.set_mtime(u64::try_from(metadata.mtime()).unwrap_or(0));
    header.set_size(size);
    header
}

fn copy_truncated(field: &mut [u8], value: &[u8]) {
    let length = value.len().min(field.len());
    field[..length].copy_from_slice(&value[..length]);
}

/// Unpacks a droplet into `target` keeping modes, symlinks and hard links; the tar crate
/// refuses members that would land outside `target`.
pub(crate) fn unpack(droplet: &Path, target: &Path) -> io::Result<()> {
    let mut archive = tar::Archive::new(GzDecoder::new(BufReader::new(File::open(droplet)?)));
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    archive.unpack(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn round_trip_keeps_modes_links_and_long_names() {
        let work =
            std::env::temp_dir().join(format!("droplet-test-{}", crate::files::random_digits()));
        let (app, contents, out) = (work.join("app"), work.join("contents"), work.join("out"));
        let long_dir = "d".repeat(120);
        for dir in [
            app.join(&long_dir),
            contents.join("deps/0/bin"),
            out.clone(),
        ] {
            fs::create_dir_all(dir).expect("test dirs");
        }
        fs::write(app.join("run.sh"), "#!/bin/sh\n").expect("file");
        fs::set_permissions(app.join("run.sh"), fs::Permissions::from_mode(0o751)).expect("mode");
        fs::write(app.join(&long_dir).join("file"), "long").expect("file");
        std::os::unix::fs::symlink("run.sh", app.join("link")).expect("symlink");
        fs::write(contents.join("deps/0/bin/tool"), "tool").expect("file");
        fs::hard_link(
            contents.join("deps/0/bin/tool"),
            contents.join("deps/0/bin/tool2"),
        )
        .expect("link");
        fs::write(contents.join("staging_info.yml"), "{}").expect("file");

        let droplet = work.join("droplet.tgz");
        write(&droplet, &app, &contents).expect("droplet written");
        unpack(&droplet, &out).expect("droplet unpacked");

        let metadata = |p: &str| fs::symlink_metadata(out.join(p)).expect("unpacked member");
        assert_eq!(metadata("app/run.sh").permissions().mode() & 0o777, 0o751);
        assert_eq!(
            fs::read_link(out.join("app/link")).expect("symlink"),
            Path::new("run.sh")
        );
        assert_eq!(
            fs::read_to_string(out.join("app").join(&long_dir).join("file")).expect("long"),
            "long"
        );
        assert_eq!(
            metadata("deps/0/bin/tool").ino(),
            metadata("deps/0/bin/tool2").ino()
        );
        assert!(metadata("staging_info.yml").is_file());
        let _ = fs::remove_dir_all(&work);
    }
}
