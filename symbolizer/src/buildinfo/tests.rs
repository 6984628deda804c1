use object::elf;
use object::read::elf::ElfFile64;

use super::*;
use crate::testelf::ElfImage;

const RODATA_ADDRESS: u64 = 0x48_0000;
const DATA_ADDRESS: u64 = 0x50_0000;
const START_SENTINEL: &[u8; 16] = b"modinfo-start-->";
const END_SENTINEL: &[u8; 16] = b"<--modinfo-end--";

/// Module information framed the way the go command embeds it.
fn framed(text: &str) -> Vec<u8> {
    let mut out = START_SENTINEL.to_vec();
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(END_SENTINEL);
    out
}

fn uvarint(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// Encodes a build information header: magic, pointer size, flags, two pointers.
fn header(pointer_size: u8, flags: u8, pointers: [u64; 2]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.push(pointer_size);
    out.push(flags);
    for pointer in pointers {
        match (pointer_size, flags & FLAG_BIG_ENDIAN != 0) {
            (4, false) => out.extend_from_slice(&(pointer as u32).to_le_bytes()),
            (4, true) => out.extend_from_slice(&(pointer as u32).to_be_bytes()),
            (_, false) => out.extend_from_slice(&pointer.to_le_bytes()),
            (_, true) => out.extend_from_slice(&pointer.to_be_bytes()),
        }
    }
    out.resize(HEADER_SIZE, 0);
    out
}

/// Encodes the Go 1.18+ blob: header, then the version and module information as
/// uvarint-prefixed strings.
fn inline_blob(version: &[u8], modinfo: &[u8]) -> Vec<u8> {
    let mut out = header(8, FLAG_INLINE_STRINGS, [0, 0]);
    out.extend(uvarint(version.len() as u64));
    out.extend_from_slice(version);
    out.extend(uvarint(modinfo.len() as u64));
    out.extend_from_slice(modinfo);
    out
}

/// Builds an executable whose data segment starts with `blob`, optionally
/// covered by a `.go.buildinfo` section.
fn image_with_blob(blob: Vec<u8>, with_section: bool) -> Vec<u8> {
    let mut image = ElfImage::new();
    image.segment(
        elf::PT_LOAD,
        elf::ProgramFlags(elf::PF_R.0 | elf::PF_X.0),
        0x40_1000,
        vec![0xc3; 64],
    );
    let blob_len = blob.len();
    let data = image.segment(
        elf::PT_LOAD,
        elf::ProgramFlags(elf::PF_R.0 | elf::PF_W.0),
        DATA_ADDRESS,
        blob,
    );
    if with_section {
        image.section_in_segment(".go.buildinfo", elf::SHT_PROGBITS, data, 0, blob_len);
        image.build()
    } else {
        image.without_section_headers().build()
    }
}

/// A pre-1.18 executable: the header in `.go.buildinfo` points to two Go
/// string headers in the data segment, which point to the bytes in rodata.
struct PointerImage {
    pointer_size: u8,
    big_endian: bool,
    version: Vec<u8>,
    modinfo: Vec<u8>,
    /// Replaces the address of the version's string header.
    version_header_address: Option<u64>,
    /// Replaces the data pointer inside the module information string header.
    modinfo_data_address: Option<u64>,
}

impl PointerImage {
    fn new(version: &str, modinfo: Vec<u8>) -> Self {
        PointerImage {
            pointer_size: 8,
            big_endian: false,
            version: version.as_bytes().to_vec(),
            modinfo,
            version_header_address: None,
            modinfo_data_address: None,
        }
    }

    fn pointer(&self, value: u64) -> Vec<u8> {
        let size = usize::from(self.pointer_size);
        if self.big_endian {
            value.to_be_bytes()[8 - size..].to_vec()
        } else {
            value.to_le_bytes()[..size].to_vec()
        }
    }

    fn build(&self) -> Vec<u8> {
        let version_data = RODATA_ADDRESS;
        let modinfo_data = RODATA_ADDRESS + 0x100;
        let mut rodata = self.version.clone();
        rodata.resize(0x100, 0);
        rodata.extend_from_slice(&self.modinfo);

        let version_header = DATA_ADDRESS + HEADER_SIZE as u64;
        let modinfo_header = version_header + 2 * u64::from(self.pointer_size);
        let flags = if self.big_endian { FLAG_BIG_ENDIAN } else { 0 };
        let mut data = header(
            self.pointer_size,
            flags,
            [
                self.version_header_address.unwrap_or(version_header),
                modinfo_header,
            ],
        );
        data.extend(self.pointer(version_data));
        data.extend(self.pointer(self.version.len() as u64));
        data.extend(self.pointer(self.modinfo_data_address.unwrap_or(modinfo_data)));
        data.extend(self.pointer(self.modinfo.len() as u64));

        let mut image = ElfImage::new();
        image.segment(elf::PT_LOAD, elf::PF_R, RODATA_ADDRESS, rodata);
        let data_segment = image.segment(
            elf::PT_LOAD,
            elf::ProgramFlags(elf::PF_R.0 | elf::PF_W.0),
            DATA_ADDRESS,
            data,
        );
        image.section_in_segment(
            ".go.buildinfo",
            elf::SHT_PROGBITS,
            data_segment,
            0,
            HEADER_SIZE,
        );
        image.build()
    }
}

fn read_image(bytes: &[u8]) -> Result<BuildInfo, BuildInfoError> {
    let elf = ElfFile64::parse(bytes).expect("test image parses as ELF");
    read(&elf)
}

const MODINFO: &str = "path\texample.com/hello\nmod\texample.com/hello\t(devel)\t\nbuild\t-ldflags=\"-s -w\"\nbuild\tCGO_ENABLED=0\nbuild\tGOARCH=amd64\nbuild\tvcs.modified=true\n";

#[test]
fn inline_layout_found_by_section() {
    let image = image_with_blob(inline_blob(b"go1.22.3", &framed(MODINFO)), true);
    let info = read_image(&image).expect("build information");
    assert_eq!(info.go_version, "go1.22.3");
    assert_eq!(info.layout, Layout::Inline);
    assert_eq!(info.path.as_deref(), Some("example.com/hello"));
    assert_eq!(
        info.main.as_ref().map(|main| main.version.as_str()),
        Some("(devel)")
    );
    assert_eq!(info.ldflags(), Some("-s -w"));
    assert_eq!(info.cgo_enabled(), Some(false));
    assert_eq!(info.goarch(), Some("amd64"));
    assert_eq!(info.vcs_modified(), Some(true));
    assert_eq!(info.modinfo_text(), MODINFO);
}

#[test]
fn inline_layout_found_without_sections() {
    let mut blob = vec![0u8; 48];
    blob.extend(inline_blob(b"go1.27.3", &framed(MODINFO)));
    let image = image_with_blob(blob, false);
    let info = read_image(&image).expect("build information");
    assert_eq!(info.go_version, "go1.27.3");
    assert_eq!(info.settings.len(), 4);
}

#[test]
fn misaligned_magic_is_skipped() {
    let mut blob = vec![0u8; 8];
    blob.extend_from_slice(MAGIC);
    blob.resize(32, 0);
    blob.extend(inline_blob(b"go1.21.13", &[]));
    let info = read_image(&image_with_blob(blob, true)).expect("build information");
    assert_eq!(info.go_version, "go1.21.13");
}

#[test]
fn unframed_modinfo_is_dropped() {
    let image = image_with_blob(inline_blob(b"go1.22.3", MODINFO.as_bytes()), true);
    let info = read_image(&image).expect("build information");
    assert_eq!(info.path, None);
    assert!(info.settings.is_empty());
    assert_eq!(info.modinfo_text(), "");
}

#[test]
fn pointer_layout_little_endian_8() {
    let image = PointerImage::new("go1.17.13", framed(MODINFO)).build();
    let info = read_image(&image).expect("build information");
    assert_eq!(info.go_version, "go1.17.13");
    assert_eq!(info.layout, Layout::Pointers);
    assert_eq!(info.modinfo_text(), MODINFO);
}

#[test]
fn pointer_layout_big_endian_4() {
    let mut builder = PointerImage::new("go1.16.15", framed(MODINFO));
    builder.pointer_size = 4;
    builder.big_endian = true;
    let info = read_image(&builder.build()).expect("build information");
    assert_eq!(info.go_version, "go1.16.15");
    assert_eq!(info.path.as_deref(), Some("example.com/hello"));
}

#[test]
fn pointer_layout_empty_modinfo() {
    let mut builder = PointerImage::new("go1.13.15", Vec::new());
    builder.modinfo_data_address = Some(0);
    let info = read_image(&builder.build()).expect("build information");
    assert_eq!(info.go_version, "go1.13.15");
    assert_eq!(info.main, None);
    assert!(info.deps.is_empty());
}

#[test]
fn pointer_outside_segments_is_unmapped() {
    let mut builder = PointerImage::new("go1.17.13", framed(MODINFO));
    builder.version_header_address = Some(0x7000_0000);
    let err = read_image(&builder.build()).expect_err("unmapped pointer");
    match err {
        BuildInfoError::Unmapped {
            structure,
            location,
        } => {
            assert_eq!(structure, "Go version");
            assert_eq!(location.address, 0x7000_0000);
            assert_eq!(location.file_offset, None);
        }
        other => panic!("expected Unmapped, got {other:?}"),
    }
}

#[test]
fn string_data_outside_segments_is_unmapped() {
    let mut builder = PointerImage::new("go1.17.13", framed(MODINFO));
    builder.modinfo_data_address = Some(0x10);
    let err = read_image(&builder.build()).expect_err("unmapped string data");
    assert!(
        matches!(err, BuildInfoError::Unmapped { structure: "module information", location } if location.address == 0x10),
        "{err:?}"
    );
}

#[test]
fn string_past_segment_end_is_truncated() {
    let mut builder = PointerImage::new("go1.17.13", framed(MODINFO));
    // The module information starts 0x100 into rodata; point it near the end.
    builder.modinfo_data_address = Some(RODATA_ADDRESS + 0x100 + 8);
    let err = read_image(&builder.build()).expect_err("string runs past the segment");
    match err {
        BuildInfoError::Truncated {
            structure,
            needed,
            available,
            ..
        } => {
            assert_eq!(structure, "module information");
            assert_eq!(needed, framed(MODINFO).len() as u64);
            assert_eq!(available, needed - 8);
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
}

#[test]
fn bad_pointer_size_is_rejected() {
    let mut blob = header(3, 0, [0, 0]);
    blob.resize(64, 0);
    let err = read_image(&image_with_blob(blob, true)).expect_err("pointer size 3");
    assert!(
        matches!(err, BuildInfoError::PointerSize { found: 3, .. }),
        "{err:?}"
    );
}

#[test]
fn truncated_header_is_reported() {
    let mut blob = vec![0u8; 16];
    blob.extend_from_slice(MAGIC);
    blob.extend_from_slice(&[8, FLAG_INLINE_STRINGS]);
    let err = read_image(&image_with_blob(blob, true)).expect_err("header cut short");
    match err {
        BuildInfoError::Truncated {
            structure,
            location,
            needed,
            available,
        } => {
            assert_eq!(structure, "build information header");
            assert_eq!(location.address, DATA_ADDRESS + 16);
            assert_eq!(needed, 32);
            assert_eq!(available, 16);
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
}

#[test]
fn truncated_inline_string_is_reported() {
    let mut blob = inline_blob(b"go1.22.3", &framed(MODINFO));
    blob.truncate(HEADER_SIZE + 1 + 8 + 2 + 10);
    let err = read_image(&image_with_blob(blob, true)).expect_err("module information cut short");
    assert!(
        matches!(
            err,
            BuildInfoError::Truncated {
                structure: "module information",
                available: 10,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn overlong_uvarint_is_rejected() {
    let mut blob = header(8, FLAG_INLINE_STRINGS, [0, 0]);
    blob.extend_from_slice(&[0xff; 11]);
    let err = read_image(&image_with_blob(blob, true)).expect_err("uvarint overflows");
    assert!(
        matches!(
            err,
            BuildInfoError::BadUvarint {
                structure: "Go version",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn unterminated_uvarint_is_rejected() {
    let mut blob = header(8, FLAG_INLINE_STRINGS, [0, 0]);
    blob.extend_from_slice(&[0x80, 0x80]);
    let err = read_image(&image_with_blob(blob, true)).expect_err("uvarint cut short");
    assert!(matches!(err, BuildInfoError::BadUvarint { .. }), "{err:?}");
}

#[test]
fn huge_length_is_rejected_before_reading() {
    let mut blob = header(8, FLAG_INLINE_STRINGS, [0, 0]);
    blob.extend(uvarint(u64::MAX));
    let err = read_image(&image_with_blob(blob, true)).expect_err("length too large");
    assert!(
        matches!(
            err,
            BuildInfoError::TooLong {
                length: u64::MAX,
                max: MAX_GO_VERSION_LEN,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn empty_version_is_rejected() {
    let image = image_with_blob(inline_blob(b"", &framed(MODINFO)), true);
    let err = read_image(&image).expect_err("empty version");
    assert!(
        matches!(err, BuildInfoError::EmptyVersion { .. }),
        "{err:?}"
    );
}

#[test]
fn missing_magic_is_not_found() {
    let err = read_image(&image_with_blob(vec![0u8; 256], true)).expect_err("no magic");
    assert!(
        matches!(
            err,
            BuildInfoError::NotFound {
                place: SearchPlace::Section {
                    address: DATA_ADDRESS,
                    size: 256
                }
            }
        ),
        "{err:?}"
    );
    let err = read_image(&image_with_blob(vec![0u8; 256], false)).expect_err("no magic");
    assert!(
        matches!(
            err,
            BuildInfoError::NotFound {
                place: SearchPlace::Segment { .. }
            }
        ),
        "{err:?}"
    );
}

/// Builds a PIE without section headers: the first writable segment is
/// `.data.rel.ro`, and the header is in the next one.
fn image_with_blob_in_second_data_segment(blob: Vec<u8>) -> Vec<u8> {
    let mut image = ElfImage::new();
    image.segment(
        elf::PT_LOAD,
        elf::ProgramFlags(elf::PF_R.0 | elf::PF_X.0),
        0x40_1000,
        vec![0xc3; 64],
    );
    image.segment(
        elf::PT_LOAD,
        elf::ProgramFlags(elf::PF_R.0 | elf::PF_W.0),
        DATA_ADDRESS,
        vec![0x11; 256],
    );
    image.segment(
        elf::PT_LOAD,
        elf::ProgramFlags(elf::PF_R.0 | elf::PF_W.0),
        DATA_ADDRESS + 0x10_0000,
        blob,
    );
    image.without_section_headers().build()
}

#[test]
fn header_in_second_data_segment_is_found() {
    let image = image_with_blob_in_second_data_segment(inline_blob(b"go1.24.11", &framed(MODINFO)));
    let info = read_image(&image).expect("build information in the second segment");
    assert_eq!(info.go_version, "go1.24.11");
    assert_eq!(info.path.as_deref(), Some("example.com/hello"));

    let err =
        read_image(&image_with_blob_in_second_data_segment(vec![0u8; 256])).expect_err("no magic");
    assert!(
        matches!(
            err,
            BuildInfoError::NotFound {
                place: SearchPlace::Segments { count: 2 }
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "not a Go binary: no build information magic in the 2 writable PT_LOAD segments (no .go.buildinfo section)"
    );
}

#[test]
fn binary_without_data_segment_is_not_found() {
    let mut image = ElfImage::new();
    image.segment(
        elf::PT_LOAD,
        elf::ProgramFlags(elf::PF_R.0 | elf::PF_X.0),
        0x40_1000,
        vec![0xc3; 64],
    );
    let err = read_image(&image.without_section_headers().build()).expect_err("no data segment");
    assert!(
        matches!(
            err,
            BuildInfoError::NotFound {
                place: SearchPlace::NoDataSegment
            }
        ),
        "{err:?}"
    );
}

#[test]
fn malformed_modinfo_names_line() {
    let text = "path\tp\nbuild\ta b=c\n";
    let image = image_with_blob(inline_blob(b"go1.22.3", &framed(text)), true);
    let err = read_image(&image).expect_err("unquoted key with a space");
    match err {
        BuildInfoError::ModInfo { source, .. } => {
            assert_eq!(source.line, 2);
            assert_eq!(
                source.kind,
                ModInfoErrorKind::UnquotedKey { key: "a b".into() }
            );
        }
        other => panic!("expected ModInfo, got {other:?}"),
    }
    let elf = ElfFile64::parse(image.as_slice()).expect("test image parses");
    let raw = read_raw(&elf).expect("the raw strings are still readable");
    assert_eq!(raw.go_version, "go1.22.3");
}

#[test]
fn every_truncated_blob_fails_cleanly() {
    let blob = inline_blob(b"go1.22.3", &framed(MODINFO));
    for len in 0..blob.len() {
        for with_section in [true, false] {
            let image = image_with_blob(blob[..len].to_vec(), with_section);
            let result = read_image(&image);
            assert!(
                result.is_err(),
                "a blob cut at {len:#x} bytes is incomplete, got {result:?}"
            );
        }
    }
    assert!(read_image(&image_with_blob(blob, true)).is_ok());
}

#[test]
fn uvarint_decoding_matches_go() {
    assert_eq!(read_uvarint(&[0x00]), Some((0, 1)));
    assert_eq!(read_uvarint(&[0xac, 0x02]), Some((300, 2)));
    let mut max = vec![0xff; 9];
    max.push(0x01);
    assert_eq!(read_uvarint(&max), Some((u64::MAX, 10)));
    let mut overflow = vec![0xff; 9];
    overflow.push(0x02);
    assert_eq!(read_uvarint(&overflow), None);
    assert_eq!(read_uvarint(&[]), None);
}
