use object::elf;
use object::read::elf::ElfFile64;

use super::*;
use crate::testelf::{note, ElfImage};

const GO_ID: &str =
    "mXguobfypQnyKMqGhL-Q/IjQkhVaMBg-5onOrs_gE/eu3jpFYs0pdMH52CDNM7/v7zpuu2krcsrLW0wIw7F";
const GNU_ID: [u8; 20] = [
    0x47, 0x81, 0x5e, 0xd9, 0x98, 0xf1, 0x70, 0x5f, 0xcc, 0x73, 0x54, 0xd3, 0xea, 0x38, 0x3f, 0x44,
    0x6d, 0x9b, 0xea, 0x4d,
];

fn go_note() -> Vec<u8> {
    note(GO_NOTE_NAME, GO_BUILD_ID_NOTE_TYPE, GO_ID.as_bytes())
}

fn gnu_note() -> Vec<u8> {
    note(GNU_NOTE_NAME, elf::NT_GNU_BUILD_ID, &GNU_ID)
}

fn text_segment() -> Vec<u8> {
    vec![0xc3; 64]
}

/// Builds an executable with both notes in one `PT_NOTE` segment in the first page.
fn image_with_note_segment(notes: Vec<u8>) -> Vec<u8> {
    let mut image = ElfImage::new();
    image.segment(elf::PT_NOTE, elf::PF_R, 0x40_0200, notes);
    image.segment(
        elf::PT_LOAD,
        elf::ProgramFlags(elf::PF_R.0 | elf::PF_X.0),
        0x40_1000,
        text_segment(),
    );
    image.build()
}

/// Builds the Go 1.24+ internal-link layout: the Go note in a `PT_NOTE`
/// segment, the GNU note in a section that no `PT_NOTE` segment covers.
fn image_with_gnu_note_in_section_only() -> Vec<u8> {
    let mut image = ElfImage::new();
    let go = go_note();
    let go_len = go.len();
    let notes = image.segment(elf::PT_NOTE, elf::PF_R, 0x40_0200, go);
    image.section_in_segment(".note.go.buildid", elf::SHT_NOTE, notes, 0, go_len);
    let mut first_load = gnu_note();
    let gnu_len = first_load.len();
    first_load.extend(text_segment());
    let load = image.segment(
        elf::PT_LOAD,
        elf::ProgramFlags(elf::PF_R.0 | elf::PF_X.0),
        0x40_1000,
        first_load,
    );
    image.section_in_segment(".note.gnu.build-id", elf::SHT_NOTE, load, 0, gnu_len);
    image.build()
}

fn read_image(bytes: &[u8]) -> BuildIdReport {
    let elf = ElfFile64::parse(bytes).expect("test image parses as ELF");
    read(&elf)
}

#[test]
fn notes_in_segment_give_both_ids() {
    let mut notes = gnu_note();
    notes.extend(go_note());
    let report = read_image(&image_with_note_segment(notes));
    assert!(report.damaged.is_empty(), "{:?}", report.damaged);
    assert_eq!(report.ids.go, Some(GoBuildId(GO_ID.to_owned())));
    assert_eq!(report.ids.go_source, Some(IdSource::Segment));
    assert_eq!(
        report.ids.gnu.as_ref().map(ToString::to_string).as_deref(),
        Some("47815ed998f1705fcc7354d3ea383f446d9bea4d")
    );
    assert_eq!(report.ids.gnu_source, Some(IdSource::Segment));
}

#[test]
fn gnu_note_found_through_sections() {
    let report = read_image(&image_with_gnu_note_in_section_only());
    assert_eq!(report.ids.go_source, Some(IdSource::Segment));
    assert_eq!(report.ids.gnu, Some(GnuBuildId(GNU_ID.to_vec())));
    assert_eq!(report.ids.gnu_source, Some(IdSource::Section));
}

#[test]
fn image_prefix_reads_program_header_notes_only() {
    let image = image_with_gnu_note_in_section_only();
    let report = read_from_image_prefix(&image[..0x1000]).expect("headers are in the first page");
    assert_eq!(report.ids.go, Some(GoBuildId(GO_ID.to_owned())));
    assert_eq!(report.ids.gnu, None);
    assert!(report.damaged.is_empty(), "{:?}", report.damaged);
}

#[test]
fn image_prefix_skips_notes_past_its_end() {
    let mut notes = gnu_note();
    notes.extend(go_note());
    let image = image_with_note_segment(notes);
    // The note segment starts at file offset 0x200; cut inside it.
    let report = read_from_image_prefix(&image[..0x210]).expect("headers are complete");
    assert_eq!(report.ids, BuildIds::default());
    assert!(
        report.damaged.is_empty(),
        "a cut note is out of reach, not damaged"
    );

    let report = read_from_image_prefix(&image[..0x1000]).expect("headers are complete");
    assert_eq!(report.ids.go, Some(GoBuildId(GO_ID.to_owned())));
    assert_eq!(report.ids.gnu, Some(GnuBuildId(GNU_ID.to_vec())));
}

#[test]
fn image_prefix_without_headers_fails() {
    let image = image_with_note_segment(go_note());
    assert!(matches!(
        read_from_image_prefix(&image[..40]),
        Err(BuildIdError::Header(_))
    ));
    assert!(matches!(
        read_from_image_prefix(&image[..100]),
        Err(BuildIdError::Header(_))
    ));
    assert!(matches!(
        read_from_image_prefix(b"not an ELF file at all, just text"),
        Err(BuildIdError::Header(_))
    ));
}

#[test]
fn damaged_note_is_reported_and_others_kept() {
    let mut notes = gnu_note();
    // A note whose descriptor size runs far past the segment.
    notes.extend_from_slice(&4u32.to_le_bytes());
    notes.extend_from_slice(&0x7fff_ffffu32.to_le_bytes());
    notes.extend_from_slice(&4u32.to_le_bytes());
    notes.extend_from_slice(GO_NOTE_NAME);
    let report = read_image(&image_with_note_segment(notes));
    assert_eq!(report.ids.gnu, Some(GnuBuildId(GNU_ID.to_vec())));
    assert_eq!(report.ids.go, None);
    assert_eq!(report.damaged.len(), 1);
    let message = report.damaged[0].to_string();
    assert!(message.contains("PT_NOTE segment 0"), "{message}");
    assert!(message.contains("0x200"), "{message}");
}

#[test]
fn oversized_go_note_is_rejected() {
    let long = "x".repeat(MAX_GO_BUILD_ID_LEN + 1);
    let report = read_image(&image_with_note_segment(note(
        GO_NOTE_NAME,
        GO_BUILD_ID_NOTE_TYPE,
        long.as_bytes(),
    )));
    assert_eq!(report.ids.go, None);
    // The descriptor follows the 12-byte header and 4-byte name.
    assert!(
        matches!(
            report.damaged.as_slice(),
            [BuildIdError::TooLong {
                kind: "Go",
                file_offset: 0x210,
                ..
            }]
        ),
        "{:?}",
        report.damaged
    );
}

#[test]
fn text_form_is_the_fallback() {
    let mut text = b"\xff Go build ID: \"".to_vec();
    text.extend_from_slice(GO_ID.as_bytes());
    text.extend_from_slice(b"\"\n \xff");
    text.resize(128, 0xcc);
    let mut image = ElfImage::new();
    image.segment(
        elf::PT_LOAD,
        elf::ProgramFlags(elf::PF_R.0 | elf::PF_X.0),
        0x40_1000,
        text,
    );
    let report = read_image(&image.build());
    assert_eq!(report.ids.go, Some(GoBuildId(GO_ID.to_owned())));
    assert_eq!(report.ids.go_source, Some(IdSource::Text));
}

#[test]
fn unterminated_text_form_is_damaged() {
    let mut text = b"\xff Go build ID: \"abc".to_vec();
    text.resize(64, 0);
    let mut image = ElfImage::new();
    image.segment(
        elf::PT_LOAD,
        elf::ProgramFlags(elf::PF_R.0 | elf::PF_X.0),
        0x40_1000,
        text,
    );
    let report = read_image(&image.build());
    assert_eq!(report.ids.go, None);
    assert!(matches!(
        report.damaged.as_slice(),
        [BuildIdError::UnterminatedText {
            file_offset: 0x1000
        }]
    ));
}

#[test]
fn every_image_prefix_is_safe() {
    let mut notes = gnu_note();
    notes.extend(go_note());
    let image = image_with_note_segment(notes);
    let mut complete = 0;
    for len in 0..image.len() {
        if let Ok(report) = read_from_image_prefix(&image[..len]) {
            if report.ids.go.is_some() {
                complete += 1;
            }
        }
    }
    let notes_end = 0x200 + gnu_note().len() + go_note().len();
    assert_eq!(
        complete,
        image.len() - notes_end,
        "the Go ID is found once the notes are inside"
    );
}
