//! The same real core in every format the store may hold.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use symbolizer::core::{Core, CoreOptions, MissingReason};
use symbolizer::decompress::{self, Compression, CoreImage, DecompressError, DecompressOptions};

use crate::crash::crashes;

/// Writes `plain` compressed by `tool` (`lz4` or `xz`) next to it.
fn compress_with(tool: &str, plain: &Path) -> PathBuf {
    let out = plain.with_extension(tool);
    if out.exists() {
        return out;
    }
    let file = std::fs::File::create(&out).unwrap();
    let mut command = Command::new(tool);
    match tool {
        "lz4" => command.args(["-q", "-c"]),
        "xz" => command.args(["-q", "-c", "-1", "-T2"]),
        _ => unreachable!(),
    };
    let status = command.arg(plain).stdout(file).status().unwrap();
    assert!(status.success(), "{tool} failed");
    out
}

/// Returns every byte the core holds, segment by segment, through the memory
/// view.
fn dumped_memory(core: &Core) -> Vec<(u64, Vec<u8>)> {
    core.memory()
        .segments()
        .iter()
        .filter(|s| s.present > 0)
        .map(|s| {
            let mut bytes = vec![0u8; s.present as usize];
            core.memory().read_dumped(s.vaddr, &mut bytes).unwrap();
            (s.vaddr, bytes)
        })
        .collect()
}

#[test]
fn every_format_gives_the_same_memory() {
    let Some(crash) = crashes().first() else {
        return;
    };
    let reference = Core::open(&crash.plain, &CoreOptions::default()).unwrap();
    let expected = dumped_memory(&reference);
    assert!(
        expected.iter().map(|(_, b)| b.len()).sum::<usize>() > 1 << 20,
        "the core holds memory"
    );

    let formats = [
        (crash.stored.clone(), Compression::Zstd),
        (compress_with("lz4", &crash.plain), Compression::Lz4),
        (compress_with("xz", &crash.plain), Compression::Xz),
        (crash.plain.clone(), Compression::None),
    ];
    for (path, compression) in formats {
        let image = CoreImage::open(&path, &DecompressOptions::default(), &mut |_| {}).unwrap();
        assert_eq!(image.compression(), compression);
        let core = Core::from_image(image, &CoreOptions::default()).unwrap();
        assert!(
            dumped_memory(&core) == expected,
            "{compression} memory differs"
        );
        assert_eq!(
            core.threads(),
            reference.threads(),
            "{compression} threads differ"
        );
        assert_eq!(core.mapped_files(), reference.mapped_files());
    }
}

#[test]
fn decompressed_core_is_sparse() {
    let Some(crash) = crashes().first() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("core");
    let mut out = std::fs::File::create(&out_path).unwrap();
    let mut last = None;
    let summary =
        decompress::decompress_to_file(&crash.stored, &mut out, &mut |p| last = Some(p)).unwrap();
    let meta = std::fs::metadata(&out_path).unwrap();
    let plain_len = std::fs::metadata(&crash.plain).unwrap().len();
    assert_eq!(meta.len(), plain_len);
    assert_eq!(summary.bytes_out, plain_len);
    let allocated = meta.blocks() * 512;
    assert!(
        allocated < meta.len() / 2,
        "{allocated} bytes allocated for {} (du vs ls -l)",
        meta.len()
    );
    assert!(std::fs::read(&out_path).unwrap() == std::fs::read(&crash.plain).unwrap());

    let last = last.unwrap();
    assert_eq!(last.bytes_out, plain_len);
    assert_eq!(
        last.bytes_in,
        std::fs::metadata(&crash.stored).unwrap().len()
    );
    assert_eq!(last.total_in, last.bytes_in);
}

#[test]
fn truncated_zst_keeps_a_partial_core() {
    let Some(crash) = crashes().first() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let compressed = std::fs::read(&crash.stored).unwrap();
    // zstd emits a block only once all of its input is there, and the first
    // blocks of a core hold most of its non-zero bytes, so an early cut can
    // leave nothing to keep.
    let cut = compressed.len() * 9 / 10;
    let path = dir.path().join("core.cut.zst");
    std::fs::write(&path, &compressed[..cut]).unwrap();

    let mut sink = Vec::new();
    let error = decompress::decompress_to_writer(&path, &mut sink, &mut |_| {}).unwrap_err();
    let DecompressError::Corrupt {
        offset,
        format,
        decompressed,
        ..
    } = &error
    else {
        panic!("{error}")
    };
    assert_eq!(*offset, cut as u64);
    assert_eq!(*format, Compression::Zstd);
    assert_eq!(*decompressed, sink.len() as u64);
    assert!(*decompressed > 0, "nothing decompressed before the cut");
    let message = error.to_string();
    assert!(message.contains("core.cut.zst"), "{message}");
    assert!(message.contains(&format!("{cut:#x}")), "{message}");

    let options = CoreOptions {
        temp_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    };
    let core = Core::open(&path, &options).unwrap();
    assert!(core.is_partial());
    assert!(matches!(
        core.decompress_damage(),
        Some(DecompressError::Corrupt { .. })
    ));
    assert!(!core.threads().is_empty(), "the notes precede the damage");
    assert!(core
        .missing_ranges()
        .iter()
        .any(|r| r.reason == MissingReason::Truncated));
    let plain = std::fs::read(&crash.plain).unwrap();
    let kept = &plain[..sink.len()];
    let reference = Core::from_bytes(kept.to_vec(), &CoreOptions::default()).unwrap();
    assert_eq!(core.missing_ranges(), reference.missing_ranges());
}

/// Compresses `bytes` into one lz4 frame with the `lz4` command.
fn lz4_frame(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("lz4")
        .args(["-q", "-c"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input).unwrap());
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(output.status.success(), "lz4 failed");
    output.stdout
}

/// Builds a skippable frame, which zstd and lz4 share, holding `payload`.
fn skippable_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = 0x184D_2A5Fu32.to_le_bytes().to_vec();
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(payload);
    frame
}

#[test]
fn lz4_core_in_several_frames_is_read_whole() {
    let Some(crash) = crashes().first() else {
        return;
    };
    let plain = std::fs::read(&crash.plain).unwrap();
    let reference = Core::open(&crash.plain, &CoreOptions::default()).unwrap();
    let (head, tail) = plain.split_at(plain.len() / 2);
    // `lz4 -d` reads past skippable frames and decodes every frame.
    let mut bytes = skippable_frame(b"written by a test");
    bytes.extend(lz4_frame(head));
    bytes.extend(skippable_frame(&[]));
    bytes.extend(lz4_frame(tail));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("frames.lz4");
    std::fs::write(&path, &bytes).unwrap();

    let image = CoreImage::open(&path, &DecompressOptions::default(), &mut |_| {}).unwrap();
    assert_eq!(image.compression(), Compression::Lz4);
    let core = Core::from_image(image, &CoreOptions::default()).unwrap();
    assert!(!core.is_partial(), "{:?}", core.decompress_damage());
    assert!(dumped_memory(&core) == dumped_memory(&reference));
    assert_eq!(core.threads(), reference.threads());

    // A frame past the core's end is reported, as in zstd and xz streams.
    bytes.extend(lz4_frame(&[1; 4096]));
    std::fs::write(&path, &bytes).unwrap();
    let error =
        decompress::decompress_to_writer(&path, &mut std::io::sink(), &mut |_| {}).unwrap_err();
    assert!(
        matches!(error, DecompressError::TooLong { limit, .. } if limit == plain.len() as u64),
        "{error}"
    );
}
