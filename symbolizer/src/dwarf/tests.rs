use object::elf;
use object::read::elf::ElfFile64;

use super::*;
use crate::testelf::{ElfImage, TestSymbol};

const TEXT_ADDRESS: u64 = 0x1000;

fn function(name: &str, value: u64, size: u64, bind: elf::SymbolBind) -> TestSymbol<'_> {
    TestSymbol {
        name,
        value,
        size,
        bind,
        kind: elf::STT_FUNC,
    }
}

/// Builds a shared library laid out like libc's `.dynsym` and a Go binary's
/// `.symtab`. Its text contains `getpid` with the global alias `__getpid`,
/// and a `memcpy` without a size. A local `helper` is nested in a larger
/// `outer` function, which shares its address with a marker of size 0.
fn library(extra_sections: impl FnOnce(&mut ElfImage)) -> Vec<u8> {
    let mut image = ElfImage::new().shared_object();
    let text = image.segment(
        elf::PT_LOAD,
        elf::ProgramFlags(elf::PF_R.0 | elf::PF_X.0),
        TEXT_ADDRESS,
        vec![0xcc; 0x400],
    );
    let text_index = image.section_in_segment(".text", elf::SHT_PROGBITS, text, 0, 0x400);
    let shndx = text_index as u16;
    image.symbol_table(
        elf::SHT_DYNSYM,
        shndx,
        &[
            function("getpid", 0x1100, 0x10, elf::STB_WEAK),
            function("__getpid", 0x1100, 0x10, elf::STB_GLOBAL),
            TestSymbol {
                name: "memcpy",
                value: 0x1200,
                size: 0,
                bind: elf::STB_GLOBAL,
                kind: elf::STT_GNU_IFUNC,
            },
            TestSymbol {
                name: "environ",
                value: 0x1300,
                size: 8,
                bind: elf::STB_GLOBAL,
                kind: elf::STT_OBJECT,
            },
        ],
    );
    image.symbol_table(
        elf::SHT_SYMTAB,
        shndx,
        &[
            function("text_start", 0x1280, 0, elf::STB_LOCAL),
            function("outer", 0x1280, 0x40, elf::STB_LOCAL),
            function("helper", 0x1290, 0x8, elf::STB_LOCAL),
        ],
    );
    extra_sections(&mut image);
    image.build()
}

fn only_frame(frames: Vec<CFrame>) -> CFrame {
    assert_eq!(frames.len(), 1, "{frames:?}");
    frames.into_iter().next().expect("one frame")
}

#[test]
fn symbols_name_functions_with_offset() {
    let image = library(|_| {});
    let elf = ElfFile64::parse(image.as_slice()).expect("test image parses");
    let symbolizer = CSymbolizer::new(&elf);
    assert!(!symbolizer.has_dwarf());
    assert!(symbolizer.has_symbols());

    let frame = only_frame(symbolizer.symbolize(0x1104));
    assert_eq!(frame.function.as_deref(), Some("__getpid"));
    assert_eq!(frame.symbol_offset, Some(4));
    assert_eq!(frame.source, FrameSource::SymbolTable);
    assert_eq!(frame.file, None);
    assert!(!frame.inlined);
}

#[test]
fn load_bias_is_removed() {
    let image = library(|_| {});
    let elf = ElfFile64::parse(image.as_slice()).expect("test image parses");
    let bias = 0x7f12_3400_0000;
    let symbolizer = CSymbolizer::new(&elf).with_load_bias(bias);
    let frame = only_frame(symbolizer.symbolize(bias + 0x110f));
    assert_eq!(frame.function.as_deref(), Some("__getpid"));
    assert_eq!(frame.symbol_offset, Some(0xf));
    assert!(
        symbolizer.symbolize(0x1104).is_empty(),
        "an address below the bias maps to nothing"
    );
}

#[test]
fn symbol_lookup_edges() {
    let image = library(|_| {});
    let elf = ElfFile64::parse(image.as_slice()).expect("test image parses");
    let symbolizer = CSymbolizer::new(&elf);
    let name_at = |address| {
        symbolizer
            .symbolize(address)
            .first()
            .and_then(|frame| frame.function.clone())
    };
    assert_eq!(name_at(0x10ff), None, "before the first function");
    assert_eq!(name_at(0x1110), None, "just past getpid's end");
    assert_eq!(name_at(0x1200).as_deref(), Some("memcpy"));
    assert_eq!(
        name_at(0x127f).as_deref(),
        Some("memcpy"),
        "an unsized symbol reaches the next one"
    );
    assert_eq!(
        name_at(0x1280).as_deref(),
        Some("outer"),
        "a sized symbol wins over a marker"
    );
    assert_eq!(name_at(0x1294).as_deref(), Some("helper"));
    assert_eq!(
        name_at(0x12a0).as_deref(),
        Some("outer"),
        "past helper, still inside outer"
    );
    assert_eq!(name_at(0x12c0), None, "past outer's end");
    assert_eq!(name_at(0x1300), None, "data objects are not functions");
}

#[test]
fn garbage_dwarf_falls_back_to_symbols() {
    let image = library(|image| {
        image.standalone_section(
            ".debug_abbrev",
            elf::SHT_PROGBITS,
            elf::SectionFlags(0),
            vec![0xff; 32],
        );
        image.standalone_section(
            ".debug_info",
            elf::SHT_PROGBITS,
            elf::SectionFlags(0),
            vec![0xff; 64],
        );
    });
    let elf = ElfFile64::parse(image.as_slice()).expect("test image parses");
    let symbolizer = CSymbolizer::new(&elf);
    assert!(symbolizer.has_dwarf());
    let frame = only_frame(symbolizer.symbolize(0x1108));
    assert_eq!(frame.function.as_deref(), Some("__getpid"));
    assert_eq!(frame.source, FrameSource::SymbolTable);
}

/// Encodes an `Elf64_Chdr` compression header followed by `payload`.
fn compressed_section(uncompressed_size: u64, payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&elf::ELFCOMPRESS_ZLIB.0.to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend_from_slice(&uncompressed_size.to_le_bytes());
    bytes.extend_from_slice(&1u64.to_le_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

#[test]
fn oversized_compressed_section_is_rejected() {
    let image = library(|image| {
        let bogus = compressed_section(1 << 40, &[0x78, 0x9c, 0x03, 0x00]);
        image.standalone_section(".debug_info", elf::SHT_PROGBITS, elf::SHF_COMPRESSED, bogus);
    });
    let elf = ElfFile64::parse(image.as_slice()).expect("test image parses");
    let symbolizer = CSymbolizer::new(&elf);
    let frame = only_frame(symbolizer.symbolize(0x1100));
    assert_eq!(frame.function.as_deref(), Some("__getpid"));
    match symbolizer.dwarf_error() {
        Some(DwarfError::SectionTooLarge {
            name,
            uncompressed_size,
            ..
        }) => {
            assert_eq!(*name, ".debug_info");
            assert_eq!(*uncompressed_size, 1 << 40);
        }
        other => panic!("expected SectionTooLarge, got {other:?}"),
    }
}

#[test]
fn corrupt_compressed_section_is_reported() {
    let image = library(|image| {
        let bogus = compressed_section(64, &[0x00, 0x01, 0x02, 0x03]);
        image.standalone_section(".debug_info", elf::SHT_PROGBITS, elf::SHF_COMPRESSED, bogus);
    });
    let elf = ElfFile64::parse(image.as_slice()).expect("test image parses");
    let symbolizer = CSymbolizer::new(&elf);
    assert_eq!(
        only_frame(symbolizer.symbolize(0x1100)).function.as_deref(),
        Some("__getpid")
    );
    let message = symbolizer
        .dwarf_error()
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(
        message.starts_with("cannot read section .debug_info at file offset 0x"),
        "{message}"
    );
}

#[test]
fn empty_file_symbolizes_nothing() {
    let image = ElfImage::new().build();
    let elf = ElfFile64::parse(image.as_slice()).expect("test image parses");
    let symbolizer = CSymbolizer::new(&elf);
    assert!(!symbolizer.has_dwarf());
    assert!(!symbolizer.has_symbols());
    assert!(symbolizer.symbolize(0x1000).is_empty());
}
