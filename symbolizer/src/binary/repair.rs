//! Makes a damaged executable readable by `object` by leaving out what it
//! rejects: first the symbol tables, then every section header.
//!
//! `object` reads the section headers and the symbol table when it opens a
//! file, so a truncated copy (the section header table sits at the end) or
//! a corrupt `sh_size` makes the whole file unusable. The pclntab does not
//! need them: [`super::Binary`] also finds it through the program headers.
//! The repairs are made on a private copy; the file is never written.

use std::path::Path;

use object::elf::{FileHeader64, SHT_DYNSYM, SHT_NULL, SHT_SYMTAB};
use object::read::elf::{ElfFile64, FileHeader, SectionHeader};
use object::Endianness;

use super::BinaryError;

const TRACE_TARGET: &str = "symbolizer::binary";

/// Offsets of the ELF64 header fields that locate the section headers.
const E_SHOFF: usize = 0x28;
const E_SHNUM: usize = 0x3c;
const E_SHSTRNDX: usize = 0x3e;
/// Offset of `sh_type` in an ELF64 section header.
const SH_TYPE: u64 = 4;

/// Returns a copy of `bytes` that `object` opens, with the symbol tables or
/// all section headers removed, after `error` rejected the file as it is.
/// Logs a warning naming what was left out.
pub(super) fn without_bad_sections(
    path: &Path,
    bytes: &[u8],
    error: object::read::Error,
) -> Result<Vec<u8>, BinaryError> {
    let len = bytes.len() as u64;
    let header =
        FileHeader64::<Endianness>::parse(bytes).map_err(|source| BinaryError::Damaged {
            path: path.to_path_buf(),
            structure: "ELF header",
            offset: 0,
            len,
            source,
        })?;
    let endian = header.endian().map_err(|source| BinaryError::Damaged {
        path: path.to_path_buf(),
        structure: "ELF header",
        offset: 0,
        len,
        source,
    })?;

    if let Some(copy) = without_symbol_tables(header, endian, bytes) {
        tracing::warn!(target: TRACE_TARGET, path = %path.display(), %error, "the symbol table is invalid, so the binary is read without its symbols");
        return Ok(copy);
    }

    let mut copy = bytes.to_vec();
    let cleared = [
        E_SHOFF..E_SHOFF + 8,
        E_SHNUM..E_SHNUM + 2,
        E_SHSTRNDX..E_SHSTRNDX + 2,
    ];
    for field in cleared {
        if let Some(field) = copy.get_mut(field) {
            field.fill(0);
        }
    }
    match ElfFile64::<Endianness>::parse(copy.as_slice()) {
        Ok(_) => {
            tracing::warn!(
                target: TRACE_TARGET,
                path = %path.display(),
                section_headers = format_args!("{:#x}", header.e_shoff(endian)),
                %error,
                "the section headers are invalid or cut, so the binary is read through its program headers only"
            );
            Ok(copy)
        }
        Err(source) => Err(BinaryError::Damaged {
            path: path.to_path_buf(),
            structure: "program header table",
            offset: header.e_phoff(endian),
            len,
            source,
        }),
    }
}

/// Returns a copy whose `SHT_SYMTAB` and `SHT_DYNSYM` sections are turned
/// into `SHT_NULL`, when that copy opens. Returns `None` when the section
/// headers themselves are unreadable or the copy still fails.
fn without_symbol_tables(
    header: &FileHeader64<Endianness>,
    endian: Endianness,
    bytes: &[u8],
) -> Option<Vec<u8>> {
    let sections = header.section_headers(endian, bytes).ok()?;
    let table = header.e_shoff(endian);
    let entry_size = u64::from(header.e_shentsize(endian));
    let mut copy = bytes.to_vec();
    let mut changed = false;
    for (index, section) in sections.iter().enumerate() {
        let kind = section.sh_type(endian);
        if kind != SHT_SYMTAB && kind != SHT_DYNSYM {
            continue;
        }
        let at = (index as u64)
            .checked_mul(entry_size)?
            .checked_add(table)?
            .checked_add(SH_TYPE)?;
        let at = usize::try_from(at).ok()?;
        let field = copy.get_mut(at..at.checked_add(4)?)?;
        let null = match endian {
            Endianness::Little => SHT_NULL.0.to_le_bytes(),
            Endianness::Big => SHT_NULL.0.to_be_bytes(),
        };
        field.copy_from_slice(&null);
        changed = true;
    }
    if !changed {
        return None;
    }
    ElfFile64::<Endianness>::parse(copy.as_slice())
        .ok()
        .map(|_| ())?;
    Some(copy)
}

#[cfg(test)]
mod tests {
    use object::elf;
    use object::Object;

    use crate::binary::{Binary, BinaryError};
    use crate::testelf::{ElfImage, TestSymbol};

    const TEXT: u64 = 0x40_1000;

    fn image() -> Vec<u8> {
        let mut image = ElfImage::new();
        let text = image.segment(elf::PT_LOAD, elf::PF_R | elf::PF_X, TEXT, vec![0xcc; 0x100]);
        let index = image.section_in_segment(".text", elf::SHT_PROGBITS, text, 0, 0x100);
        image.symbol_table(
            elf::SHT_SYMTAB,
            index as u16,
            &[TestSymbol {
                name: "main.main",
                value: TEXT,
                size: 0x10,
                kind: elf::STT_FUNC,
                bind: elf::STB_GLOBAL,
            }],
        );
        image.build()
    }

    fn u64_at(bytes: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
    }

    fn u16_at(bytes: &[u8], at: usize) -> usize {
        u16::from_le_bytes(bytes[at..at + 2].try_into().unwrap()) as usize
    }

    /// Returns the file offset of the first section header of `kind`.
    fn section_header(bytes: &[u8], kind: elf::SectionType) -> usize {
        let table = u64_at(bytes, 0x28) as usize;
        let count = u16_at(bytes, 0x3c);
        (0..count)
            .map(|index| table + 64 * index)
            .find(|&at| u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) == kind.0)
            .expect("the image has the section")
    }

    #[test]
    fn healthy_image_keeps_symbols() {
        let binary = Binary::from_bytes("app", image()).unwrap();
        assert_eq!(binary.elf().symbols().count(), 1);
    }

    #[test]
    fn huge_symtab_size_drops_symbols() {
        let mut bytes = image();
        let header = section_header(&bytes, elf::SHT_SYMTAB);
        // sh_size of the symbol table.
        bytes[header + 0x20..header + 0x28].copy_from_slice(&(1u64 << 50).to_le_bytes());
        let binary = Binary::from_bytes("app", bytes).unwrap();
        assert_eq!(binary.elf().symbols().count(), 0, "symbols are dropped");
        assert!(
            binary.elf().section_by_name(".text").is_some(),
            "other sections stay"
        );
        assert_eq!(binary.read_at_vaddr(TEXT, 4), Some(&[0xcc; 4][..]));
    }

    #[test]
    fn cut_section_headers_keep_segments() {
        let bytes = image();
        let table = u64_at(&bytes, 0x28) as usize;
        let binary = Binary::from_bytes("app", bytes[..table + 10].to_vec()).unwrap();
        assert!(binary.elf().section_by_name(".text").is_none());
        assert_eq!(binary.read_at_vaddr(TEXT, 4), Some(&[0xcc; 4][..]));
    }

    #[test]
    fn cut_segment_keeps_its_start() {
        let bytes = image();
        let text_offset = {
            let phoff = u64_at(&bytes, 0x20) as usize;
            u64_at(&bytes, phoff + 8) as usize
        };
        let binary = Binary::from_bytes("app", bytes[..text_offset + 0x40].to_vec()).unwrap();
        assert_eq!(binary.read_at_vaddr(TEXT + 0x3c, 4), Some(&[0xcc; 4][..]));
        assert_eq!(binary.read_at_vaddr(TEXT + 0x3e, 4), None);
    }

    #[test]
    fn cut_program_headers_name_the_table() {
        let bytes = image();
        let error = Binary::from_bytes("app", bytes[..0x50].to_vec()).unwrap_err();
        let BinaryError::Damaged {
            structure,
            offset,
            len,
            ..
        } = &error
        else {
            panic!("{error}");
        };
        assert_eq!(*structure, "program header table");
        assert_eq!(*offset, 0x40);
        assert_eq!(*len, 0x50);
        let message = error.to_string();
        assert!(
            message.starts_with("app: invalid program header table at offset 0x40"),
            "{message}"
        );
    }
}
