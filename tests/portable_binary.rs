//! The packaged executable runs on cflinuxfs3 (glibc 2.27) and cflinuxfs4 (glibc 2.35) because
//! it needs no C library at all: it is linked statically. A dynamic build would require the
//! GLIBC_2.34 symbols of the build machine and fail on cflinuxfs3 at the first `detect`.

use std::fs;

const PT_INTERP: u32 = 3;
const PT_DYNAMIC: u32 = 2;

#[test]
fn the_executable_has_no_interpreter_and_no_shared_libraries() {
    let elf = fs::read(env!("CARGO_BIN_EXE_conda-buildpack")).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF", "an ELF executable");
    assert_eq!(elf[4], 2, "64-bit");
    let read_u16 = |offset: usize| u16::from_le_bytes([elf[offset], elf[offset + 1]]);
    let read_u32 = |offset: usize| u32::from_le_bytes(elf[offset..offset + 4].try_into().unwrap());
    let read_u64 = |offset: usize| u64::from_le_bytes(elf[offset..offset + 8].try_into().unwrap());
    let program_headers = usize::try_from(read_u64(0x20)).unwrap();
    let entry_size = usize::from(read_u16(0x36));
    let count = usize::from(read_u16(0x38));
    let mut dynamic_segment = None;
    for index in 0..count {
        let header = program_headers + index * entry_size;
        let kind = read_u32(header);
        assert_ne!(
            kind, PT_INTERP,
            "the executable asks for a dynamic loader (not statically linked)"
        );
        if kind == PT_DYNAMIC {
            dynamic_segment = Some((read_u64(header + 8), read_u64(header + 32)));
        }
    }
    // A static-pie has a dynamic segment for its own relocations, but no DT_NEEDED entries.
    if let Some((offset, size)) = dynamic_segment {
        let start = usize::try_from(offset).unwrap();
        let end = start + usize::try_from(size).unwrap();
        for entry in elf[start..end].chunks_exact(16) {
            let tag = u64::from_le_bytes(entry[..8].try_into().unwrap());
            assert_ne!(tag, 1, "the executable needs a shared library (DT_NEEDED)");
        }
    }
}
