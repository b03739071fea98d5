//! The ELF rewriter slimming uses: the symbol tables and debug sections of 64-bit
//! little-endian executables and shared libraries are dropped (`.symtab` and its `.strtab`,
//! `.debug_*`), sections no loader reads, since dynamic linking uses `.dynsym`/`.dynstr`,
//! which stay. It is the buildpack's own (no `strip` on the stacks to rely on): it only drops
//! sections that lie after everything a program header maps, and gives up on a file it does
//! not fully understand, leaving it as it was. Every file is rewritten beside itself and
//! renamed, so a hard link elsewhere (the app cache) keeps its bytes.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Every regular file of the environment that starts like an ELF file.
pub(super) fn elf_candidates(env: &Path) -> io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![env.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in fs::read_dir(&current)? {
            let entry = entry?;
            let file_type = entry.file_type()?;
            if file_type.is_dir() {
                pending.push(entry.path());
            } else if file_type.is_file() {
                let mut magic = [0_u8; 4];
                let is_elf = fs::File::open(entry.path())
                    .and_then(|mut file| io::Read::read_exact(&mut file, &mut magic))
                    .is_ok()
                    && magic == *b"\x7fELF";
                if is_elf {
                    found.push(entry.path());
                }
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Strips one file in place (through a rename); `None` when it has nothing to strip or is not
/// an ELF file this code fully understands.
pub(super) fn strip_file(path: &Path) -> io::Result<Option<u64>> {
    let bytes = fs::read(path)?;
    let Some(stripped) = strip_elf(&bytes) else {
        return Ok(None);
    };
    let mode = fs::metadata(path)?.permissions().mode();
    let partial = path.with_file_name(format!(
        ".{}.slim",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    fs::write(&partial, &stripped)?;
    fs::set_permissions(&partial, fs::Permissions::from_mode(mode))?;
    fs::rename(&partial, path)?;
    Ok(Some((bytes.len() - stripped.len()) as u64))
}

const SHF_ALLOC: u64 = 0x2;
const SHF_INFO_LINK: u64 = 0x40;
const SHT_NOBITS: u32 = 8;
const SHT_RELA: u32 = 4;
const SHT_REL: u32 = 9;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;

struct Section {
    name: String,
    kind: u32,
    flags: u64,
    offset: u64,
    size: u64,
    link: u32,
    info: u32,
    align: u64,
    header: [u8; 64],
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// The file without its symbol table and debug sections, or `None` when there are none or
/// the file is not a 64-bit little-endian executable or shared library laid out as linkers
/// lay them out (the sections to drop after everything the program headers map).
pub(crate) fn strip_elf(bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 || bytes[5] != 1 {
        return None;
    }
    let kind = u16_at(bytes, 16)?;
    if kind != ET_EXEC && kind != ET_DYN {
        return None;
    }
    let phoff = usize::try_from(u64_at(bytes, 32)?).ok()?;
    let shoff = usize::try_from(u64_at(bytes, 40)?).ok()?;
    let phentsize = usize::from(u16_at(bytes, 54)?);
    let phnum = usize::from(u16_at(bytes, 56)?);
    let shentsize = usize::from(u16_at(bytes, 58)?);
    let shnum = usize::from(u16_at(bytes, 60)?);
    let shstrndx = usize::from(u16_at(bytes, 62)?);
    if shentsize != 64 || shnum == 0 || shstrndx >= shnum || phentsize != 56 {
        return None;
    }
    // Everything a program header maps, and every allocated section, stays where it is.
    let mut boundary = 0_u64;
    for index in 0..phnum {
        let at = phoff.checked_add(index.checked_mul(phentsize)?)?;
        let end = u64_at(bytes, at + 8)?.checked_add(u64_at(bytes, at + 32)?)?;
        boundary = boundary.max(end);
    }
    let mut sections = Vec::with_capacity(shnum);
    for index in 0..shnum {
        let at = shoff.checked_add(index.checked_mul(64)?)?;
        let header: [u8; 64] = bytes.get(at..at + 64)?.try_into().ok()?;
        sections.push(Section {
            name: String::new(),
            kind: u32_at(&header, 4)?,
            flags: u64_at(&header, 8)?,
            offset: u64_at(&header, 24)?,
            size: u64_at(&header, 32)?,
            link: u32_at(&header, 40)?,
            info: u32_at(&header, 44)?,
            align: u64_at(&header, 48)?,
            header,
        });
    }
    let names_at = usize::try_from(sections[shstrndx].offset).ok()?;
    let names_size = usize::try_from(sections[shstrndx].size).ok()?;
    let names = bytes.get(names_at..names_at.checked_add(names_size)?)?;
    for section in &mut sections {
        let start = usize::try_from(u32_at(&section.header, 0)?).ok()?;
        let rest = names.get(start..)?;
        let end = rest.iter().position(|&byte| byte == 0)?;
        section.name = String::from_utf8_lossy(&rest[..end]).into_owned();
    }
    for section in &sections {
        let has_bytes = section.kind != SHT_NOBITS;
        if has_bytes && section.offset.checked_add(section.size)? > bytes.len() as u64 {
            return None;
        }
        if section.flags & SHF_ALLOC != 0 && has_bytes {
            boundary = boundary.max(section.offset + section.size);
        }
    }
    let symtab_strings: Vec<u32> = sections
        .iter()
        .filter(|section| section.name == ".symtab")
        .map(|section| section.link)
        .collect();
    let removed: Vec<bool> = sections
        .iter()
        .enumerate()
        .map(|(index, section)| {
            index != 0
                && index != shstrndx
                && section.flags & SHF_ALLOC == 0
                && (section.name == ".symtab"
                    || (section.name == ".strtab"
                        && symtab_strings.iter().any(|&link| link as usize == index))
                    || section.name.starts_with(".debug_")
                    || section.name.starts_with(".zdebug_"))
        })
        .collect();
    if !removed.iter().any(|&dropped| dropped) {
        return None;
    }
    // Nothing that stays may name what goes, and what goes must lie beyond what is mapped.
    for (index, section) in sections.iter().enumerate() {
        if removed[index] {
            if section.kind != SHT_NOBITS && section.offset < boundary {
                return None;
            }
            continue;
        }
        let names_link = section.link as usize;
        let info_is_index = section.kind == SHT_REL
            || section.kind == SHT_RELA
            || section.flags & SHF_INFO_LINK != 0;
        if removed.get(names_link).copied().unwrap_or(false)
            || (info_is_index && removed.get(section.info as usize).copied().unwrap_or(false))
        {
            return None;
        }
    }
    let new_index: Vec<Option<u32>> = {
        let mut next = 0_u32;
        removed
            .iter()
            .map(|&dropped| {
                if dropped {
                    None
                } else {
                    next += 1;
                    Some(next - 1)
                }
            })
            .collect()
    };
    let boundary = usize::try_from(boundary).ok()?;
    let mut out = bytes.get(..boundary)?.to_vec();
    let mut placed: Vec<(usize, u64)> = Vec::new();
    let mut movable: Vec<usize> = (1..sections.len())
        .filter(|&index| !removed[index] && sections[index].offset as usize >= boundary)
        .collect();
    movable.sort_by_key(|&index| sections[index].offset);
    for index in movable {
        let section = &sections[index];
        let align = usize::try_from(section.align.max(1)).ok()?;
        while out.len() % align != 0 {
            out.push(0);
        }
        let new_offset = out.len() as u64;
        if section.kind != SHT_NOBITS {
            let start = usize::try_from(section.offset).ok()?;
            let end = start.checked_add(usize::try_from(section.size).ok()?)?;
            out.extend_from_slice(bytes.get(start..end)?);
        }
        placed.push((index, new_offset));
    }
    while out.len() % 8 != 0 {
        out.push(0);
    }
    let new_shoff = out.len() as u64;
    let remap = |old: u32| -> u32 { new_index.get(old as usize).copied().flatten().unwrap_or(0) };
    let mut kept = 0_u16;
    for (index, section) in sections.iter().enumerate() {
        if removed[index] {
            continue;
        }
        let mut header = section.header;
        if let Some(&(_, offset)) = placed.iter().find(|(placed, _)| *placed == index) {
            header[24..32].copy_from_slice(&offset.to_le_bytes());
        }
        header[40..44].copy_from_slice(&remap(section.link).to_le_bytes());
        if section.kind == SHT_REL || section.kind == SHT_RELA || section.flags & SHF_INFO_LINK != 0
        {
            header[44..48].copy_from_slice(&remap(section.info).to_le_bytes());
        }
        out.extend_from_slice(&header);
        kept += 1;
    }
    out[40..48].copy_from_slice(&new_shoff.to_le_bytes());
    out[60..62].copy_from_slice(&kept.to_le_bytes());
    let new_shstrndx = u16::try_from(remap(u32::try_from(shstrndx).ok()?)).ok()?;
    out[62..64].copy_from_slice(&new_shstrndx.to_le_bytes());
    (out.len() < bytes.len()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// A shared library with symbols and debug sections, built by the machine's C compiler.
    fn library_with_symbols(dir: &Path) -> Option<PathBuf> {
        let source = dir.join("answer.c");
        fs::write(
            &source,
            "static int helper(int x) { return x * 6; }\nint answer(void) { return helper(7); }\n",
        )
        .ok()?;
        let library = dir.join("libanswer.so");
        let built = Command::new("cc")
            .args(["-g", "-shared", "-fPIC", "-o"])
            .arg(&library)
            .arg(&source)
            .status()
            .ok()?;
        built.success().then_some(library)
    }

    #[test]
    fn a_stripped_library_still_loads_and_answers() {
        let dir = tempfile::tempdir().unwrap();
        let Some(library) = library_with_symbols(dir.path()) else {
            panic!("no C compiler: ci/setup installs one");
        };
        let before = fs::metadata(&library).unwrap().len();
        let saved = strip_file(&library).unwrap().expect("symbols to strip");
        assert_eq!(fs::metadata(&library).unwrap().len(), before - saved);
        assert!(strip_file(&library).unwrap().is_none(), "stripped twice");
        // The dynamic linker loads it and finds its exported function.
        let path = std::ffi::CString::new(library.to_string_lossy().as_bytes()).unwrap();
        // SAFETY: loading a library this test just built, and calling its `int answer(void)`.
        unsafe {
            let handle = libc::dlopen(path.as_ptr(), libc::RTLD_NOW);
            assert!(!handle.is_null(), "the stripped library does not load");
            let symbol = libc::dlsym(handle, c"answer".as_ptr());
            assert!(!symbol.is_null(), "the exported function is gone");
            let answer: extern "C" fn() -> libc::c_int = std::mem::transmute(symbol);
            assert_eq!(answer(), 42);
            libc::dlclose(handle);
        }
    }

    #[test]
    fn what_is_not_an_elf_file_it_understands_is_left_alone() {
        assert!(strip_elf(b"not an elf file at all").is_none());
        assert!(strip_elf(b"\x7fELF").is_none());
        let mut truncated = vec![0_u8; 64];
        truncated[..4].copy_from_slice(b"\x7fELF");
        truncated[4] = 2;
        truncated[5] = 1;
        truncated[16] = 3;
        truncated[40] = 0xff;
        assert!(strip_elf(&truncated).is_none());
    }
}
